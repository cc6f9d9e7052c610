"""Long polls take at most DJAFKA_WEB_LONG_POLLS of a web process's HTTP threads; past that a
long poll answers at once instead of waiting."""

import pytest

from brokers.api import wire
from brokers.api.long_polls import allowed_wait_ms

pytestmark = pytest.mark.django_db


def test_waits_are_allowed_while_slots_are_free_and_at_once_after(settings):
    settings.DJAFKA_WEB_LONG_POLLS = 2
    with allowed_wait_ms(5000) as first, allowed_wait_ms(5000) as second:
        assert (first, second) == (5000, 5000)
        with allowed_wait_ms(5000) as third:
            assert third == 0
        with allowed_wait_ms(0) as not_waiting:
            assert not_waiting == 0
    with allowed_wait_ms(5000) as again:  # the slots came back
        assert again == 5000


def test_a_rest_read_past_the_slots_answers_without_waiting(api, tenant, monkeypatch, settings):
    from brokers import services

    services.create_topic(tenant, name="orders", partition_count=1)
    settings.DJAFKA_WEB_LONG_POLLS = 1
    waits = []

    def fake_fetch(tenant, topic, partition, start, max_records, max_bytes, timeout_ms):
        waits.append(timeout_ms)
        return wire.FetchResult([], 0, 0, 0)

    monkeypatch.setattr(wire, "fetch", fake_fetch)
    url = "/api/v1/topics/orders/partitions/0/records?from=latest&timeout_ms=5000"
    assert api.get(url).status_code == 200
    with allowed_wait_ms(1000):  # another request is waiting in the only slot
        assert api.get(url).status_code == 200
    assert waits == [5000, 0]
