"""The coordinator deleting and expiring committed offsets (in-memory store, a clock moved by
hand): OffsetDelete's group rules, KIP-211 expiry, Empty groups removed as Kafka removes them."""

from __future__ import annotations

import asyncio
import dataclasses

from brokers.groups.coordinator import GroupCoordinator
from brokers.groups.placement import coordinator_for
from brokers.groups.settings import GroupSettings
from brokers.protocol.errors import ErrorCode
from brokers.protocol.group_services import (
    CommitRequest,
    JoinRequest,
    LeavingMember,
    OffsetToCommit,
    SyncRequest,
)
from tests.unit.groups.group_support import ACME, GLOBEX, SETTINGS, coordinator, subscription

RETENTION_MS = 1_000


class Clock:
    def __init__(self) -> None:
        self.now_ms = 0.0

    def __call__(self) -> float:
        return self.now_ms


def expiring(check_interval_ms: int = 600_000) -> GroupSettings:
    return dataclasses.replace(
        SETTINGS,
        offsets_retention_ms=RETENTION_MS,
        offsets_retention_check_interval_ms=check_interval_ms,
    )


async def stable_member(
    groups: GroupCoordinator, group_id: str, topics: list[str], protocol_type: str = "consumer"
) -> tuple[str, int]:
    """A member (of acme) that joined with a subscription to `topics` and got its assignment."""
    joined = await groups.join_group(
        ACME,
        JoinRequest(
            group_id=group_id,
            member_id="",
            group_instance_id=None,
            protocol_type=protocol_type,
            protocols=(("range", subscription(topics)),),
            session_timeout_ms=30_000,
            rebalance_timeout_ms=30_000,
        ),
    )
    assert joined.error_code == ErrorCode.none
    sync = SyncRequest(group_id, joined.generation_id, joined.member_id, None, None, None, {})
    assert (await groups.sync_group(ACME, sync)).error_code == ErrorCode.none
    return joined.member_id, joined.generation_id


async def commit(
    groups: GroupCoordinator,
    group_id: str,
    offsets: dict[tuple[str, int], int],
    member: tuple[str, int] = ("", -1),
) -> list[int]:
    request = CommitRequest(
        group_id,
        member[1],
        member[0],
        None,
        tuple(OffsetToCommit(t, p, offset) for (t, p), offset in offsets.items()),
    )
    return [e.error_code for e in await groups.commit_offsets(ACME, request)]


async def committed(groups: GroupCoordinator, group_id: str) -> dict[tuple[str, int], int]:
    fetched = await groups.fetch_offsets(ACME, group_id, None)
    return {(o.topic, o.partition): o.offset for o in fetched.offsets}


def test_standalone_offsets_expire_retention_after_their_commit_then_the_group_goes(store):
    async def scenario() -> None:
        clock = Clock()
        groups = coordinator(store, settings=expiring(), clock=clock)
        assert await commit(groups, "simple", {("events", 0): 5}) == [0]
        clock.now_ms = 500
        assert await commit(groups, "simple", {("events", 1): 7}) == [0]
        clock.now_ms = 999
        assert await groups.expire_offsets() == 0
        clock.now_ms = 1_000
        assert await groups.expire_offsets() == 1
        assert await committed(groups, "simple") == {("events", 1): 7}
        assert ("acme", "simple") in store.groups
        clock.now_ms = 1_500
        assert await groups.expire_offsets() == 1
        # No offsets left and Empty: Dead and removed, as Kafka's cleanupGroupMetadata does.
        assert ("acme", "simple") not in store.groups
        assert (await groups.describe_group(ACME, "simple")).state == "Dead"
        assert await groups.delete_group(ACME, "simple") == ErrorCode.group_id_not_found
        await groups.close()

    asyncio.run(scenario())


def test_offsets_expire_retention_after_the_group_became_empty_even_across_a_restart(store):
    async def scenario() -> None:
        clock = Clock()
        groups = coordinator(store, settings=expiring(), clock=clock)
        member = await stable_member(groups, "g", ["events"])
        assert await commit(groups, "g", {("events", 0): 42}, member) == [0]
        clock.now_ms = 800
        left = await groups.leave_group(ACME, "g", [LeavingMember(member[0])])
        assert left.members[0][1] == ErrorCode.none
        await groups.close()

        # A new coordinator loads "Empty since 800" from the store.
        again = coordinator(store, settings=expiring(), clock=clock)
        clock.now_ms = 1_500  # the commit is older than the retention; the emptiness is not
        assert await again.expire_offsets() == 0
        assert await committed(again, "g") == {("events", 0): 42}
        clock.now_ms = 1_800
        assert await again.expire_offsets() == 1
        assert await committed(again, "g") == {}
        assert ("acme", "g") not in store.groups
        await again.close()

    asyncio.run(scenario())


def test_stable_consumer_group_loses_only_offsets_of_topics_nobody_subscribes_to(store):
    async def scenario() -> None:
        clock = Clock()
        groups = coordinator(store, settings=expiring(), clock=clock)
        member = await stable_member(groups, "g", ["events"])
        offsets = {("events", 0): 1, ("audit", 0): 2}
        assert await commit(groups, "g", offsets, member) == [0, 0]
        clock.now_ms = 5_000
        assert await groups.expire_offsets() == 1
        assert await committed(groups, "g") == {("events", 0): 1}
        assert (await groups.describe_group(ACME, "g")).state == "Stable"
        await groups.close()

    asyncio.run(scenario())


def test_empty_group_without_offsets_is_removed_at_the_next_check(store):
    async def scenario() -> None:
        clock = Clock()
        groups = coordinator(store, settings=expiring(), clock=clock)
        member = await stable_member(groups, "g", ["events"])
        await groups.leave_group(ACME, "g", [LeavingMember(member[0])])
        await groups.flush()
        assert store.groups[("acme", "g")].state == "Empty"
        clock.now_ms = 1  # long before any retention: a group with nothing to keep goes anyway
        assert await groups.expire_offsets() == 0
        assert ("acme", "g") not in store.groups
        assert (await groups.list_groups(ACME))[1] == ()
        await groups.close()

    asyncio.run(scenario())


def test_each_broker_expires_only_the_groups_it_coordinates(store):
    async def scenario() -> None:
        clock = Clock()
        one = coordinator(store, (1, 2), 1, settings=expiring(), clock=clock)
        two = coordinator(store, (1, 2), 2, settings=expiring(), clock=clock)
        group_id = coordinated_by(2, "g")
        assert await commit(two, group_id, {("events", 0): 3}) == [0]
        clock.now_ms = 2_000
        assert await one.expire_offsets() == 0
        assert await committed(two, group_id) == {("events", 0): 3}
        assert await two.expire_offsets() == 1
        assert await committed(two, group_id) == {}
        await one.close()
        await two.close()

    asyncio.run(scenario())


def test_an_offset_committed_after_the_expiry_looked_stays(store):
    async def scenario() -> None:
        assert await store.commit_offsets("acme", "g", [OffsetToCommit("events", 0, 1)], 10) == (
            0,
        )
        assert await store.offset_commit_times("acme", "g") == {("events", 0): 10}
        # The expiry saw the offset committed at 9; it was committed again at 10 meanwhile.
        assert await store.delete_offsets("acme", "g", [("events", 0)], committed_up_to_ms=9) == 1
        assert await store.delete_offsets("acme", "g", [("events", 0)], committed_up_to_ms=10) == 0

    asyncio.run(scenario())


def test_started_coordinator_expires_offsets_periodically_until_closed(store):
    async def scenario() -> None:
        groups = coordinator(store, settings=expiring(check_interval_ms=20))  # the wall clock
        assert await commit(groups, "simple", {("events", 0): 5}) == [0]
        await groups.start()
        for _ in range(500):
            if ("acme", "simple") not in store.groups:
                break
            await asyncio.sleep(0.01)
        assert ("acme", "simple") not in store.groups and not store.offsets.get(("acme", "simple"))
        await groups.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}  # the expiry task is gone

    asyncio.run(scenario())


def coordinated_by(node_id: int, prefix: str, brokers=(1, 2)) -> str:
    """A group id that broker `node_id` coordinates, for acme and globex alike."""
    return next(
        name
        for name in (f"{prefix}-{i}" for i in range(1000))
        if all(coordinator_for(t, name, brokers) == node_id for t in ("acme", "globex"))
    )


def test_offset_delete_follows_kafkas_group_rules(store):
    async def scenario() -> None:
        groups = coordinator(store, (1, 2), 1, settings=expiring())
        assert (await groups.delete_offsets(ACME, "", [])).error_code == ErrorCode.invalid_group_id
        nobody = coordinated_by(1, "nobody")
        assert (await groups.delete_offsets(ACME, nobody, [("events", 0)])).error_code == (
            ErrorCode.group_id_not_found
        )
        elsewhere = coordinated_by(2, "elsewhere")
        assert (await groups.delete_offsets(ACME, elsewhere, [])).error_code == (
            ErrorCode.not_coordinator
        )
        group_id = coordinated_by(1, "g")
        member = await stable_member(groups, group_id, ["events"])
        offsets = {("events", 0): 1, ("audit", 0): 2}
        assert await commit(groups, group_id, offsets, member) == [0, 0]
        # Another tenant's group of the same name is another (unknown) group.
        assert (await groups.delete_offsets(GLOBEX, group_id, [("audit", 0)])).error_code == (
            ErrorCode.group_id_not_found
        )
        deleted = await groups.delete_offsets(
            ACME, group_id, [("events", 0), ("audit", 0), ("audit", 1)]
        )
        assert deleted.error_code == ErrorCode.none
        assert [(p.topic, p.partition, p.error_code) for p in deleted.partitions] == [
            ("events", 0, ErrorCode.group_subscribed_to_topic),
            ("audit", 0, ErrorCode.none),
            ("audit", 1, ErrorCode.none),  # nothing committed there: nothing to do, no error
        ]
        assert await committed(groups, group_id) == {("events", 0): 1}

        await groups.leave_group(ACME, group_id, [LeavingMember(member[0])])
        emptied = await groups.delete_offsets(ACME, group_id, [("events", 0)])
        assert [p.error_code for p in emptied.partitions] == [ErrorCode.none]
        assert await committed(groups, group_id) == {}
        # Empty without offsets: the group is gone (Kafka's cleanupGroupMetadata).
        assert ("acme", group_id) not in store.groups
        assert (await groups.describe_group(ACME, group_id)).state == "Dead"

        connect = coordinated_by(1, "connect")
        await stable_member(groups, connect, ["events"], protocol_type="connect")
        assert (await groups.delete_offsets(ACME, connect, [])).error_code == (
            ErrorCode.non_empty_group
        )
        await groups.close()

    asyncio.run(scenario())
