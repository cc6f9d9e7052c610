"""Real consumers (kafka-python, aiokafka, confluent-kafka) in groups on the real coordinator.

The coordinator writes through to the Django models (transaction=True: server threads touch the
database), and the listener carries the real Metadata, Fetch and ListOffsets handlers over empty
logs, so consumers bootstrap, join, sync, heartbeat, commit and fetch offsets unchanged.
"""

from __future__ import annotations

import asyncio
import datetime
import struct
import threading
from typing import Any

import pytest
from group_test_support import PARTITIONS, TOPIC, GroupBroker, wait_until
from kio.schema.join_group.v5.request import JoinGroupRequest, JoinGroupRequestProtocol
from kio.schema.sync_group.v3.request import SyncGroupRequest

from brokers.node.group_store import DjangoGroupStore
from brokers.protocol.errors import ErrorCode

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

GROUP = "workers"


@pytest.fixture
def broker(tenant, tmp_path):
    from brokers.models import Topic

    Topic.objects.create(tenant=tenant, name=TOPIC, partition_count=PARTITIONS)
    with GroupBroker(tmp_path, DjangoGroupStore()) as running:
        yield running


class KafkaPythonMember:
    """A kafka-python KafkaConsumer polled by a thread of its own (its poll blocks)."""

    def __init__(self, bootstrap: str, name: str, group_id: str = GROUP) -> None:
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            client_id=name,
            session_timeout_ms=6000,
            heartbeat_interval_ms=200,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=30000,
        )
        self.consumer.subscribe([TOPIC])
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._assignment: set[int] = set()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self.consumer.poll(timeout_ms=100)
                self._assignment = {tp.partition for tp in self.consumer.assignment()}

    @property
    def partitions(self) -> set[int]:
        return set(self._assignment)

    def call(self, fn: Any) -> Any:
        """Run fn(consumer) between polls."""
        with self._lock:
            return fn(self.consumer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()


def shares_all_partitions(members: list[KafkaPythonMember]) -> bool:
    """Every partition owned by exactly one member, and every member owning some."""
    shares = [m.partitions for m in members]
    owned = sorted(p for share in shares for p in share)
    return all(shares) and owned == list(range(PARTITIONS))


def test_three_kafka_python_consumers_share_the_partitions_and_rebalance_on_leave_and_join(
    broker,
):
    members = [KafkaPythonMember(broker.bootstrap, f"c{i}") for i in range(3)]
    try:
        wait_until(lambda: shares_all_partitions(members), timeout_s=40)
        generation = broker.run(broker.groups.describe_group(None, GROUP))
        assert generation.state == "Stable" and len(generation.members) == 3

        leaving = members.pop()
        leaving.close()  # LeaveGroup: the others rebalance without waiting for a timeout
        wait_until(lambda: shares_all_partitions(members), timeout_s=40)

        members.append(KafkaPythonMember(broker.bootstrap, "c3"))
        wait_until(lambda: shares_all_partitions(members), timeout_s=40)
    finally:
        for member in members:
            member.close()

    from brokers.models import ConsumerGroup

    wait_until(lambda: ConsumerGroup.objects.filter(group_id=GROUP, state="Empty").exists())


def consumer_metadata(topics: list[str]) -> bytes:
    """ConsumerProtocol subscription v0: version, topics, empty user data."""
    data = struct.pack(">hi", 0, len(topics))
    for topic in topics:
        data += struct.pack(">h", len(topic)) + topic.encode()
    return data + struct.pack(">i", -1)


def test_member_that_stops_heartbeating_loses_its_partitions_after_the_session_timeout(broker):
    survivors = [KafkaPythonMember(broker.bootstrap, f"c{i}") for i in range(2)]
    try:
        wait_until(lambda: shares_all_partitions(survivors), timeout_s=40)
        with broker.wire() as wire:
            join = JoinGroupRequest(
                group_id=GROUP,
                session_timeout=datetime.timedelta(milliseconds=1500),
                rebalance_timeout=datetime.timedelta(seconds=30),
                member_id="",
                group_instance_id=None,
                protocol_type="consumer",
                protocols=(
                    JoinGroupRequestProtocol(name="range", metadata=consumer_metadata([TOPIC])),
                    JoinGroupRequestProtocol(
                        name="roundrobin", metadata=consumer_metadata([TOPIC])
                    ),
                ),
            )
            first = wire.call(join)
            assert first.error_code == ErrorCode.member_id_required
            joined = wire.call(JoinGroupRequest(**{**_fields(join), "member_id": first.member_id}))
            assert joined.error_code == ErrorCode.none
            synced = wire.call(
                SyncGroupRequest(
                    group_id=GROUP,
                    generation_id=joined.generation_id,
                    member_id=joined.member_id,
                    group_instance_id=None,
                    assignments=(),
                )
            )
            assert synced.error_code == ErrorCode.none and synced.assignment
            # The survivors gave partitions to the newcomer...
            wait_until(lambda: sum(len(m.partitions) for m in survivors) < PARTITIONS)
            # Now silent: no heartbeats. Its session (1.5 s) runs out and the others take over.
            wait_until(lambda: shares_all_partitions(survivors), timeout_s=40)
            described = broker.run(broker.groups.describe_group(None, GROUP))
            assert joined.member_id not in {m.member_id for m in described.members}
    finally:
        for member in survivors:
            member.close()


def _fields(message: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}


def test_committed_offsets_are_stored_and_read_back_after_a_restart(broker):
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    from brokers.models import CommittedOffset

    member = KafkaPythonMember(broker.bootstrap, "committer")
    try:
        wait_until(lambda: member.partitions == set(range(PARTITIONS)), timeout_s=40)
        offsets = {
            TopicPartition(TOPIC, p): OffsetAndMetadata(10 + p, f"m{p}", -1)
            for p in range(PARTITIONS)
        }
        member.call(lambda consumer: consumer.commit(offsets))
    finally:
        member.close()
    rows = {r.partition: r.offset for r in CommittedOffset.objects.filter(group__group_id=GROUP)}
    assert rows == {p: 10 + p for p in range(PARTITIONS)}

    broker.restart_coordinator()

    from kafka import KafkaConsumer

    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=GROUP)
    try:
        assert reader.committed(TopicPartition(TOPIC, 3)) == 13
        assert reader.committed(TopicPartition(TOPIC, 0), metadata=True).metadata == "m0"
    finally:
        reader.close()


def test_aiokafka_consumer_gets_an_assignment(broker):
    from aiokafka import AIOKafkaConsumer

    async def consume() -> set[int]:
        consumer = AIOKafkaConsumer(
            TOPIC,
            bootstrap_servers=broker.bootstrap,
            group_id="aio",
            session_timeout_ms=6000,
            heartbeat_interval_ms=200,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            for _ in range(400):
                if consumer.assignment():
                    return {tp.partition for tp in consumer.assignment()}
                await asyncio.sleep(0.05)
            return set()
        finally:
            await consumer.stop()

    assert asyncio.run(consume()) == set(range(PARTITIONS))


def test_confluent_kafka_consumers_get_disjoint_assignments(broker):
    from confluent_kafka import Consumer

    def new_consumer(name: str) -> Any:
        consumer = Consumer(
            {
                "bootstrap.servers": broker.bootstrap,
                "group.id": "rdkafka",
                "client.id": name,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 200,
                "enable.auto.commit": False,
                "broker.address.family": "v4",
            }
        )
        consumer.subscribe([TOPIC])
        return consumer

    consumers = [new_consumer("r1"), new_consumer("r2")]
    try:

        def shares() -> bool:
            parts = [{tp.partition for tp in c.assignment()} for c in consumers]
            return all(parts) and sorted(p for s in parts for p in s) == list(range(PARTITIONS))

        wait_until(shares, timeout_s=60, poll=lambda: [c.poll(0.05) for c in consumers])
    finally:
        for consumer in consumers:
            consumer.close()
