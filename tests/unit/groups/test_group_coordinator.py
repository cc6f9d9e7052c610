"""The asyncio coordinator over an in-memory store: tenancy, coordinator choice, error codes."""

from __future__ import annotations

import asyncio

from brokers.groups.coordinator import GroupCoordinator
from brokers.groups.placement import coordinator_for
from brokers.protocol.errors import ErrorCode
from brokers.protocol.group_services import (
    COORDINATOR_KEY_GROUP,
    COORDINATOR_KEY_TRANSACTION,
    CommitRequest,
    JoinRequest,
    LeavingMember,
    OffsetToCommit,
    SyncRequest,
)
from tests.unit.groups.group_support import ACME, GLOBEX, coordinator


def join(group_id: str, member_id: str = "", session_ms: int = 10_000) -> JoinRequest:
    return JoinRequest(
        group_id=group_id,
        member_id=member_id,
        group_instance_id=None,
        protocol_type="consumer",
        protocols=(("range", b"m"),),
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=10_000,
    )


async def stable_member(groups: GroupCoordinator, principal, group_id: str) -> tuple[str, int]:
    joined = await groups.join_group(principal, join(group_id))
    assert joined.error_code == ErrorCode.none
    synced = await groups.sync_group(
        principal,
        SyncRequest(
            group_id,
            joined.generation_id,
            joined.member_id,
            None,
            None,
            None,
            {joined.member_id: b"all"},
        ),
    )
    assert synced.assignment == b"all"
    return joined.member_id, joined.generation_id


def test_tenants_do_not_see_each_others_groups(store):
    async def scenario() -> None:
        groups = coordinator(store)
        member_id, generation = await stable_member(groups, ACME, "shared-name")
        commit = CommitRequest(
            "shared-name", generation, member_id, None, (OffsetToCommit("events", 0, 42),)
        )
        assert [e.error_code for e in await groups.commit_offsets(ACME, commit)] == [0]

        # globex: the same group name is another (unknown) group.
        described = await groups.describe_group(GLOBEX, "shared-name")
        assert described.state == "Dead" and described.members == ()
        assert (await groups.list_groups(GLOBEX))[1] == ()
        assert await groups.heartbeat(GLOBEX, "shared-name", generation, member_id, None) == (
            ErrorCode.unknown_member_id
        )
        fetched = await groups.fetch_offsets(GLOBEX, "shared-name", [("events", 0)])
        assert fetched.offsets[0].offset == -1
        assert await groups.delete_group(GLOBEX, "shared-name") == ErrorCode.group_id_not_found
        sync = SyncRequest("shared-name", generation, member_id, None, None, None, {})
        assert (await groups.sync_group(GLOBEX, sync)).error_code == ErrorCode.unknown_member_id
        # ... and cannot commit for acme's topic, which globex does not have.
        simple = CommitRequest("g2", -1, "", None, (OffsetToCommit("events", 0, 1),))
        assert [e.error_code for e in await groups.commit_offsets(GLOBEX, simple)] == [
            ErrorCode.unknown_topic_or_partition
        ]
        fetched = await groups.fetch_offsets(ACME, "shared-name", None)
        assert [(o.topic, o.partition, o.offset) for o in fetched.offsets] == [("events", 0, 42)]
        await groups.close()

    asyncio.run(scenario())


def test_find_coordinator_and_not_coordinator(store):
    async def scenario() -> None:
        here = coordinator(store, brokers=(1, 2), node_id=1)
        elsewhere = next(
            g for g in (f"g{i}" for i in range(100)) if coordinator_for("acme", g, [1, 2]) == 2
        )
        found = await here.find_coordinator(ACME, COORDINATOR_KEY_GROUP, elsewhere)
        assert (found.error_code, found.node_id, found.port) == (0, 2, 9002)
        result = await here.join_group(ACME, join(elsewhere))
        assert result.error_code == ErrorCode.not_coordinator
        txn = await here.find_coordinator(ACME, COORDINATOR_KEY_TRANSACTION, "tx")
        assert txn.error_code == ErrorCode.coordinator_not_available
        nobody = coordinator(store, brokers=())
        found = await nobody.find_coordinator(ACME, COORDINATOR_KEY_GROUP, "g")
        assert found.error_code == ErrorCode.coordinator_not_available

    asyncio.run(scenario())


def test_coordinator_choice_is_stable_and_moves_few_groups():
    groups = [f"group-{i}" for i in range(300)]
    before = {g: coordinator_for("acme", g, [1, 2, 3]) for g in groups}
    assert before == {g: coordinator_for("acme", g, [3, 1, 2]) for g in groups}
    assert set(before.values()) == {1, 2, 3}
    after = {g: coordinator_for("acme", g, [1, 2, 3, 4]) for g in groups}
    moved = [g for g in groups if before[g] != after[g]]
    assert all(after[g] == 4 for g in moved)  # only to the new broker


def test_error_codes(store):
    async def scenario() -> None:
        groups = coordinator(store)
        assert (await groups.join_group(ACME, join(""))).error_code == ErrorCode.invalid_group_id
        too_short = await groups.join_group(ACME, join("g", session_ms=10))
        assert too_short.error_code == ErrorCode.invalid_session_timeout
        stranger = await groups.join_group(ACME, join("g", member_id="nobody"))
        assert stranger.error_code == ErrorCode.unknown_member_id
        member_id, generation = await stable_member(groups, ACME, "g")
        assert await groups.heartbeat(ACME, "g", generation + 1, member_id, None) == (
            ErrorCode.illegal_generation
        )
        assert await groups.heartbeat(ACME, "g", generation, "x", None) == (
            ErrorCode.unknown_member_id
        )
        assert await groups.delete_group(ACME, "g") == ErrorCode.non_empty_group
        not_yet = CommitRequest("new", 3, "m", None, (OffsetToCommit("events", 0, 1),))
        assert [e.error_code for e in await groups.commit_offsets(ACME, not_yet)] == [
            ErrorCode.group_id_not_found
        ]
        left = await groups.leave_group(ACME, "g", [LeavingMember(member_id)])
        assert left.members[0][1] == ErrorCode.none
        assert await groups.delete_group(ACME, "g") == ErrorCode.none
        assert await groups.delete_group(ACME, "g") == ErrorCode.group_id_not_found
        await groups.close()
        assert ("acme", "g") not in store.groups

    asyncio.run(scenario())


def test_joins_wait_at_the_barrier_and_complete_together(store):
    async def scenario() -> None:
        groups = coordinator(store)
        first, second = await asyncio.gather(
            groups.join_group(ACME, join("g")), groups.join_group(ACME, join("g"))
        )
        # With no initial delay the first member may form generation 1 alone; the second
        # then joins generation 2, which the first must rejoin to complete.
        results = [first, second]
        if first.generation_id != second.generation_id:
            early = min(results, key=lambda r: r.generation_id)
            late_join = asyncio.ensure_future(groups.join_group(ACME, join("g", early.member_id)))
            rejoined = await late_join
            assert rejoined.generation_id == max(r.generation_id for r in results)
        await groups.flush()
        saved = store.groups[("acme", "g")]
        assert saved.state in ("CompletingRebalance", "PreparingRebalance")
        await groups.close()

    asyncio.run(scenario())


def test_a_restarted_coordinator_loads_a_stable_group_from_the_store(store):
    async def scenario() -> None:
        groups = coordinator(store)
        member_id, generation = await stable_member(groups, ACME, "g")
        await groups.close()
        again = coordinator(store)
        assert await again.heartbeat(ACME, "g", generation, member_id, None) == ErrorCode.none
        described = await again.describe_group(ACME, "g")
        assert described.state == "Stable" and described.members[0].assignment == b"all"
        await again.close()

    asyncio.run(scenario())
