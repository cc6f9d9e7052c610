"""Shared tails: a deleted (or re-created) topic's tails stop, free their assignments and tell
each subscriber once; a subscriber of the new topic never joins the old topic's tail."""

import asyncio
import uuid

import pytest
from live_test_support import record

from brokers.live import selectors, tails
from brokers.live.tails import PartitionTail, TailRegistry, TopicDeleted


class FakeReader:
    def __init__(self):
        self.assigned = 0
        self.commands: list = []

    def assign(self, topic, partition, offset) -> None:
        self.assigned += 1
        self.commands.append(("assign", topic, partition, offset))

    def unassign(self, topic, partition) -> None:
        self.assigned -= 1
        self.commands.append(("unassign", topic, partition))

    def stop(self) -> None:
        self.commands.append(("stop",))


class Listener:
    def __init__(self):
        self.offered: list = []
        self.errors: list = []
        self.deleted: list = []

    def offer(self, partition, shared) -> None:
        self.offered.append((partition, [r.offset for r in shared.records]))

    def tail_error(self, partition, message) -> None:
        self.errors.append((partition, message))

    def topic_deleted(self, topic) -> None:
        self.deleted.append(topic)


def fake_blocking(monkeypatch, topic_ids: dict, log_end: int = 0) -> list:
    """run_blocking answered here: the database's topic ids, ListOffsets' log end."""
    calls = []

    async def run_blocking(func, *args):
        calls.append(func.__name__)
        if func is selectors.changed_topic_ids:
            return 2, {name: topic_ids[name] for name in args[1] if name in topic_ids}
        if func.__name__ == "list_offsets":
            return {(topic, p): log_end for topic, ps in args[1].items() for p in ps}
        raise AssertionError(func)

    monkeypatch.setattr(tails, "run_blocking", run_blocking)
    return calls


def registry_with(tail_specs, reader: FakeReader) -> TailRegistry:
    """A registry whose tails are running: (topic, topic id, partition, listeners) each."""
    registry = TailRegistry()
    registry.readers["acme"] = reader
    for topic, topic_id, partition, listeners in tail_specs:
        tail = registry.tails["acme", topic, partition] = PartitionTail(
            "acme", topic, topic_id, partition
        )
        tail.next_offset = 0
        tail.started.set_result(None)
        tail.listeners.update(listeners)
        reader.assign(topic, partition, 0)
    return registry


def test_a_deleted_topics_tails_stop_free_their_assignments_and_tell_each_listener_once(
    monkeypatch
):
    async def scenario():
        doomed, kept = uuid.uuid4(), uuid.uuid4()
        both, one, other = Listener(), Listener(), Listener()
        reader = FakeReader()
        registry = registry_with([
            ("doomed", doomed, 0, [both, one]), ("doomed", doomed, 1, [both]),
            ("kept", kept, 0, [other]),
        ], reader)
        fake_blocking(monkeypatch, {("acme", "kept"): kept})
        await registry.look_for_deleted_topics()
        return registry, reader, both, one, other

    registry, reader, both, one, other = asyncio.run(scenario())
    assert set(registry.tails) == {("acme", "kept", 0)}
    assert ("unassign", "doomed", 0) in reader.commands
    assert ("unassign", "doomed", 1) in reader.commands
    assert reader.assigned == 1 and ("stop",) not in reader.commands  # "kept" still tails
    assert both.deleted == ["doomed"] and one.deleted == ["doomed"] and other.deleted == []


def test_the_readers_thread_stops_with_its_last_tail(monkeypatch):
    async def scenario():
        doomed, listener, reader = uuid.uuid4(), Listener(), FakeReader()
        registry = registry_with([("doomed", doomed, 0, [listener])], reader)
        fake_blocking(monkeypatch, {})
        await registry.look_for_deleted_topics()
        return registry, reader

    registry, reader = asyncio.run(scenario())
    assert registry.tails == {} and registry.readers == {}
    assert reader.commands[-2:] == [("unassign", "doomed", 0), ("stop",)]


def test_a_topic_made_again_under_its_name_ends_the_old_topics_tails(monkeypatch):
    async def scenario():
        old, new, listener, reader = uuid.uuid4(), uuid.uuid4(), Listener(), FakeReader()
        registry = registry_with([("orders", old, 0, [listener])], reader)
        fake_blocking(monkeypatch, {("acme", "orders"): new})
        await registry.look_for_deleted_topics()
        return registry, listener

    registry, listener = asyncio.run(scenario())
    assert registry.tails == {} and listener.deleted == ["orders"]


def test_an_unchanged_metadata_version_reads_no_topics(monkeypatch):
    async def scenario():
        listener, reader = Listener(), FakeReader()
        registry = registry_with([("orders", uuid.uuid4(), 0, [listener])], reader)
        monkeypatch.setattr(selectors, "metadata_version", lambda: 7)
        monkeypatch.setattr(selectors, "topic_ids", lambda names: pytest.fail("read topics"))

        async def run_blocking(func, *args):
            return func(*args)

        monkeypatch.setattr(tails, "run_blocking", run_blocking)
        return registry, listener, await registry.look_for_deleted_topics(7)

    registry, listener, version = asyncio.run(scenario())
    assert version == 7 and len(registry.tails) == 1 and listener.deleted == []


def test_a_subscriber_of_the_new_topic_gets_a_new_tail_not_the_old_one(monkeypatch):
    async def scenario():
        old, new, old_listener, reader = uuid.uuid4(), uuid.uuid4(), Listener(), FakeReader()
        kept = uuid.uuid4()  # another tail of the tenant keeps its reader running
        registry = registry_with(
            [("orders", old, 0, [old_listener]), ("kept", kept, 0, [Listener()])], reader
        )
        fake_blocking(monkeypatch, {("acme", "orders"): new, ("acme", "kept"): kept})
        newcomer = Listener()
        tail = await registry.join("acme", "orders", new, 0, newcomer)
        return tail, new, old_listener, newcomer, reader

    tail, new, old_listener, newcomer, reader = asyncio.run(scenario())
    assert tail.topic_id == new and tail.listeners == {newcomer}
    assert old_listener.deleted == ["orders"]
    # The old assignment is freed before the new one is made.
    assert reader.commands[-2:] == [("unassign", "orders", 0), ("assign", "orders", 0, 0)]


def test_a_subscriber_of_a_topic_deleted_meanwhile_is_refused(monkeypatch):
    async def scenario():
        old, new, listener, reader = uuid.uuid4(), uuid.uuid4(), Listener(), FakeReader()
        registry = registry_with([("orders", new, 0, [listener])], reader)
        fake_blocking(monkeypatch, {("acme", "orders"): new})
        with pytest.raises(TopicDeleted, match=r"Topic 'orders' was deleted\."):
            await registry.join("acme", "orders", old, 0, Listener())
        return registry, listener

    registry, listener = asyncio.run(scenario())
    assert registry.tails["acme", "orders", 0].listeners == {listener}
    assert listener.deleted == []


def test_unknown_topic_errors_wake_the_watcher_instead_of_reaching_subscribers():
    async def scenario():
        listener, reader = Listener(), FakeReader()
        registry = registry_with([("orders", uuid.uuid4(), 0, [listener])], reader)
        registry._deliver("acme", {}, [("orders", 0, "UNKNOWN_TOPIC_OR_PARTITION", "gone")])
        looked = registry._look_now.is_set()
        registry._deliver("acme", {}, [("orders", 0, "NOT_LEADER_OR_FOLLOWER", "moved")])
        return listener, looked

    listener, looked = asyncio.run(scenario())
    assert looked
    assert listener.errors == [(0, "NOT_LEADER_OR_FOLLOWER: moved")]


def test_a_tail_hands_on_only_records_from_its_position():
    async def scenario():
        listener = Listener()
        tail = PartitionTail("acme", "orders", uuid.uuid4(), 0)
        tail.next_offset = 3
        tail.listeners.add(listener)
        tail.dispatch([record(1), record(2)])
        tail.dispatch([record(2), record(3), record(4)])
        tail.dispatch([record(5)])
        return listener, tail

    listener, tail = asyncio.run(scenario())
    assert listener.offered == [(0, [3, 4]), (0, [5])]
    assert tail.next_offset == 6
