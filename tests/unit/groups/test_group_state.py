"""The pure group state machine (brokers/groups/group.py), with a clock we move by hand."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from brokers.groups.group import Group, GroupState
from brokers.groups.member import Member, vote_for_protocol
from brokers.groups.settings import GroupSettings
from brokers.protocol.errors import ErrorCode
from brokers.protocol.group_services import JoinRequest, LeavingMember, SyncRequest

SETTINGS = GroupSettings(initial_rebalance_delay_ms=100)
SESSION_MS = 10_000
REBALANCE_MS = 30_000


def new_group(**overrides: int) -> Group:
    counter = itertools.count(1)
    settings = GroupSettings(**{"initial_rebalance_delay_ms": 100, **overrides})
    return Group("g", settings, new_member_id=lambda prefix: f"{prefix}-{next(counter)}")


def join_request(
    member_id: str = "",
    *,
    client_id: str = "c",
    protocols: tuple[tuple[str, bytes], ...] = (("range", b"meta"),),
    instance_id: str | None = None,
    session_ms: int = SESSION_MS,
    require_known: bool = False,
    skip: bool = False,
) -> JoinRequest:
    return JoinRequest(
        group_id="g",
        member_id=member_id,
        group_instance_id=instance_id,
        protocol_type="consumer",
        protocols=protocols,
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=REBALANCE_MS,
        client_id=client_id,
        require_known_member_id=require_known,
        supports_skip_assignment=skip,
    )


def sync_request(group: Group, member_id: str, assignments: dict[str, bytes] | None = None):
    return SyncRequest("g", group.generation_id, member_id, None, None, None, assignments or {})


def form_group(group: Group, clients: list[str], now: float = 0) -> dict[str, str]:
    """Join `clients` (client ids) into a new group and complete the first generation."""
    ids = {}
    for client in clients:
        outcome = group.join(join_request(client_id=client), now)
        assert outcome.result is None
        ids[client] = outcome.member_id
    # Members that arrived during the initial delay extend it once more.
    group.tick(now + SETTINGS.initial_rebalance_delay_ms)
    group.tick(now + 2 * SETTINGS.initial_rebalance_delay_ms)
    joins = group.take_completions().joins
    assert set(joins) == set(ids.values())
    assert group.state is GroupState.COMPLETING_REBALANCE
    return ids


def test_first_join_waits_for_the_initial_rebalance_delay_then_the_leader_gets_all_metadata():
    group = new_group()
    a = group.join(join_request(client_id="a"), 0)
    b = group.join(join_request(client_id="b", protocols=(("range", b"mb"),)), 50)
    assert a.result is None and b.result is None
    assert group.state is GroupState.PREPARING_REBALANCE
    group.tick(99)
    assert not group.take_completions()
    group.tick(100)  # b arrived during the delay: one more delay
    assert not group.take_completions()
    group.tick(200)
    joins = group.take_completions().joins
    leader = joins[a.member_id]
    assert leader.leader_id == a.member_id and leader.generation_id == 1
    assert {m.member_id: m.metadata for m in leader.members} == {
        a.member_id: b"meta",
        b.member_id: b"mb",
    }
    assert joins[b.member_id].members == ()
    assert joins[b.member_id].protocol_name == "range"


def test_member_id_required_first_then_the_member_joins_with_it():
    group = new_group()
    outcome = group.join(join_request(require_known=True), 0)
    assert outcome.result is not None
    assert outcome.result.error_code == ErrorCode.member_id_required
    assert outcome.result.member_id == outcome.member_id != ""
    again = group.join(join_request(outcome.member_id, require_known=True), 10)
    assert again.result is None and again.member_id == outcome.member_id


def test_pending_member_that_never_rejoins_is_forgotten_after_its_session_timeout():
    group = new_group()
    outcome = group.join(join_request(require_known=True), 0)
    group.tick(SESSION_MS + 1)
    assert not group.pending_members
    late = group.join(join_request(outcome.member_id), SESSION_MS + 2)
    assert late.result is not None and late.result.error_code == ErrorCode.unknown_member_id


def test_invalid_session_timeouts_are_refused():
    group = new_group(min_session_timeout_ms=6000, max_session_timeout_ms=30000)
    for session_ms in (5999, 30001):
        result = group.join(join_request(session_ms=session_ms), 0).result
        assert result is not None and result.error_code == ErrorCode.invalid_session_timeout


def test_leader_sync_distributes_assignments_to_waiting_followers():
    group = new_group()
    ids = form_group(group, ["a", "b"])
    a, b = ids["a"], ids["b"]
    assert group.sync(sync_request(group, b), 200) is None  # waits for the leader
    assert group.sync(sync_request(group, a, {a: b"A", b: b"B"}), 201) is None
    syncs = group.take_completions().syncs
    assert syncs[a].assignment == b"A" and syncs[b].assignment == b"B"
    assert group.state is GroupState.STABLE
    # A late SyncGroup in Stable gets the assignment at once.
    assert group.sync(sync_request(group, b), 202).assignment == b"B"


def test_new_member_triggers_a_rebalance_and_the_barrier_waits_for_known_members():
    group = new_group()
    ids = form_group(group, ["a", "b"])
    group.sync(sync_request(group, ids["a"], {ids["a"]: b"A", ids["b"]: b"B"}), 200)
    group.take_completions()
    c = group.join(join_request(client_id="c"), 300)
    assert c.result is None and group.state is GroupState.PREPARING_REBALANCE
    assert group.heartbeat(1, ids["a"], None, 301) == ErrorCode.rebalance_in_progress
    assert group.join(join_request(ids["a"], client_id="a"), 302).result is None
    assert not group.take_completions()  # b has not rejoined yet
    assert group.join(join_request(ids["b"], client_id="b"), 303).result is None
    joins = group.take_completions().joins
    assert set(joins) == {ids["a"], ids["b"], c.member_id}
    assert {r.generation_id for r in joins.values()} == {2}


def test_rebalance_timeout_drops_members_that_did_not_rejoin():
    group = new_group()
    ids = form_group(group, ["a", "b"])
    group.sync(sync_request(group, ids["a"], {}), 200)
    group.sync(sync_request(group, ids["b"], {}), 200)
    group.take_completions()
    group.join(join_request(ids["a"], client_id="a"), 1000)  # the leader rejoins: rebalance
    group.heartbeat(1, ids["b"], None, 1000)
    group.tick(1000 + REBALANCE_MS)
    joins = group.take_completions().joins
    assert set(joins) == {ids["a"]}
    assert set(group.members) == {ids["a"]} and group.generation_id == 2


def test_session_timeout_expires_a_silent_member_and_rebalances():
    group = new_group()
    ids = form_group(group, ["a", "b"])
    group.sync(sync_request(group, ids["a"], {}), 100)
    group.sync(sync_request(group, ids["b"], {}), 100)
    group.take_completions()
    group.heartbeat(1, ids["a"], None, 100 + SESSION_MS - 1)
    assert group.next_deadline_ms() == 100 + SESSION_MS
    group.tick(100 + SESSION_MS)
    assert ids["b"] not in group.members
    assert group.state is GroupState.PREPARING_REBALANCE


def test_heartbeat_errors():
    group = new_group()
    ids = form_group(group, ["a"])
    a = ids["a"]
    assert group.heartbeat(1, "nobody", None, 1) == ErrorCode.unknown_member_id
    assert group.heartbeat(7, a, None, 1) == ErrorCode.illegal_generation
    assert group.heartbeat(1, a, None, 1) == ErrorCode.none  # CompletingRebalance is fine


def test_sync_errors():
    group = new_group()
    ids = form_group(group, ["a"])
    bad_generation = SyncRequest("g", 9, ids["a"], None, None, None, {})
    assert group.sync(bad_generation, 1).error_code == ErrorCode.illegal_generation
    unknown = SyncRequest("g", 1, "x", None, None, None, {})
    assert group.sync(unknown, 1).error_code == ErrorCode.unknown_member_id
    wrong_protocol = SyncRequest("g", 1, ids["a"], None, "consumer", "roundrobin", {})
    assert group.sync(wrong_protocol, 1).error_code == ErrorCode.inconsistent_group_protocol


def test_inconsistent_protocols_are_refused():
    group = new_group()
    form_group(group, ["a"])
    result = group.join(join_request(protocols=(("sticky", b""),)), 1).result
    assert result is not None and result.error_code == ErrorCode.inconsistent_group_protocol


def test_leave_rebalances_and_last_leave_empties_the_group_with_a_new_generation():
    group = new_group()
    ids = form_group(group, ["a", "b"])
    group.sync(sync_request(group, ids["a"], {}), 100)
    results = group.leave([LeavingMember(ids["b"]), LeavingMember("ghost")], 200)
    assert [code for _, code in results] == [ErrorCode.none, ErrorCode.unknown_member_id]
    assert group.state is GroupState.PREPARING_REBALANCE
    group.leave([LeavingMember(ids["a"])], 300)
    assert group.state is GroupState.EMPTY and group.generation_id == 2
    assert group.leader_id is None


def test_static_member_rejoining_a_stable_group_keeps_its_assignment_and_fences_the_old_id():
    group = new_group()
    first = group.join(join_request(client_id="a", instance_id="i-a"), 0)
    other = group.join(join_request(client_id="b", instance_id="i-b"), 0)
    group.tick(100)
    group.tick(200)
    group.take_completions()
    group.sync(
        sync_request(group, first.member_id, {first.member_id: b"A", other.member_id: b"B"}), 100
    )
    group.sync(sync_request(group, other.member_id), 100)
    group.take_completions()
    restarted = group.join(join_request(client_id="b", instance_id="i-b"), 500)
    assert restarted.result is not None and restarted.result.error_code == ErrorCode.none
    assert restarted.member_id != other.member_id
    assert restarted.result.generation_id == 1  # no rebalance
    assert group.state is GroupState.STABLE
    assert group.sync(sync_request(group, restarted.member_id), 501).assignment == b"B"
    assert group.heartbeat(1, other.member_id, "i-b", 502) == ErrorCode.fenced_instance_id


def test_static_leader_rejoining_gets_metadata_and_skips_assignment():
    group = new_group()
    first = group.join(join_request(client_id="a", instance_id="i-a"), 0)
    group.tick(100)
    group.take_completions()
    group.sync(sync_request(group, first.member_id, {first.member_id: b"A"}), 100)
    again = group.join(join_request(client_id="a", instance_id="i-a", skip=True), 200)
    assert again.result is not None
    assert again.result.skip_assignment and again.result.leader_id == again.member_id
    assert [m.member_id for m in again.result.members] == [again.member_id]


def test_commit_rules():
    group = new_group()
    assert group.validate_commit(-1, "", None, 0) == ErrorCode.none  # simple, Empty
    ids = form_group(group, ["a"])
    a = ids["a"]
    assert group.validate_commit(-1, "", None, 1) == ErrorCode.unknown_member_id
    assert group.validate_commit(1, a, None, 1) == ErrorCode.rebalance_in_progress
    group.sync(sync_request(group, a, {a: b""}), 2)
    assert group.validate_commit(1, a, None, 3) == ErrorCode.none
    assert group.validate_commit(0, a, None, 3) == ErrorCode.illegal_generation
    assert group.validate_commit(1, "x", None, 3) == ErrorCode.unknown_member_id


def test_loaded_stable_group_keeps_members_with_a_fresh_session():
    group = new_group()
    ids = form_group(group, ["a"])
    group.sync(sync_request(group, ids["a"], {ids["a"]: b"A"}), 100)
    record = group.record("acme")
    loaded = Group.from_record(record, SETTINGS, now_ms=50_000)
    assert loaded.state is GroupState.STABLE and loaded.generation_id == 1
    assert loaded.heartbeat(1, ids["a"], None, 50_001) == ErrorCode.none
    assert loaded.sync(sync_request(loaded, ids["a"]), 50_002).assignment == b"A"


def test_protocol_vote_prefers_what_most_members_rank_first():
    def member(*names: str) -> Member:
        return Member("m", None, "", "", "consumer", tuple((n, b"") for n in names), 1, 1, 0)

    assert vote_for_protocol([member("range", "rr"), member("rr", "range"), member("rr")]) == "rr"
    assert vote_for_protocol([member("range"), member("rr")]) is None


# --- properties ------------------------------------------------------------------------------

PARTITIONS = list(range(7))


def round_robin(member_ids: list[str]) -> dict[str, bytes]:
    ordered = sorted(member_ids)
    owned: dict[str, list[int]] = {m: [] for m in ordered}
    for p in PARTITIONS:
        owned[ordered[p % len(ordered)]].append(p)
    return {m: bytes(ps) for m, ps in owned.items()}


class SimulatedClients:
    """Well-behaved consumers: rejoin when told, the leader assigns by round robin."""

    def __init__(self, group: Group) -> None:
        self.group = group
        self.now = 0.0
        self.member_ids: dict[str, str] = {}  # client → member id
        self.generations: dict[str, int] = {}
        self.assignments: dict[str, bytes] = {}
        self.generation_history = [group.generation_id]

    def deliver(self) -> None:
        while completions := self.group.take_completions():
            self._deliver(completions)

    def _deliver(self, completions) -> None:
        for member_id, result in completions.joins.items():
            client = self._client(member_id)
            if client is None or result.error_code:
                continue
            self.generations[client] = result.generation_id
            self.generation_history.append(result.generation_id)
            if result.leader_id == member_id:
                assignments = round_robin([m.member_id for m in result.members])
                request = SyncRequest(
                    "g", result.generation_id, member_id, None, None, None, assignments
                )
                self.group.sync(request, self.now)
            else:
                self.group.sync(
                    SyncRequest("g", result.generation_id, member_id, None, None, None, {}),
                    self.now,
                )
        for member_id, sync in completions.syncs.items():
            client = self._client(member_id)
            if client is not None and not sync.error_code:
                self.assignments[client] = sync.assignment

    def _client(self, member_id: str) -> str | None:
        return next((c for c, m in self.member_ids.items() if m == member_id), None)

    def join(self, client: str) -> None:
        outcome = self.group.join(
            join_request(self.member_ids.get(client, ""), client_id=client), self.now
        )
        self.member_ids[client] = outcome.member_id
        if outcome.result is not None and outcome.result.error_code:
            del self.member_ids[client]
        self.deliver()

    def leave(self, client: str) -> None:
        member_id = self.member_ids.pop(client, None)
        if member_id is not None:
            self.group.leave([LeavingMember(member_id)], self.now)
            self.assignments.pop(client, None)
            self.deliver()

    def heartbeat_all(self) -> None:
        for client, member_id in list(self.member_ids.items()):
            code = self.group.heartbeat(self.generations.get(client, -1), member_id, None, self.now)
            if code == ErrorCode.rebalance_in_progress or code == ErrorCode.illegal_generation:
                self.join(client)
            elif code == ErrorCode.unknown_member_id:
                self.member_ids.pop(client)
                self.assignments.pop(client, None)

    def advance(self, ms: float) -> None:
        self.now += ms
        self.group.tick(self.now)
        self.deliver()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["join", "leave", "heartbeat", "wait", "silence"]),
            st.sampled_from(["c1", "c2", "c3", "c4"]),
        ),
        max_size=40,
    )
)
def test_stable_generations_assign_every_partition_to_exactly_one_member(operations):
    group = new_group(initial_rebalance_delay_ms=50)
    clients = SimulatedClients(group)
    silent: set[str] = set()
    for operation, client in operations:
        if operation == "join":
            if client not in clients.member_ids:
                silent.discard(client)
                clients.join(client)
        elif operation == "leave":
            clients.leave(client)
        elif operation == "heartbeat":
            clients.heartbeat_all()
        elif operation == "silence":
            silent.add(client)  # a client that stops heartbeating (crashed)
        else:
            clients.advance(3000)
        # Generations never go back.
        assert clients.generation_history == sorted(clients.generation_history)
        assert group.leader_id is None or group.leader_id in group.members
    # Let the group settle (longer than a session): live clients heartbeat, silent ones expire.
    for client in silent:
        clients.member_ids.pop(client, None)
        clients.assignments.pop(client, None)
    for _ in range(3 * SESSION_MS // 1000):
        clients.heartbeat_all()
        clients.advance(1000)
    if group.state is GroupState.STABLE:
        owned = [bytes(group.members[m].assignment) for m in group.members]
        partitions = sorted(p for assignment in owned for p in assignment)
        assert partitions == PARTITIONS
        assert not silent & {m.client_id for m in group.members.values()}
        assert set(group.members) == set(clients.member_ids.values())
    else:
        assert group.state is GroupState.EMPTY
