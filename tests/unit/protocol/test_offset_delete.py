"""OffsetDelete (API key 47) on a real listener and coordinator over the Django models: the
admin calls of kafka-python and librdkafka, and raw requests for each error Kafka answers."""

from __future__ import annotations

import dataclasses
import time

import pytest
from data_test_support import topic_meta
from group_test_support import TOPIC
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from offsets_test_support import (
    AUDIT,
    commit,
    committed,
    delete_offsets,
    join_and_sync,
    offsets_broker,
    sasl_login,
)
from protocol_test_support import WireClient
from rdkafka_admin_support import delete_consumer_group_offsets

from brokers.groups.placement import coordinator_for
from brokers.node.snapshot import BrokerMeta
from brokers.protocol.errors import ErrorCode
from brokers.protocol.services import Principal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

SUBSCRIBED = ErrorCode.group_subscribed_to_topic
UNKNOWN = ErrorCode.unknown_topic_or_partition


@pytest.fixture
def broker(tenant, tmp_path):
    with offsets_broker(tmp_path, tenant) as running:
        yield running


def stored(group_id: str, tenant: str = "acme") -> dict[tuple[str, int], int]:
    """The CommittedOffset rows of a group: what admin and REST lag show."""
    from brokers.models import CommittedOffset

    rows = CommittedOffset.objects.filter(group__tenant__name=tenant, group__group_id=group_id)
    return {(r.topic.name, r.partition): r.offset for r in rows.select_related("topic")}


def group_exists(group_id: str, tenant: str = "acme") -> bool:
    from brokers.models import ConsumerGroup

    return ConsumerGroup.objects.filter(tenant__name=tenant, group_id=group_id).exists()


def test_api_versions_advertises_offset_delete_v0(broker):
    with broker.wire() as wire:
        request = ApiVersionsRequest(client_software_name="t", client_software_version="1")
        versions = wire.call(request)
    ranges = {a.api_key: (a.min_version, a.max_version) for a in versions.api_keys}
    assert ranges[47] == (0, 0)


def test_kafka_python_admin_deletes_offsets_and_is_refused_for_a_live_subscription(broker):
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.errors import GroupSubscribedToTopicError, NoError
    from kafka.structs import OffsetAndMetadata

    with broker.wire() as wire:
        offsets = {(TOPIC, 0): 10, (TOPIC, 1): 11, (TOPIC, 2): 12}
        assert set(commit(wire, "simple", offsets).values()) == {ErrorCode.none}
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    consumer = None
    try:
        result = admin.delete_group_offsets(
            "simple", [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
        )
        assert result == {TopicPartition(TOPIC, 0): NoError, TopicPartition(TOPIC, 1): NoError}
        with broker.wire() as wire:
            assert committed(wire, "simple") == {(TOPIC, 2): 12}
        assert stored("simple") == {(TOPIC, 2): 12}

        # A live consumer subscribed to `events`: its offsets there stay, `audit`'s may go.
        consumer = KafkaConsumer(
            bootstrap_servers=broker.bootstrap,
            group_id="live",
            enable_auto_commit=False,
            session_timeout_ms=30_000,
            heartbeat_interval_ms=500,
        )
        consumer.subscribe([TOPIC])
        deadline = time.monotonic() + 40
        while not consumer.assignment():
            assert time.monotonic() < deadline, "the consumer never got partitions"
            consumer.poll(timeout_ms=100)
        consumer.commit(
            {
                TopicPartition(TOPIC, 0): OffsetAndMetadata(5, "", -1),
                TopicPartition(AUDIT, 1): OffsetAndMetadata(6, "", -1),
            }
        )
        assert broker.run(broker.groups.describe_group(None, "live")).state == "Stable"
        assert stored("live") == {(TOPIC, 0): 5, (AUDIT, 1): 6}
        result = admin.delete_group_offsets(
            "live", [TopicPartition(TOPIC, 0), TopicPartition(AUDIT, 1)]
        )
        assert result == {
            TopicPartition(TOPIC, 0): GroupSubscribedToTopicError,
            TopicPartition(AUDIT, 1): NoError,
        }
        assert stored("live") == {(TOPIC, 0): 5}
    finally:
        if consumer is not None:
            consumer.close()
        admin.close()


def test_librdkafka_deletes_offsets_and_reports_each_partitions_error(broker):
    with broker.wire() as wire:
        offsets = {(TOPIC, 0): 10, (TOPIC, 1): 11, (AUDIT, 0): 3}
        assert set(commit(wire, "rd", offsets).values()) == {ErrorCode.none}
    error, partitions = delete_consumer_group_offsets(
        broker.bootstrap, "rd", [(TOPIC, 0), (TOPIC, 1), ("nosuch", 0)]
    )
    assert error == ErrorCode.none
    assert partitions == {(TOPIC, 0): 0, (TOPIC, 1): 0, ("nosuch", 0): UNKNOWN}
    assert stored("rd") == {(AUDIT, 0): 3}

    error, partitions = delete_consumer_group_offsets(broker.bootstrap, "nobody", [(TOPIC, 0)])
    assert error == ErrorCode.group_id_not_found and partitions == {}

    with WireClient(broker.address, timeout_s=30) as member_wire:
        member = join_and_sync(member_wire, "rd-live", [TOPIC])
        assert commit(member_wire, "rd-live", {(TOPIC, 3): 7}, member) == {
            (TOPIC, 3): ErrorCode.none
        }
        error, partitions = delete_consumer_group_offsets(
            broker.bootstrap, "rd-live", [(TOPIC, 3), (AUDIT, 1)]
        )
    assert error == ErrorCode.none
    assert partitions == {(TOPIC, 3): SUBSCRIBED, (AUDIT, 1): 0}
    assert stored("rd-live") == {(TOPIC, 3): 7}


def test_group_subscribed_to_topic_keeps_those_offsets_and_deletes_the_others(broker):
    with broker.wire() as wire:
        member = join_and_sync(wire, "members", [TOPIC])
        offsets = {(TOPIC, 0): 1, (TOPIC, 1): 2, (AUDIT, 0): 3, (AUDIT, 1): 4}
        assert set(commit(wire, "members", offsets, member).values()) == {ErrorCode.none}
        error, codes = delete_offsets(
            wire, "members", {TOPIC: [0, 99], AUDIT: [0], "nosuch": [0]}
        )
        assert error == ErrorCode.none
        assert codes == {
            (TOPIC, 0): SUBSCRIBED,
            (TOPIC, 99): UNKNOWN,  # no such partition
            (AUDIT, 0): ErrorCode.none,
            ("nosuch", 0): UNKNOWN,
        }
        assert committed(wire, "members") == {(TOPIC, 0): 1, (TOPIC, 1): 2, (AUDIT, 1): 4}
    assert stored("members") == {(TOPIC, 0): 1, (TOPIC, 1): 2, (AUDIT, 1): 4}


def test_group_level_errors_are_the_responses_with_no_topics(broker):
    with broker.wire() as wire:
        assert delete_offsets(wire, "nobody", {TOPIC: [0]}) == (ErrorCode.group_id_not_found, {})
        assert delete_offsets(wire, "", {TOPIC: [0]}) == (ErrorCode.invalid_group_id, {})
        join_and_sync(wire, "workers", [TOPIC], protocol_type="connect")
        assert delete_offsets(wire, "workers", {TOPIC: [0]}) == (ErrorCode.non_empty_group, {})

        # A second live broker: the groups it coordinates are NOT_COORDINATOR here.
        host, port = broker.address
        brokers = {**broker.snapshot.brokers, 2: BrokerMeta(2, host, port + 1, "")}
        broker.set_snapshot(dataclasses.replace(broker.snapshot, brokers=brokers))
        elsewhere = next(
            name
            for name in (f"g{i}" for i in range(100))
            if coordinator_for("acme", name, [1, 2]) == 2
        )
        assert delete_offsets(wire, elsewhere, {TOPIC: [0]}) == (ErrorCode.not_coordinator, {})


def test_deleting_an_empty_groups_last_offsets_removes_the_group(broker):
    with broker.wire() as wire:
        assert commit(wire, "once", {(TOPIC, 4): 9}) == {(TOPIC, 4): ErrorCode.none}
        assert group_exists("once")
        assert delete_offsets(wire, "once", {TOPIC: [4]}) == (
            ErrorCode.none,
            {(TOPIC, 4): ErrorCode.none},
        )
        assert committed(wire, "once") == {}
        assert delete_offsets(wire, "once", {TOPIC: [4]}) == (ErrorCode.group_id_not_found, {})
    assert not group_exists("once")


@pytest.fixture
def tenants_broker(tenant, other_tenant, tmp_path):
    from brokers.models import Topic

    Topic.objects.create(tenant=other_tenant, name="orders", partition_count=2)
    users = {
        "acme-user": Principal("acme-user", tenant="acme"),
        "globex-user": Principal("globex-user", tenant="globex"),
    }
    orders = topic_meta("orders", 2, tenant="globex")
    with offsets_broker(tmp_path, tenant, users=users, more_topics=[orders]) as running:
        yield running


def test_another_tenants_group_and_topic_are_unknown(tenants_broker):
    with tenants_broker.wire() as acme, tenants_broker.wire() as globex:
        sasl_login(acme, "acme-user", "secret")
        sasl_login(globex, "globex-user", "secret")
        assert commit(acme, "shared", {(TOPIC, 0): 5}) == {(TOPIC, 0): ErrorCode.none}
        # globex has no group "shared" (acme's is another namespace's)...
        assert delete_offsets(globex, "shared", {TOPIC: [0]}) == (
            ErrorCode.group_id_not_found,
            {},
        )
        # ... and once it has one, acme's topic is still not one of its topics.
        assert commit(globex, "shared", {("orders", 1): 9}) == {("orders", 1): ErrorCode.none}
        assert delete_offsets(globex, "shared", {TOPIC: [0], "orders": [1]}) == (
            ErrorCode.none,
            {(TOPIC, 0): UNKNOWN, ("orders", 1): ErrorCode.none},
        )
        assert committed(acme, "shared") == {(TOPIC, 0): 5}
        assert committed(globex, "shared") == {}
    assert stored("shared", "acme") == {(TOPIC, 0): 5}
    assert not group_exists("shared", "globex") and group_exists("shared", "acme")
