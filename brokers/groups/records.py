"""What a group coordinator persists, and the store it persists it through (typing.Protocol).

The coordinator keeps live groups in memory (barriers and timers need it) and writes every state
change through a GroupStore, so that a group, its members' assignments and its committed
offsets survive a restart of every broker node. The Django store is brokers/node/group_store.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from brokers.protocol.group_services import CommittedOffsetInfo, GroupOverview, OffsetToCommit


@dataclass(frozen=True, slots=True)
class MemberRecord:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: tuple[tuple[str, bytes], ...]
    assignment: bytes
    last_heartbeat_ms: float
    """Wall-clock milliseconds since the epoch."""


@dataclass(frozen=True, slots=True)
class GroupRecord:
    tenant: str
    group_id: str
    state: str
    protocol_type: str
    protocol_name: str
    generation_id: int
    leader_id: str
    members: tuple[MemberRecord, ...] = ()
    state_timestamp_ms: float | None = None
    """When the group entered its state (Kafka's currentStateTimestamp): for an Empty group, the
    time its offsets' retention counts from. None for groups stored before it was kept."""


class GroupStore(Protocol):
    """Durable group state of every tenant; each call is one transaction."""

    async def load_group(self, tenant: str, group_id: str) -> GroupRecord | None: ...

    async def save_group(self, record: GroupRecord) -> None:
        """Create or replace the group row and its members (members not listed are removed)."""
        ...

    async def delete_group(self, tenant: str, group_id: str) -> None:
        """The group, its members and its committed offsets."""
        ...

    async def list_groups(self, tenant: str) -> Sequence[GroupOverview]: ...

    async def commit_offsets(
        self,
        tenant: str,
        group_id: str,
        offsets: Sequence[OffsetToCommit],
        commit_time_ms: float,
    ) -> tuple[int, ...]:
        """Store the offsets (creating the group row if needed); an error code per offset.

        UNKNOWN_TOPIC_OR_PARTITION for a topic the tenant does not have (anymore). The commit
        time (the coordinator's clock) is what a standalone group's offsets expire by.
        """
        ...

    async def offset_commit_times(
        self, tenant: str, group_id: str
    ) -> Mapping[tuple[str, int], float]:
        """The commit time (ms) of each of the group's committed offsets, by (topic, partition)."""
        ...

    async def delete_offsets(
        self,
        tenant: str,
        group_id: str,
        partitions: Sequence[tuple[str, int]],
        *,
        committed_up_to_ms: float | None = None,
    ) -> int:
        """Delete those partitions' committed offsets; how many the group has left.

        With `committed_up_to_ms`, only offsets committed at or before it go: one committed
        since the caller looked at them stays.
        """
        ...

    async def delete_group_without_offsets(self, tenant: str, group_id: str) -> bool:
        """Delete the group (and its members) if it has no committed offsets; whether it did."""
        ...

    async def expiry_candidates(self, retention_start_ms: float) -> Sequence[tuple[str, str]]:
        """(tenant, group id) of every group whose offsets may expire or that may be removed:
        an offset committed at or before `retention_start_ms` (now minus the retention), Empty
        since then, or Empty with no committed offsets. A superset: the coordinator decides."""
        ...

    async def fetch_offsets(
        self, tenant: str, group_id: str, partitions: Sequence[tuple[str, int]] | None
    ) -> Sequence[CommittedOffsetInfo]:
        """Committed offsets of those partitions (None: all of the group's), without gaps."""
        ...
