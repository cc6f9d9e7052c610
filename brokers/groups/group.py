"""One classic consumer group's state machine, by Kafka's group coordinator rules; pure.

No asyncio and no Django: every call takes the time (wall-clock ms), and answers that wait (a
JoinGroup behind the rebalance barrier, a SyncGroup waiting for the leader) come out later
through `take_completions()`, keyed by member id. The coordinator turns them into futures and
calls `tick()` at `next_deadline_ms()`.

States (Kafka's): Empty → PreparingRebalance (members (re)join; the barrier) →
CompletingRebalance (the leader computes assignments) → Stable (SyncGroup from the leader
delivered them) → PreparingRebalance on any membership change, ... Dead once deleted.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from brokers.protocol.errors import ErrorCode
from brokers.protocol.group_services import (
    GroupDescription,
    GroupOverview,
    JoinedMember,
    JoinRequest,
    JoinResult,
    LeavingMember,
    MemberDescription,
    SyncRequest,
    SyncResult,
)

from .member import Member, vote_for_protocol
from .records import GroupRecord
from .settings import GroupSettings


class GroupState(enum.StrEnum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True, slots=True)
class JoinOutcome:
    member_id: str
    result: JoinResult | None
    """None: the member waits for the barrier; its result comes through take_completions()."""


@dataclass(slots=True)
class Completions:
    """Answers to requests that were waiting, by member id."""

    joins: dict[str, JoinResult] = field(default_factory=dict)
    syncs: dict[str, SyncResult] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.joins or self.syncs)


def random_member_id(prefix: str) -> str:
    """Kafka's member ids: the client id (or the static instance id), '-', a random UUID."""
    return f"{prefix}-{uuid.uuid4()}"


class Group:
    def __init__(
        self,
        group_id: str,
        settings: GroupSettings,
        new_member_id: Callable[[str], str] = random_member_id,
    ) -> None:
        self.group_id = group_id
        self.settings = settings
        self._new_member_id = new_member_id
        self.state = GroupState.EMPTY
        self.state_timestamp_ms: float | None = None
        """When the group entered its state (Kafka's currentStateTimestamp); None until its first
        transition. An Empty group's offsets expire retention after it (KIP-211)."""
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.static_members: dict[str, str] = {}
        """group.instance.id → the member id that holds it now."""
        self.pending_members: dict[str, float] = {}
        """KIP-394: ids handed out with MEMBER_ID_REQUIRED, to their join deadline."""
        self.pending_sync: set[str] = set()
        """Members of the new generation that have not sent SyncGroup yet."""
        self.rebalance_deadline_ms: float | None = None
        self.sync_deadline_ms: float | None = None
        self._initial_delay_remaining_ms: int | None = None
        """Not None while the first rebalance of an empty group waits (InitialDelayedJoin)."""
        self._new_member_added = False
        self._outbox = Completions()

    # --- persistence --------------------------------------------------------------------

    @classmethod
    def from_record(
        cls,
        record: GroupRecord,
        settings: GroupSettings,
        now_ms: float,
        new_member_id: Callable[[str], str] = random_member_id,
    ) -> Group:
        """A group as a coordinator that has just become its coordinator loads it.

        Like Kafka after a coordinator failover, a Stable group keeps its members and their
        assignments, each with a fresh session timeout to heartbeat in (clients that are gone
        expire; the others carry on without a rebalance). A group caught in the middle of a
        rebalance restarts it: its members are asked to rejoin (REBALANCE_IN_PROGRESS).
        """
        group = cls(record.group_id, settings, new_member_id)
        group.generation_id = record.generation_id
        group.protocol_type = record.protocol_type or None
        is_stable = record.state == GroupState.STABLE and bool(record.protocol_name)
        is_rebalancing = record.state in (
            GroupState.PREPARING_REBALANCE,
            GroupState.COMPLETING_REBALANCE,
        )
        if not record.members or not (is_stable or is_rebalancing):
            # Empty: since when it was (its offsets' retention counts from then), else from now.
            was_empty = record.state == GroupState.EMPTY
            group.state_timestamp_ms = record.state_timestamp_ms if was_empty else now_ms
            return group
        for member_record in record.members:
            member = Member.from_record(member_record, record.protocol_type, now_ms)
            group.members[member.member_id] = member
            if member.group_instance_id is not None:
                group.static_members[member.group_instance_id] = member.member_id
        group.leader_id = (
            record.leader_id if record.leader_id in group.members else next(iter(group.members))
        )
        if is_stable:
            group.state = GroupState.STABLE
            group.state_timestamp_ms = record.state_timestamp_ms
            group.protocol_name = record.protocol_name
        else:
            group._transition_to(GroupState.PREPARING_REBALANCE, now_ms)
            group.rebalance_deadline_ms = now_ms + group._rebalance_timeout_ms()
        return group

    def record(self, tenant: str) -> GroupRecord:
        return GroupRecord(
            tenant=tenant,
            group_id=self.group_id,
            state=str(self.state),
            protocol_type=self.protocol_type or "",
            protocol_name=self.protocol_name or "",
            generation_id=self.generation_id,
            leader_id=self.leader_id or "",
            members=tuple(member.record() for member in self.members.values()),
            state_timestamp_ms=self.state_timestamp_ms,
        )

    # --- queries ------------------------------------------------------------------------

    @property
    def is_empty(self) -> bool:
        return self.state is GroupState.EMPTY

    def take_completions(self) -> Completions:
        completions, self._outbox = self._outbox, Completions()
        return completions

    def next_deadline_ms(self) -> float | None:
        """When `tick` next has work: a session, a pending member, the barrier or the sync."""
        deadlines = list(self.pending_members.values())
        deadlines += [
            member.session_deadline_ms
            for member in self.members.values()
            if not (member.is_awaiting_join or member.is_awaiting_sync)
        ]
        if self.sync_deadline_ms is not None and self.pending_sync:
            deadlines.append(self.sync_deadline_ms)
        if self.state is GroupState.PREPARING_REBALANCE and self.rebalance_deadline_ms is not None:
            deadlines.append(self.rebalance_deadline_ms)
        return min(deadlines, default=None)

    def overview(self) -> GroupOverview:
        return GroupOverview(self.group_id, self.protocol_type or "", str(self.state))

    def describe(self) -> GroupDescription:
        """Kafka shows members' metadata and assignments only while Stable."""
        is_stable = self.state is GroupState.STABLE and self.protocol_name is not None
        members = tuple(
            MemberDescription(
                member_id=member.member_id,
                group_instance_id=member.group_instance_id,
                client_id=member.client_id,
                client_host=member.client_host,
                metadata=member.metadata_for(self.protocol_name or "") if is_stable else b"",
                assignment=member.assignment if is_stable else b"",
            )
            for member in self.members.values()
        )
        return GroupDescription(
            group_id=self.group_id,
            error_code=ErrorCode.none,
            state=str(self.state),
            protocol_type=self.protocol_type or "",
            protocol_name=(self.protocol_name or "") if is_stable else "",
            members=members,
        )

    # --- JoinGroup ----------------------------------------------------------------------

    def join(self, request: JoinRequest, now_ms: float) -> JoinOutcome:
        settings = self.settings
        member_id = request.member_id
        if not (
            settings.min_session_timeout_ms
            <= request.session_timeout_ms
            <= settings.max_session_timeout_ms
        ):
            return self._join_error(member_id, ErrorCode.invalid_session_timeout)
        if self.state is GroupState.DEAD:
            return self._join_error(member_id, ErrorCode.coordinator_not_available)
        if not self._accepts_joining_member(member_id):
            return self._join_error(member_id, ErrorCode.group_max_size_reached)
        if not self._supports_protocols(request.protocol_type, request.protocols):
            return self._join_error(member_id, ErrorCode.inconsistent_group_protocol)
        if member_id == "":
            return self._join_new_member(request, now_ms)
        return self._join_known_member(request, now_ms)

    def _join_new_member(self, request: JoinRequest, now_ms: float) -> JoinOutcome:
        instance_id = request.group_instance_id
        if instance_id is not None:
            new_id = self._new_member_id(instance_id)
            old_id = self.static_members.get(instance_id)
            if old_id is not None:
                return self._rejoin_static_member(old_id, new_id, request, now_ms)
            return self._add_member_and_rebalance(new_id, request, now_ms)
        new_id = self._new_member_id(request.client_id)
        if request.require_known_member_id:
            # KIP-394: hand out the id first, so a client that times out and retries does not
            # leave a trail of unknown members behind; it must rejoin with it in its session.
            self.pending_members[new_id] = now_ms + request.session_timeout_ms
            return self._join_error(new_id, ErrorCode.member_id_required)
        return self._add_member_and_rebalance(new_id, request, now_ms)

    def _join_known_member(self, request: JoinRequest, now_ms: float) -> JoinOutcome:
        member_id = request.member_id
        if member_id in self.pending_members:
            return self._add_member_and_rebalance(member_id, request, now_ms)
        error = self._validate_member(member_id, request.group_instance_id)
        if error:
            return self._join_error(member_id, error)
        member = self.members[member_id]
        if self.state is GroupState.COMPLETING_REBALANCE and member.has_same_protocols(
            request.protocols
        ):
            # The member lost our JoinGroup response: answer it again.
            return JoinOutcome(member_id, self._join_result_for(member_id))
        if (
            self.state is GroupState.STABLE
            and member_id != self.leader_id
            and member.has_same_protocols(request.protocols)
        ):
            # Nothing changed for a follower: no rebalance (the leader rejoining forces one, so
            # that it can re-assign, e.g. after its topics' metadata changed).
            return JoinOutcome(member_id, self._join_result_for(member_id))
        return self._update_member_and_rebalance(member, request, now_ms)

    def _add_member_and_rebalance(
        self, member_id: str, request: JoinRequest, now_ms: float
    ) -> JoinOutcome:
        self.pending_members.pop(member_id, None)
        member = Member.from_join(member_id, request, now_ms)
        if not self.members:
            self.protocol_type = request.protocol_type
        if (
            self.state is GroupState.PREPARING_REBALANCE
            and self._initial_delay_remaining_ms is not None
        ):
            self._new_member_added = True
        self.members[member_id] = member
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member_id
        if self.leader_id is None:
            self.leader_id = member_id
        member.is_awaiting_join = True
        self._maybe_prepare_rebalance(now_ms)
        self._maybe_complete_join(now_ms)
        return JoinOutcome(member_id, None)

    def _update_member_and_rebalance(
        self, member: Member, request: JoinRequest, now_ms: float
    ) -> JoinOutcome:
        member.update_from_join(request)
        member.is_awaiting_join = True
        self._maybe_prepare_rebalance(now_ms)
        self._maybe_complete_join(now_ms)
        return JoinOutcome(member.member_id, None)

    def _rejoin_static_member(
        self, old_id: str, new_id: str, request: JoinRequest, now_ms: float
    ) -> JoinOutcome:
        """KIP-345: a static member that restarted takes its place back under a new member id;
        the old id is fenced. In a Stable group whose protocol choice does not change, it gets
        its assignment back without a rebalance."""
        member = self.members.pop(old_id)
        if member.is_awaiting_join:
            self._outbox.joins[old_id] = JoinResult(ErrorCode.fenced_instance_id, member_id=old_id)
            member.is_awaiting_join = False
        if member.is_awaiting_sync:
            self._outbox.syncs[old_id] = SyncResult(ErrorCode.fenced_instance_id)
            member.is_awaiting_sync = False
        member.member_id = new_id
        self.members[new_id] = member
        assert member.group_instance_id is not None
        self.static_members[member.group_instance_id] = new_id
        if self.leader_id == old_id:
            self.leader_id = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        member.update_from_join(request)
        member.last_heartbeat_ms = now_ms
        if self.state is GroupState.STABLE and self._select_protocol() == self.protocol_name:
            is_leader = new_id == self.leader_id
            # KIP-814: a static leader gets the members' metadata but need not re-assign.
            skip_assignment = is_leader and request.supports_skip_assignment
            return JoinOutcome(
                new_id,
                JoinResult(
                    error_code=ErrorCode.none,
                    member_id=new_id,
                    generation_id=self.generation_id,
                    protocol_type=self.protocol_type,
                    protocol_name=self.protocol_name,
                    leader_id=self.leader_id or "",
                    members=self._joined_members() if skip_assignment else (),
                    skip_assignment=skip_assignment,
                ),
            )
        member.is_awaiting_join = True
        self._maybe_prepare_rebalance(now_ms)
        self._maybe_complete_join(now_ms)
        return JoinOutcome(new_id, None)

    def _join_error(self, member_id: str, error_code: int) -> JoinOutcome:
        return JoinOutcome(member_id, JoinResult(ErrorCode(error_code), member_id=member_id))

    def _join_result_for(self, member_id: str) -> JoinResult:
        """The generation as one member sees it: only the leader gets the members' metadata."""
        return JoinResult(
            error_code=ErrorCode.none,
            member_id=member_id,
            generation_id=self.generation_id,
            protocol_type=self.protocol_type,
            protocol_name=self.protocol_name,
            leader_id=self.leader_id or "",
            members=self._joined_members() if member_id == self.leader_id else (),
        )

    def _joined_members(self) -> tuple[JoinedMember, ...]:
        protocol = self.protocol_name or ""
        return tuple(
            JoinedMember(member.member_id, member.group_instance_id, member.metadata_for(protocol))
            for member in self.members.values()
        )

    def _accepts_joining_member(self, member_id: str) -> bool:
        """group.max.size, counted as Kafka does: a rebalance counts the members rejoining."""
        limit = self.settings.max_group_size
        member = self.members.get(member_id)
        if self.state in (GroupState.EMPTY, GroupState.DEAD):
            return True
        if self.state is GroupState.PREPARING_REBALANCE:
            awaiting = sum(1 for m in self.members.values() if m.is_awaiting_join)
            return (member is not None and member.is_awaiting_join) or awaiting < limit
        return member is not None or len(self.members) < limit

    def _supports_protocols(
        self, protocol_type: str, protocols: Sequence[tuple[str, bytes]]
    ) -> bool:
        names = {name for name, _ in protocols}
        if not self.members:
            return bool(protocol_type) and bool(names)
        return protocol_type == self.protocol_type and bool(names & self._candidate_protocols())

    def _candidate_protocols(self) -> set[str]:
        members = iter(self.members.values())
        candidates = set(next(members).protocol_names)
        for member in members:
            candidates &= set(member.protocol_names)
        return candidates

    def _select_protocol(self) -> str | None:
        return vote_for_protocol(list(self.members.values()))

    # --- the rebalance barrier ------------------------------------------------------------

    def _maybe_prepare_rebalance(self, now_ms: float) -> None:
        if self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY):
            self._prepare_rebalance(now_ms)

    def _prepare_rebalance(self, now_ms: float) -> None:
        if self.state is GroupState.COMPLETING_REBALANCE:
            # The leader's assignments for this generation will never be used: members waiting
            # in SyncGroup must rejoin.
            for member in self.members.values():
                member.assignment = b""
                if member.is_awaiting_sync:
                    self._outbox.syncs[member.member_id] = SyncResult(
                        ErrorCode.rebalance_in_progress
                    )
                    member.is_awaiting_sync = False
        self.pending_sync.clear()
        self.sync_deadline_ms = None
        if self.state is GroupState.EMPTY:
            # group.initial.rebalance.delay.ms: let more members of a starting application
            # arrive before the first generation, instead of one rebalance per member.
            delay_ms = self.settings.initial_rebalance_delay_ms
            self._initial_delay_remaining_ms = max(self._rebalance_timeout_ms() - delay_ms, 0)
            self._new_member_added = False
            self.rebalance_deadline_ms = now_ms + delay_ms
        else:
            self._initial_delay_remaining_ms = None
            self.rebalance_deadline_ms = now_ms + self._rebalance_timeout_ms()
        self._transition_to(GroupState.PREPARING_REBALANCE, now_ms)

    def _rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def _has_all_members_joined(self) -> bool:
        return not self.pending_members and all(
            member.is_awaiting_join for member in self.members.values()
        )

    def _maybe_complete_join(self, now_ms: float) -> None:
        if (
            self.state is GroupState.PREPARING_REBALANCE
            and self._initial_delay_remaining_ms is None
            and self._has_all_members_joined()
        ):
            self._complete_join(now_ms)

    def _complete_join(self, now_ms: float) -> None:
        """The barrier falls: dynamic members that did not rejoin are out; a new generation."""
        for member in list(self.members.values()):
            if not member.is_awaiting_join and member.group_instance_id is None:
                self._remove_member(member.member_id)
        self.pending_members.clear()
        self._initial_delay_remaining_ms = None
        self._new_member_added = False
        if self.members and not any(m.is_awaiting_join for m in self.members.values()):
            # Only static members that have not rejoined: wait for them another round.
            self.rebalance_deadline_ms = now_ms + self._rebalance_timeout_ms()
            return
        self.rebalance_deadline_ms = None
        self.generation_id += 1
        if not self.members:
            self._transition_to(GroupState.EMPTY, now_ms)
            self.protocol_name = None
            self.leader_id = None
            return
        leader = self.members.get(self.leader_id or "")
        if leader is None or not leader.is_awaiting_join:
            # The leader must be a member that gets this JoinGroup response.
            self.leader_id = next(m.member_id for m in self.members.values() if m.is_awaiting_join)
        self.protocol_name = self._select_protocol()
        self._transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        self.pending_sync = set(self.members)
        self.sync_deadline_ms = now_ms + self._rebalance_timeout_ms()
        for member in self.members.values():
            member.last_heartbeat_ms = now_ms
            if member.is_awaiting_join:
                member.is_awaiting_join = False
                self._outbox.joins[member.member_id] = self._join_result_for(member.member_id)

    # --- SyncGroup ----------------------------------------------------------------------

    def sync(self, request: SyncRequest, now_ms: float) -> SyncResult | None:
        """The member's assignment now, or None: it waits for the leader's SyncGroup."""
        if self.state is GroupState.DEAD:
            return SyncResult(ErrorCode.coordinator_not_available)
        error = self._validate_member(request.member_id, request.group_instance_id)
        if error:
            return SyncResult(ErrorCode(error))
        if request.generation_id != self.generation_id:
            return SyncResult(ErrorCode.illegal_generation)
        if (request.protocol_type is not None and request.protocol_type != self.protocol_type) or (
            request.protocol_name is not None and request.protocol_name != self.protocol_name
        ):
            return SyncResult(ErrorCode.inconsistent_group_protocol)
        if self.state is GroupState.PREPARING_REBALANCE:
            return SyncResult(ErrorCode.rebalance_in_progress)
        member = self.members[request.member_id]
        member.last_heartbeat_ms = now_ms
        self._mark_synced(member.member_id)
        if self.state is GroupState.STABLE:
            return self._sync_result(member)
        member.is_awaiting_sync = True
        if member.member_id == self.leader_id:
            for member_id, other in self.members.items():
                other.assignment = request.assignments.get(member_id, b"")
            self._transition_to(GroupState.STABLE, now_ms)
            for other in self.members.values():
                if other.is_awaiting_sync:
                    other.is_awaiting_sync = False
                    self._outbox.syncs[other.member_id] = self._sync_result(other)
        return None

    def _sync_result(self, member: Member) -> SyncResult:
        return SyncResult(ErrorCode.none, member.assignment, self.protocol_type, self.protocol_name)

    def _mark_synced(self, member_id: str) -> None:
        self.pending_sync.discard(member_id)
        if not self.pending_sync:
            self.sync_deadline_ms = None

    # --- Heartbeat, LeaveGroup, OffsetCommit checks ---------------------------------------

    def heartbeat(
        self, generation_id: int, member_id: str, group_instance_id: str | None, now_ms: float
    ) -> int:
        if self.state is GroupState.DEAD:
            return ErrorCode.coordinator_not_available
        error = self._validate_member(member_id, group_instance_id)
        if error:
            return error
        if generation_id != self.generation_id:
            return ErrorCode.illegal_generation
        self.members[member_id].last_heartbeat_ms = now_ms
        if self.state is GroupState.PREPARING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    def leave(
        self, leaving: Sequence[LeavingMember], now_ms: float
    ) -> tuple[tuple[LeavingMember, int], ...]:
        """Each leaving member (LeaveGroup v3+ batches them, by member or instance id)."""
        results = []
        for identity in leaving:
            results.append((identity, self._leave_one(identity, now_ms)))
        return tuple(results)

    def _leave_one(self, identity: LeavingMember, now_ms: float) -> int:
        instance_id = identity.group_instance_id
        if instance_id is not None:
            member_id = self.static_members.get(instance_id)
            if member_id is None:
                return ErrorCode.unknown_member_id
            if identity.member_id and identity.member_id != member_id:
                return ErrorCode.fenced_instance_id
        else:
            member_id = identity.member_id
            if member_id in self.pending_members:
                del self.pending_members[member_id]
                self._maybe_complete_join(now_ms)
                return ErrorCode.none
            if member_id not in self.members:
                return ErrorCode.unknown_member_id
        self._remove_member_and_update_group(member_id, now_ms)
        return ErrorCode.none

    def validate_commit(
        self, generation_id: int, member_id: str, group_instance_id: str | None, now_ms: float
    ) -> int:
        """May this member commit offsets now? (Kafka's rules for OffsetCommit.)"""
        if self.state is GroupState.DEAD:
            return ErrorCode.coordinator_not_available
        if generation_id < 0 and self.state is GroupState.EMPTY:
            return ErrorCode.none  # a "simple" commit: assign() or the admin client
        if generation_id >= 0 or member_id or group_instance_id is not None:
            error = self._validate_member(member_id, group_instance_id)
            if error:
                return error
            if generation_id != self.generation_id:
                return ErrorCode.illegal_generation
        elif self.state is not GroupState.EMPTY:
            return ErrorCode.unknown_member_id
        if self.state is GroupState.COMPLETING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        # A commit (e.g. in onPartitionsRevoked while PreparingRebalance) proves liveness.
        self.members[member_id].last_heartbeat_ms = now_ms
        return ErrorCode.none

    def mark_dead(self, now_ms: float) -> None:
        """Deleted: any request still holding this object gets COORDINATOR_NOT_AVAILABLE."""
        self._transition_to(GroupState.DEAD, now_ms)

    def _transition_to(self, state: GroupState, now_ms: float) -> None:
        self.state = state
        self.state_timestamp_ms = now_ms

    def _validate_member(self, member_id: str, group_instance_id: str | None) -> int:
        if group_instance_id is not None:
            holder = self.static_members.get(group_instance_id)
            if holder is None:
                return ErrorCode.unknown_member_id
            if holder != member_id:
                return ErrorCode.fenced_instance_id
        if member_id not in self.members:
            return ErrorCode.unknown_member_id
        return ErrorCode.none

    def _remove_member_and_update_group(self, member_id: str, now_ms: float) -> None:
        member = self._remove_member(member_id)
        if member.is_awaiting_join:
            self._outbox.joins[member_id] = JoinResult(
                ErrorCode.unknown_member_id, member_id=member_id
            )
        if member.is_awaiting_sync:
            self._outbox.syncs[member_id] = SyncResult(ErrorCode.unknown_member_id)
        if self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance(now_ms)
        # As Kafka's DelayedJoin tries to complete at once: the last member leaving empties it.
        self._maybe_complete_join(now_ms)

    def _remove_member(self, member_id: str) -> Member:
        member = self.members.pop(member_id)
        instance_id = member.group_instance_id
        if instance_id is not None and self.static_members.get(instance_id) == member_id:
            del self.static_members[instance_id]
        self._mark_synced(member_id)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        return member

    # --- time -----------------------------------------------------------------------------

    def tick(self, now_ms: float) -> None:
        """Expire what is due: pending members, sessions, the pending sync, the barrier."""
        for member_id, deadline in list(self.pending_members.items()):
            if now_ms >= deadline:
                del self.pending_members[member_id]
        for member in list(self.members.values()):
            if member.member_id in self.members and not member.is_alive_at(now_ms):
                self._remove_member_and_update_group(member.member_id, now_ms)
        if (
            self.sync_deadline_ms is not None
            and now_ms >= self.sync_deadline_ms
            and self.state in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE)
        ):
            # Members of the new generation that never sent SyncGroup are gone.
            for member_id in sorted(self.pending_sync):
                if member_id in self.members:
                    self._remove_member_and_update_group(member_id, now_ms)
            self.pending_sync.clear()
            self.sync_deadline_ms = None
        if (
            self.state is GroupState.PREPARING_REBALANCE
            and self.rebalance_deadline_ms is not None
            and now_ms >= self.rebalance_deadline_ms
        ):
            remaining_ms = self._initial_delay_remaining_ms
            if remaining_ms is not None and self._new_member_added and remaining_ms > 0:
                # Members are still arriving: wait one more delay, within the rebalance timeout.
                delay_ms = min(self.settings.initial_rebalance_delay_ms, remaining_ms)
                self._initial_delay_remaining_ms = max(remaining_ms - delay_ms, 0)
                self._new_member_added = False
                self.rebalance_deadline_ms = now_ms + delay_ms
            else:
                self._complete_join(now_ms)
        self._maybe_complete_join(now_ms)
