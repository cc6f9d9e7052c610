"""InMemoryGroupStore: a GroupStore in dicts, for tests and throwaway single-broker setups.

Nothing survives the process. Commits are checked against `partition_count(tenant, topic)`
(None: the tenant has no such topic), as the Django store checks them against Topic rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from brokers.protocol.errors import ErrorCode
from brokers.protocol.group_services import CommittedOffsetInfo, GroupOverview, OffsetToCommit

from .records import GroupRecord

GroupKey = tuple[str, str]


class InMemoryGroupStore:
    def __init__(self, partition_count: Callable[[str, str], int | None]) -> None:
        self._partition_count = partition_count
        self.groups: dict[GroupKey, GroupRecord] = {}
        self.offsets: dict[GroupKey, dict[tuple[str, int], CommittedOffsetInfo]] = {}
        self.commit_times: dict[GroupKey, dict[tuple[str, int], float]] = {}

    async def load_group(self, tenant: str, group_id: str) -> GroupRecord | None:
        return self.groups.get((tenant, group_id))

    async def save_group(self, record: GroupRecord) -> None:
        self.groups[(record.tenant, record.group_id)] = record

    async def delete_group(self, tenant: str, group_id: str) -> None:
        self.groups.pop((tenant, group_id), None)
        self.offsets.pop((tenant, group_id), None)
        self.commit_times.pop((tenant, group_id), None)

    async def list_groups(self, tenant: str) -> Sequence[GroupOverview]:
        return [
            GroupOverview(record.group_id, record.protocol_type, record.state)
            for (owner, _), record in self.groups.items()
            if owner == tenant
        ]

    async def commit_offsets(
        self,
        tenant: str,
        group_id: str,
        offsets: Sequence[OffsetToCommit],
        commit_time_ms: float,
    ) -> tuple[int, ...]:
        key = (tenant, group_id)
        codes = []
        for o in offsets:
            count = self._partition_count(tenant, o.topic)
            if count is None or not 0 <= o.partition < count:
                codes.append(ErrorCode.unknown_topic_or_partition)
                continue
            if key not in self.groups:
                self.groups[key] = GroupRecord(
                    tenant, group_id, "Empty", "", "", 0, "", state_timestamp_ms=commit_time_ms
                )
            self.offsets.setdefault(key, {})[(o.topic, o.partition)] = CommittedOffsetInfo(
                o.topic, o.partition, o.offset, o.leader_epoch, o.metadata
            )
            self.commit_times.setdefault(key, {})[(o.topic, o.partition)] = commit_time_ms
            codes.append(ErrorCode.none)
        return tuple(codes)

    async def offset_commit_times(
        self, tenant: str, group_id: str
    ) -> Mapping[tuple[str, int], float]:
        return dict(self.commit_times.get((tenant, group_id), {}))

    async def delete_offsets(
        self,
        tenant: str,
        group_id: str,
        partitions: Sequence[tuple[str, int]],
        *,
        committed_up_to_ms: float | None = None,
    ) -> int:
        key = (tenant, group_id)
        offsets = self.offsets.get(key, {})
        times = self.commit_times.get(key, {})
        for partition in partitions:
            if partition in times and (
                committed_up_to_ms is None or times[partition] <= committed_up_to_ms
            ):
                del offsets[partition], times[partition]
        return len(offsets)

    async def delete_group_without_offsets(self, tenant: str, group_id: str) -> bool:
        key = (tenant, group_id)
        if key not in self.groups or self.offsets.get(key):
            return False
        await self.delete_group(tenant, group_id)
        return True

    async def expiry_candidates(self, retention_start_ms: float) -> Sequence[tuple[str, str]]:
        candidates = []
        for key, record in self.groups.items():
            times = self.commit_times.get(key, {}).values()
            empty_since_ms = record.state_timestamp_ms if record.state == "Empty" else None
            if (
                any(t <= retention_start_ms for t in times)
                or (record.state == "Empty" and not times)
                or (empty_since_ms is not None and empty_since_ms <= retention_start_ms)
            ):
                candidates.append(key)
        return candidates

    async def fetch_offsets(
        self, tenant: str, group_id: str, partitions: Sequence[tuple[str, int]] | None
    ) -> Sequence[CommittedOffsetInfo]:
        stored = self.offsets.get((tenant, group_id), {})
        wanted = sorted(stored) if partitions is None else partitions
        return [stored.get(key, CommittedOffsetInfo(*key)) for key in wanted]
