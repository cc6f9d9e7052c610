"""What the group handlers need from the broker node: the GroupCoordinator seam (typing.Protocol).

Handlers translate kio messages of every version to and from these version-free dataclasses;
the coordinator (brokers/groups/, composed by the node) owns Kafka's classic group protocol:
membership, the rebalance barrier, generations, assignments and committed offsets. Every call
takes the connection's principal: groups live in its tenant's namespace, so another tenant's
group of the same name is simply a different (usually unknown) group. Error codes are Kafka's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .services import Principal

COORDINATOR_KEY_GROUP = 0
COORDINATOR_KEY_TRANSACTION = 1
COORDINATOR_KEY_SHARE = 2


@dataclass(frozen=True, slots=True)
class CoordinatorResult:
    """FindCoordinator's answer for one key: the broker clients send that group's requests to."""

    key: str
    error_code: int
    node_id: int = -1
    host: str = ""
    port: int = -1
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class JoinRequest:
    group_id: str
    member_id: str
    """"" on a member's first join; the coordinator then assigns one."""
    group_instance_id: str | None
    """Static membership (KIP-345): the member keeps its place across restarts by this id."""
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    """(assignor name, its metadata), in the member's order of preference."""
    session_timeout_ms: int
    rebalance_timeout_ms: int
    client_id: str = ""
    client_host: str = ""
    require_known_member_id: bool = False
    """JoinGroup v4+ (KIP-394): a member without id gets MEMBER_ID_REQUIRED and an id first."""
    supports_skip_assignment: bool = False
    """JoinGroup v9+ (KIP-814): a static leader rejoining a stable group need not re-assign."""
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class JoinedMember:
    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinResult:
    error_code: int
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    members: tuple[JoinedMember, ...] = ()
    """Every member's metadata for the chosen protocol, for the leader only; empty for others."""
    skip_assignment: bool = False


@dataclass(frozen=True, slots=True)
class SyncRequest:
    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None
    protocol_type: str | None
    protocol_name: str | None
    assignments: Mapping[str, bytes]
    """The leader's assignment per member id; empty from the other members."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    error_code: int
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(frozen=True, slots=True)
class LeavingMember:
    member_id: str
    group_instance_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class LeaveResult:
    error_code: int
    """A group-level error (NOT_COORDINATOR, INVALID_GROUP_ID...); NONE otherwise."""
    members: tuple[tuple[LeavingMember, int], ...] = ()
    """Each leaving member with its own error code (LeaveGroup v3+ batches members)."""


@dataclass(frozen=True, slots=True)
class OffsetToCommit:
    topic: str
    partition: int
    offset: int
    leader_epoch: int = -1
    metadata: str | None = ""


@dataclass(frozen=True, slots=True)
class CommitRequest:
    group_id: str
    generation_id: int
    """-1 with member id "": a "simple" commit from a consumer using assign()."""
    member_id: str
    group_instance_id: str | None
    offsets: tuple[OffsetToCommit, ...]


@dataclass(frozen=True, slots=True)
class PartitionError:
    topic: str
    partition: int
    error_code: int


@dataclass(frozen=True, slots=True)
class CommittedOffsetInfo:
    """A committed offset as OffsetFetch returns it; offset -1 when the group has none."""

    topic: str
    partition: int
    offset: int = -1
    leader_epoch: int = -1
    metadata: str | None = ""
    error_code: int = 0


@dataclass(frozen=True, slots=True)
class OffsetFetchResult:
    error_code: int
    offsets: tuple[CommittedOffsetInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class OffsetDeleteResult:
    error_code: int
    """A group-level error (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, NOT_COORDINATOR...)."""
    partitions: tuple[PartitionError, ...] = ()
    """Each requested partition, in request order: NONE or GROUP_SUBSCRIBED_TO_TOPIC."""


@dataclass(frozen=True, slots=True)
class GroupOverview:
    group_id: str
    protocol_type: str
    state: str


@dataclass(frozen=True, slots=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupDescription:
    """DescribeGroups' view: state "Dead" and no members for a group that does not exist."""

    group_id: str
    error_code: int
    state: str = "Dead"
    protocol_type: str = ""
    protocol_name: str = ""
    members: tuple[MemberDescription, ...] = ()


class GroupCoordinator(Protocol):
    """Kafka's classic group coordinator, one per broker node, over the principal's tenant.

    A group's requests go to its coordinator (find_coordinator); any other broker answers them
    with NOT_COORDINATOR so clients look it up again. An empty group id is INVALID_GROUP_ID.
    """

    async def find_coordinator(
        self, principal: Principal | None, key_type: int, key: str
    ) -> CoordinatorResult:
        """GROUP keys: a stable choice among the live brokers. TRANSACTION: not supported."""
        ...

    async def join_group(self, principal: Principal | None, request: JoinRequest) -> JoinResult:
        """Answer when the rebalance completes (or at once: errors, MEMBER_ID_REQUIRED...)."""
        ...

    async def sync_group(self, principal: Principal | None, request: SyncRequest) -> SyncResult:
        """The member's assignment, once the leader has sent the generation's assignments."""
        ...

    async def heartbeat(
        self,
        principal: Principal | None,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
    ) -> int:
        """NONE, or REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID / ..."""
        ...

    async def leave_group(
        self, principal: Principal | None, group_id: str, members: Sequence[LeavingMember]
    ) -> LeaveResult: ...

    async def commit_offsets(
        self, principal: Principal | None, request: CommitRequest
    ) -> tuple[PartitionError, ...]:
        """One error code per partition, in request order; stored before answering.

        A non-simple commit to a group that does not exist answers GROUP_ID_NOT_FOUND (what
        OffsetCommit v9+ says; older versions' handlers turn it into ILLEGAL_GENERATION).
        """
        ...

    async def fetch_offsets(
        self,
        principal: Principal | None,
        group_id: str,
        partitions: Sequence[tuple[str, int]] | None,
        *,
        require_stable: bool = False,
    ) -> OffsetFetchResult:
        """Committed offsets of those partitions (None: every partition the group has one for)."""
        ...

    async def delete_offsets(
        self, principal: Principal | None, group_id: str, partitions: Sequence[tuple[str, int]]
    ) -> OffsetDeleteResult:
        """OffsetDelete (KIP-496): remove the group's committed offsets of those partitions.

        Partitions of topics the tenant has; NONE also where the group had no offset. A group
        with members keeps the offsets of topics a member subscribes to.
        """
        ...

    async def list_groups(
        self, principal: Principal | None, states: Sequence[str] = ()
    ) -> tuple[int, tuple[GroupOverview, ...]]:
        """Groups of the tenant this broker coordinates, optionally only in these states."""
        ...

    async def describe_group(
        self, principal: Principal | None, group_id: str
    ) -> GroupDescription: ...

    async def delete_group(self, principal: Principal | None, group_id: str) -> int:
        """Delete an Empty group and its committed offsets: NONE, NON_EMPTY_GROUP,
        GROUP_ID_NOT_FOUND, NOT_COORDINATOR or INVALID_GROUP_ID."""
        ...
