"""What a group coordinator persists, and the store it persists it through (typing.Protocol).

The coordinator keeps live groups in memory (barriers and timers need it) and writes every state
change through a GroupStore, so that a group, its members' assignments and its committed
offsets survive a restart of every broker node. The Django store is brokers/node/group_store.py.
"""

from __future__ import annotations

from collections.abc import Sequence
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
        self, tenant: str, group_id: str, offsets: Sequence[OffsetToCommit]
    ) -> tuple[int, ...]:
        """Store the offsets (creating the group row if needed); an error code per offset.

        UNKNOWN_TOPIC_OR_PARTITION for a topic the tenant does not have (anymore).
        """
        ...

    async def fetch_offsets(
        self, tenant: str, group_id: str, partitions: Sequence[tuple[str, int]] | None
    ) -> Sequence[CommittedOffsetInfo]:
        """Committed offsets of those partitions (None: all of the group's), without gaps."""
        ...
