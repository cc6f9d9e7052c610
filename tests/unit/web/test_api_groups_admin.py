"""The consumer group admin page: lag per partition, and offset resets and deletes while a group
is Empty."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from brokers import services
from brokers.api import wire
from brokers.models import CommittedOffset, ConsumerGroup, GroupMember

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    client = Client()
    client.force_login(User.objects.create_superuser("op", "op@example.com", "pw"))
    return client


@pytest.fixture
def group(tenant):
    topic = services.create_topic(tenant, name="orders", partition_count=2)
    group = ConsumerGroup.objects.create(tenant=tenant, group_id="billing", state="Empty")
    CommittedOffset.objects.create(group=group, topic=topic, partition=0, offset=30)
    return group


@pytest.fixture
def offsets(monkeypatch):
    """Log start 5, log end 50 for every partition; time lookups find offset 20."""

    def fake_list_offsets(tenant, topic_partitions, timestamp, timeout_s=None):
        at = {wire.EARLIEST_TIMESTAMP: 5, wire.LATEST_TIMESTAMP: 50}.get(timestamp, 20)
        return {(t, p): at for t, ps in topic_partitions.items() for p in ps}

    monkeypatch.setattr(wire, "list_offsets", fake_list_offsets)


def committed(group) -> dict[int, int]:
    return dict(CommittedOffset.objects.filter(group=group).values_list("partition", "offset"))


def test_group_page_shows_lag_per_partition(operator, group, offsets):
    page = operator.get(f"/admin/brokers/consumergroup/{group.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "<td>30</td><td>50</td><td>20</td>" in text
    assert "Total lag" in text


@pytest.mark.parametrize(
    ("action", "extra", "expected"),
    [
        ("reset_offsets_to_earliest", {}, {0: 5, 1: 5}),
        ("reset_offsets_to_latest", {}, {0: 50, 1: 50}),
        (
            "reset_offsets_to_time",
            {"apply": "1", "timestamp_0": "2024-01-01", "timestamp_1": "00:00:00"},
            {0: 20, 1: 20},
        ),
    ],
)
def test_reset_offsets_of_an_empty_group(operator, group, offsets, action, extra, expected):
    response = operator.post(
        "/admin/brokers/consumergroup/",
        {"action": action, "_selected_action": [group.pk], **extra},
    )
    assert response.status_code == 302
    assert committed(group) == expected


def test_reset_to_time_asks_for_the_time_first(operator, group, offsets):
    response = operator.post(
        "/admin/brokers/consumergroup/",
        {"action": "reset_offsets_to_time", "_selected_action": [group.pk]},
    )
    assert response.status_code == 200 and b"Reset offsets" in response.content
    assert committed(group) == {0: 30}


@pytest.mark.parametrize(
    ("action", "done"),
    [("reset_offsets_to_earliest", b"reset"), ("delete_committed_offsets", b"deleted")],
)
def test_offsets_stay_while_the_group_has_members(operator, group, offsets, action, done):
    group.state = "Stable"
    group.save()
    GroupMember.objects.create(group=group, member_id="m1")
    response = operator.post(
        "/admin/brokers/consumergroup/",
        {"action": action, "_selected_action": [group.pk]},
        follow=True,
    )
    assert b"only be " + done + b" while the group is Empty" in response.content
    assert committed(group) == {0: 30}


def test_delete_committed_offsets_of_an_empty_group(operator, group):
    response = operator.post(
        "/admin/brokers/consumergroup/",
        {"action": "delete_committed_offsets", "_selected_action": [group.pk]},
        follow=True,
    )
    assert b"deleted 1 committed offsets." in response.content
    assert committed(group) == {}
