"""Cooperative (KIP-429) rebalancing and static membership (KIP-345) with real clients.

The same in-process listener as test_group_clients.py (real logs, the real coordinator over the
Django store). confluent-kafka (librdkafka) and kafka-python 3 both implement the
cooperative-sticky assignor and group.instance.id; aiokafka has group_instance_id but no
cooperative assignor, so it is covered for static membership only.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import pytest
from group_test_support import PARTITIONS, TOPIC, GroupBroker, wait_until

from brokers.node.group_store import DjangoGroupStore

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

SESSION_TIMEOUT_MS = 6000
"""Long enough for a restarted client to come back inside it, short enough to wait out."""


@pytest.fixture
def broker(tenant, tmp_path):
    from brokers.models import Topic

    Topic.objects.create(tenant=tenant, name=TOPIC, partition_count=PARTITIONS)
    with GroupBroker(tmp_path, DjangoGroupStore()) as running:
        yield running


class RdkafkaMember:
    """A confluent-kafka Consumer that records its rebalance callbacks, records and errors.

    `poll()` consumes a batch and commits it synchronously before the next one (and a revoke
    commits what is left), so a partition that moves resumes exactly after the last record its
    previous owner saw.
    """

    def __init__(self, bootstrap: str, name: str, group_id: str, **config: Any) -> None:
        from confluent_kafka import Consumer

        self.name = name
        self.events: list[tuple[str, frozenset[int]]] = []
        self.owned: set[int] = set()
        self.lost_all_on_revoke = False
        """A revoke took every partition it owned: what an eager rebalance does."""
        self.records: list[tuple[int, int]] = []
        self.uncommitted: dict[int, int] = {}
        """partition → the position after the last record consumed, until committed."""
        self.failed_commits: list[Any] = []
        self.errors: list[Any] = []
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group_id,
                "client.id": name,
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": 200,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "broker.address.family": "v4",
                "error_cb": self.errors.append,
                **config,
            }
        )
        self.consumer.subscribe(
            [TOPIC], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        moved = frozenset(tp.partition for tp in partitions)
        self.events.append(("assign", moved))
        self.owned |= moved

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        moved = frozenset(tp.partition for tp in partitions)
        self.events.append(("revoke", moved))
        self.commit(moved & set(self.uncommitted))  # before the next owner reads from it
        if moved and moved == self.owned:
            self.lost_all_on_revoke = True
        self.owned -= moved

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        moved = frozenset(tp.partition for tp in partitions)
        self.events.append(("lost", moved))
        self.owned -= moved

    def poll(self) -> None:
        for message in self.consumer.consume(100, 0.02):
            if message.error():
                self.errors.append(message.error())
                continue
            self.records.append((message.partition(), message.offset()))
            self.uncommitted[message.partition()] = message.offset() + 1
        self.commit(set(self.uncommitted))

    def commit(self, partitions: set[int]) -> None:
        """Commit what was consumed of `partitions`. A commit racing a rebalance may fail as in
        Kafka (ILLEGAL_GENERATION: the barrier fell before it arrived); it is kept and retried
        with the next batch or, at the latest, when the partition is revoked."""
        from confluent_kafka import KafkaError, KafkaException, TopicPartition

        offsets = [TopicPartition(TOPIC, p, self.uncommitted[p]) for p in partitions]
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            retriable = (KafkaError.ILLEGAL_GENERATION, KafkaError.REBALANCE_IN_PROGRESS)
            if error.args[0].code() not in retriable:
                raise
            self.failed_commits.append(error.args[0])
            return
        for partition in partitions:
            del self.uncommitted[partition]

    @property
    def partitions(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}

    def close(self) -> None:
        self.consumer.close()


def poll_all(members: list[Any]) -> None:
    for member in members:
        member.poll()


def shares_all_partitions(members: list[Any]) -> bool:
    """Every partition owned by exactly one member, and every member owning some."""
    shares = [member.partitions for member in members]
    owned = sorted(p for share in shares for p in share)
    return all(shares) and owned == list(range(PARTITIONS))


def wait_for_shares(members: list[Any]) -> None:
    wait_until(lambda: shares_all_partitions(members), timeout_s=40, poll=lambda: poll_all(members))


def produce(broker: GroupBroker, count: int, start: int) -> list[tuple[int, int]]:
    """`count` records spread over every partition; their (partition, offset)s."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})
    delivered: list[tuple[int, int]] = []

    def on_delivery(error: Any, message: Any) -> None:
        assert error is None, error
        delivered.append((message.partition(), message.offset()))

    for index in range(start, start + count):
        producer.produce(
            TOPIC, value=f"r{index}".encode(), partition=index % PARTITIONS, on_delivery=on_delivery
        )
    assert producer.flush(10) == 0
    assert len(delivered) == count
    return delivered


def group_generation(broker: GroupBroker, group_id: str) -> int:
    from brokers.models import ConsumerGroup

    broker.run(broker.groups.flush())
    return ConsumerGroup.objects.get(group_id=group_id).generation_id


def poll_for(members: list[Any], seconds: float) -> None:
    """Keep members polling (heartbeating, consuming) for a while: to see that nothing happens."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        poll_all(members)


# --- cooperative-sticky ---------------------------------------------------------------------


def test_confluent_cooperative_sticky_moves_only_the_moved_partitions_and_loses_no_record(
    broker,
):
    group = "coop"
    config = {"partition.assignment.strategy": "cooperative-sticky"}
    produced = produce(broker, 60, 0)
    members = [RdkafkaMember(broker.bootstrap, f"c{i}", group, **config) for i in range(3)]
    everyone = list(members)
    try:

        def consumed() -> list[tuple[int, int]]:
            return [record for member in everyone for record in member.records]

        wait_for_shares(members)
        # The Python binding has no rebalance_protocol(); the group's chosen assignor says it.
        described = broker.run(broker.groups.describe_group(None, group))
        assert described.protocol_name == "cooperative-sticky"
        wait_until(lambda: len(consumed()) >= len(produced), poll=lambda: poll_all(members))

        # A fourth member joins while records keep arriving: the three give up one partition
        # between two of them, and keep the rest through the rebalance.
        before_join = {m.name: m.partitions for m in members}
        for member in members:
            member.events.clear()
        produced += produce(broker, 60, 60)
        members.append(RdkafkaMember(broker.bootstrap, "c3", group, **config))
        everyone.append(members[-1])
        produced += produce(broker, 60, 120)
        wait_for_shares(members)
        for member in members[:3]:
            revoked = {p for kind, moved in member.events if kind == "revoke" for p in moved}
            assigned = {p for kind, moved in member.events if kind == "assign" for p in moved}
            assert ("lost", frozenset()) not in member.events
            assert revoked < before_join[member.name], (member.name, member.events)
            assert not assigned, (member.name, member.events)  # nobody else left: only giving
            assert member.partitions == before_join[member.name] - revoked
        assert sum(len(before_join[m.name] - m.partitions) for m in members[:3]) == len(
            members[3].partitions
        )

        # One leaves (LeaveGroup on close): the others only gain its partitions.
        for member in members:
            member.events.clear()
        leaving = members.pop(0)
        before_leave = {m.name: m.partitions for m in members}
        assert not leaving.lost_all_on_revoke  # closing revokes all of its own: not checked
        leaving.close()
        produced += produce(broker, 60, 180)
        wait_for_shares(members)
        for member in members:
            assert not [e for e in member.events if e[0] != "assign"], member.events
            assert member.partitions >= before_leave[member.name]

        wait_until(lambda: len(consumed()) >= len(produced), poll=lambda: poll_all(members))
        poll_for(members, 0.5)  # a duplicate delivered late would show up here
        assert not any(m.lost_all_on_revoke for m in members)
        duplicates = [r for r, n in Counter(consumed()).items() if n > 1]
        assert not duplicates
        assert sorted(consumed()) == sorted(produced)
    finally:
        for member in members:
            member.close()


class KafkaPythonMember:
    """A kafka-python consumer polled by a thread of its own: its poll blocks in JoinGroup until
    the barrier falls, so members sharing one thread would hold each other's rejoin back."""

    def __init__(self, bootstrap: str, name: str, group_id: str, **config: Any) -> None:
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        self.name = name
        self.events: list[tuple[str, frozenset[int]]] = []
        self.records: list[tuple[int, int]] = []
        self._assignment: set[int] = set()
        self.failed_commits: list[Exception] = []
        member = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: Any) -> None:
                member.events.append(("revoke", frozenset(tp.partition for tp in revoked)))

            def on_partitions_assigned(self, assigned: Any) -> None:
                member.events.append(("assign", frozenset(tp.partition for tp in assigned)))

        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            client_id=name,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=200,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **config,
        )
        self.consumer.subscribe([TOPIC], listener=Listener())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll_until_stopped, daemon=True)
        self._thread.start()

    def _poll_until_stopped(self) -> None:
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        while not self._stop.is_set():
            batches = self.consumer.poll(timeout_ms=50)
            offsets = {}
            for tp, records in batches.items():
                self.records += [(tp.partition, r.offset) for r in records]
                offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
            if offsets:
                try:
                    self.consumer.commit(offsets)
                except KafkaError as error:  # e.g. CommitFailedError racing a rebalance
                    self.failed_commits.append(error)
            self._assignment = {tp.partition for tp in self.consumer.assignment()}

    def poll(self) -> None:
        time.sleep(0.02)  # its own thread polls

    @property
    def partitions(self) -> set[int]:
        return set(self._assignment)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()


def test_kafka_python_cooperative_sticky_join_keeps_the_partitions_members_still_own(broker):
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor

    group = "coop-kp"
    config = {"partition_assignment_strategy": [CooperativeStickyAssignor]}
    produced = produce(broker, 60, 0)
    members = [KafkaPythonMember(broker.bootstrap, f"k{i}", group, **config) for i in range(3)]
    try:
        wait_for_shares(members)
        before_join = {m.name: m.partitions for m in members}
        for member in members:
            member.events.clear()
        members.append(KafkaPythonMember(broker.bootstrap, "k3", group, **config))
        produced += produce(broker, 60, 60)
        wait_for_shares(members)
        for member in members[:3]:
            revoked = {p for kind, moved in member.events if kind == "revoke" for p in moved}
            # Eager would revoke everything the member owned before the join.
            assert revoked < before_join[member.name], (member.name, member.events)
            assert member.partitions == before_join[member.name] - revoked
        consumed = lambda: [r for m in members for r in m.records]  # noqa: E731
        # Every record reached some member (kafka-python's commits may race the rebalance, so
        # the exactly-once check is the confluent-kafka test's).
        wait_until(lambda: set(consumed()) >= set(produced), poll=lambda: poll_all(members))
        assert set(consumed()) == set(produced)
    finally:
        for member in members:
            member.close()


# --- static membership ----------------------------------------------------------------------


def static_members(broker: GroupBroker, group: str, count: int) -> list[RdkafkaMember]:
    members = [
        RdkafkaMember(broker.bootstrap, f"s{i}", group, **{"group.instance.id": f"s{i}"})
        for i in range(count)
    ]
    wait_for_shares(members)
    return members


def members_of(broker: GroupBroker, group: str) -> set[str | None]:
    described = broker.run(broker.groups.describe_group(None, group))
    return {member.group_instance_id for member in described.members}


def test_restarted_static_member_gets_its_partitions_back_without_a_rebalance(broker):
    group = "static-back"
    members = static_members(broker, group, 3)
    try:
        poll_for(members, 0.5)
        generation = group_generation(broker, group)
        before = {m.name: m.partitions for m in members}
        for member in members:
            member.events.clear()

        restarting = members.pop()
        restarting.close()  # a static member sends no LeaveGroup: it stays in the group
        assert members_of(broker, group) == {"s0", "s1", "s2"}
        poll_for(members, 0.5)
        members.append(RdkafkaMember(broker.bootstrap, "s2", group, **{"group.instance.id": "s2"}))
        wait_until(lambda: members[-1].partitions, timeout_s=20, poll=lambda: poll_all(members))
        assert members[-1].partitions == before["s2"]

        poll_for(members, 2)  # the others keep heartbeating: a rebalance would reach them now
        for member in members[:2]:
            assert member.events == [], (member.name, member.events)
            assert member.partitions == before[member.name]
        assert group_generation(broker, group) == generation
        assert members_of(broker, group) == {"s0", "s1", "s2"}
    finally:
        for member in members:
            member.close()


def test_static_member_that_does_not_come_back_loses_its_partitions_after_the_session(broker):
    group = "static-gone"
    members = static_members(broker, group, 3)
    try:
        gone = members.pop()
        closed_at = time.monotonic()
        gone.close()
        wait_for_shares(members)
        # Not at once, as a LeaveGroup would: only once its session ran out.
        assert time.monotonic() - closed_at >= SESSION_TIMEOUT_MS / 1000 * 0.9
        assert members_of(broker, group) == {"s0", "s1"}
    finally:
        for member in members:
            member.close()


def test_second_live_consumer_with_the_same_instance_id_fences_the_first(broker):
    from confluent_kafka import KafkaError

    group = "static-fence"
    members = static_members(broker, group, 2)
    first = members[0]
    second = RdkafkaMember(broker.bootstrap, "s0-twin", group, **{"group.instance.id": "s0"})
    members.append(second)
    try:

        def is_fenced() -> bool:
            # librdkafka makes FENCED_INSTANCE_ID its fatal error: error_cb gets _FATAL with the
            # broker's message, and consume() after it raises the same.
            errors = [e.args[0] if isinstance(e, Exception) else e for e in first.errors]
            return any(
                isinstance(error, KafkaError)
                and error.code() in (KafkaError.FENCED_INSTANCE_ID, KafkaError._FATAL)
                and "fenced by other consumer" in error.str()
                for error in errors
            )

        def poll_live() -> None:
            for member in members:
                try:
                    member.poll()
                except Exception as error:  # the fenced consumer raises its fatal error
                    member.errors.append(error)

        wait_until(is_fenced, timeout_s=30, poll=poll_live)
        wait_until(lambda: second.partitions, timeout_s=20, poll=poll_live)
        assert not second.errors
    finally:
        for member in members:
            member.close()


def test_kafka_python_static_member_rejoins_with_its_partitions_and_no_rebalance(broker):
    group = "static-kp"

    def static_kp(instance: str) -> KafkaPythonMember:
        return KafkaPythonMember(broker.bootstrap, instance, group, group_instance_id=instance)

    members = [static_kp(f"k{i}") for i in range(2)]
    try:
        wait_for_shares(members)
        poll_for(members, 0.5)
        generation = group_generation(broker, group)
        before = {m.name: m.partitions for m in members}
        members[0].events.clear()
        restarting = members.pop()
        restarting.close()  # kafka-python, like the Java client, sends no LeaveGroup for it
        assert members_of(broker, group) == {"k0", "k1"}
        members.append(static_kp("k1"))
        wait_until(lambda: members[-1].partitions, timeout_s=20, poll=lambda: poll_all(members))
        assert members[-1].partitions == before["k1"]
        poll_for(members, 1)
        assert members[0].events == [] and members[0].partitions == before["k0"]
        assert group_generation(broker, group) == generation
    finally:
        for member in members:
            member.close()


def test_aiokafka_static_member_rejoins_with_its_partitions_and_no_rebalance(broker):
    from aiokafka import AIOKafkaConsumer

    group = "static-aio"

    async def start(instance: str) -> Any:
        consumer = AIOKafkaConsumer(
            TOPIC,
            bootstrap_servers=broker.bootstrap,
            group_id=group,
            client_id=instance,
            group_instance_id=instance,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=200,
            enable_auto_commit=False,
        )
        await consumer.start()
        return consumer

    def partitions(consumer: Any) -> set[int]:
        return {tp.partition for tp in consumer.assignment()}

    async def until(condition: Any) -> None:
        for _ in range(400):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("condition not met in time")

    async def generation() -> int:
        # The ORM refuses to run on a thread with an event loop: read from another thread.
        return await asyncio.to_thread(group_generation, broker, group)

    async def scenario() -> tuple[set[int], set[int], int, tuple[set[int], set[int], int]]:
        stayer, restarting = await start("a0"), await start("a1")
        try:
            await until(lambda: len(partitions(stayer) | partitions(restarting)) == PARTITIONS)
            await until(lambda: partitions(stayer) and partitions(restarting))
            stayer_before, restarting_before = partitions(stayer), partitions(restarting)
            generation_before = await generation()
            await restarting.stop()  # static: aiokafka sends no LeaveGroup
            restarting = await start("a1")
            await until(lambda: partitions(restarting))
            await asyncio.sleep(1)  # the stayer keeps heartbeating: a rebalance would show
            after = (partitions(stayer), partitions(restarting), await generation())
            return stayer_before, restarting_before, generation_before, after
        finally:
            await stayer.stop()
            await restarting.stop()

    stayer_before, restarting_before, generation_before, after = asyncio.run(scenario())
    stayer_after, restarting_after, generation_after = after
    assert restarting_after == restarting_before
    assert stayer_after == stayer_before
    assert generation_after == generation_before
