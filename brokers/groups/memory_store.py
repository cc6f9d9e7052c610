"""InMemoryGroupStore: a GroupStore in dicts, for tests and throwaway single-broker setups.

Nothing survives the process. Commits are checked against `partition_count(tenant, topic)`
(None: the tenant has no such topic), as the Django store checks them against Topic rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from brokers.protocol.errors import ErrorCode
from brokers.protocol.group_services import CommittedOffsetInfo, GroupOverview, OffsetToCommit

from .records import GroupRecord

GroupKey = tuple[str, str]


class InMemoryGroupStore:
    def __init__(self, partition_count: Callable[[str, str], int | None]) -> None:
        self._partition_count = partition_count
        self.groups: dict[GroupKey, GroupRecord] = {}
        self.offsets: dict[GroupKey, dict[tuple[str, int], CommittedOffsetInfo]] = {}

    async def load_group(self, tenant: str, group_id: str) -> GroupRecord | None:
        return self.groups.get((tenant, group_id))

    async def save_group(self, record: GroupRecord) -> None:
        self.groups[(record.tenant, record.group_id)] = record

    async def delete_group(self, tenant: str, group_id: str) -> None:
        self.groups.pop((tenant, group_id), None)
        self.offsets.pop((tenant, group_id), None)

    async def list_groups(self, tenant: str) -> Sequence[GroupOverview]:
        return [
            GroupOverview(record.group_id, record.protocol_type, record.state)
            for (owner, _), record in self.groups.items()
            if owner == tenant
        ]

    async def commit_offsets(
        self, tenant: str, group_id: str, offsets: Sequence[OffsetToCommit]
    ) -> tuple[int, ...]:
        key = (tenant, group_id)
        codes = []
        for o in offsets:
            count = self._partition_count(tenant, o.topic)
            if count is None or not 0 <= o.partition < count:
                codes.append(ErrorCode.unknown_topic_or_partition)
                continue
            if key not in self.groups:
                self.groups[key] = GroupRecord(tenant, group_id, "Empty", "", "", 0, "")
            self.offsets.setdefault(key, {})[(o.topic, o.partition)] = CommittedOffsetInfo(
                o.topic, o.partition, o.offset, o.leader_epoch, o.metadata
            )
            codes.append(ErrorCode.none)
        return tuple(codes)

    async def fetch_offsets(
        self, tenant: str, group_id: str, partitions: Sequence[tuple[str, int]] | None
    ) -> Sequence[CommittedOffsetInfo]:
        stored = self.offsets.get((tenant, group_id), {})
        wanted = sorted(stored) if partitions is None else partitions
        return [stored.get(key, CommittedOffsetInfo(*key)) for key in wanted]
