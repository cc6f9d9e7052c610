"""The group coordinator's durable state in Django models: ConsumerGroup, GroupMember, offsets.

Implements brokers/groups/records.GroupStore. Every call is one transaction, run in a worker
thread (never on the event loop) with a fresh-enough database connection. Rows are what admin
shows, and what a broker that becomes a group's coordinator loads it from.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, transaction
from django.db.models import Q

from brokers.groups.records import GroupRecord, MemberRecord
from brokers.models import CommittedOffset, ConsumerGroup, GroupMember, Topic
from brokers.protocol.errors import ErrorCode
from brokers.protocol.group_services import CommittedOffsetInfo, GroupOverview, OffsetToCommit
from djafka.models import Tenant

P = ParamSpec("P")
T = TypeVar("T")


def _in_worker_thread(fn: Callable[P, T]) -> Callable[P, T]:
    """Run in a thread of its own (thread_sensitive=False), after close_old_connections()."""

    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        close_old_connections()
        return fn(*args, **kwargs)

    return sync_to_async(call, thread_sensitive=False)  # type: ignore[return-value]


class DjangoGroupStore:
    """GroupStore over the cluster database."""

    async def load_group(self, tenant: str, group_id: str) -> GroupRecord | None:
        return await _in_worker_thread(_load_group)(tenant, group_id)

    async def save_group(self, record: GroupRecord) -> None:
        await _in_worker_thread(_save_group)(record)

    async def delete_group(self, tenant: str, group_id: str) -> None:
        await _in_worker_thread(_delete_group)(tenant, group_id)

    async def list_groups(self, tenant: str) -> Sequence[GroupOverview]:
        return await _in_worker_thread(_list_groups)(tenant)

    async def commit_offsets(
        self,
        tenant: str,
        group_id: str,
        offsets: Sequence[OffsetToCommit],
        commit_time_ms: float,
    ) -> tuple[int, ...]:
        if not offsets:
            return ()
        return await _in_worker_thread(_commit_offsets)(
            tenant, group_id, offsets, commit_time_ms
        )

    async def offset_commit_times(
        self, tenant: str, group_id: str
    ) -> Mapping[tuple[str, int], float]:
        return await _in_worker_thread(_offset_commit_times)(tenant, group_id)

    async def delete_offsets(
        self,
        tenant: str,
        group_id: str,
        partitions: Sequence[tuple[str, int]],
        *,
        committed_up_to_ms: float | None = None,
    ) -> int:
        return await _in_worker_thread(_delete_offsets)(
            tenant, group_id, partitions, committed_up_to_ms
        )

    async def delete_group_without_offsets(self, tenant: str, group_id: str) -> bool:
        return await _in_worker_thread(_delete_group_without_offsets)(tenant, group_id)

    async def expiry_candidates(self, retention_start_ms: float) -> Sequence[tuple[str, str]]:
        return await _in_worker_thread(_expiry_candidates)(retention_start_ms)

    async def fetch_offsets(
        self, tenant: str, group_id: str, partitions: Sequence[tuple[str, int]] | None
    ) -> Sequence[CommittedOffsetInfo]:
        return await _in_worker_thread(_fetch_offsets)(tenant, group_id, partitions)


def _load_group(tenant: str, group_id: str) -> GroupRecord | None:
    group = ConsumerGroup.objects.filter(tenant__name=tenant, group_id=group_id).first()
    if group is None:
        return None
    members = tuple(
        MemberRecord(
            member_id=m.member_id,
            group_instance_id=m.group_instance_id or None,
            client_id=m.client_id,
            client_host=m.client_host,
            session_timeout_ms=m.session_timeout_ms,
            rebalance_timeout_ms=m.rebalance_timeout_ms,
            protocols=_protocols_from_json(m.protocols),
            assignment=bytes(m.assignment),
            last_heartbeat_ms=_to_ms(m.last_heartbeat_at) if m.last_heartbeat_at else 0.0,
        )
        for m in group.members.order_by("joined_at", "pk")
    )
    return GroupRecord(
        tenant=tenant,
        group_id=group_id,
        state=group.state,
        protocol_type=group.protocol_type,
        protocol_name=group.protocol_name,
        generation_id=group.generation_id,
        leader_id=group.leader_member_id,
        members=members,
        state_timestamp_ms=_to_ms(group.state_changed_at) if group.state_changed_at else None,
    )


def _save_group(record: GroupRecord) -> None:
    with transaction.atomic():
        tenant = Tenant.objects.get(name=record.tenant)
        group, _ = ConsumerGroup.objects.update_or_create(
            tenant=tenant,
            group_id=record.group_id,
            defaults={
                "state": record.state,
                "protocol_type": record.protocol_type,
                "protocol_name": record.protocol_name,
                "generation_id": record.generation_id,
                "leader_member_id": record.leader_id,
                "state_changed_at": (
                    None
                    if record.state_timestamp_ms is None
                    else _to_datetime(record.state_timestamp_ms)
                ),
            },
        )
        member_ids = [m.member_id for m in record.members]
        GroupMember.objects.filter(group=group).exclude(member_id__in=member_ids).delete()
        for m in record.members:
            GroupMember.objects.update_or_create(
                group=group,
                member_id=m.member_id,
                defaults={
                    "group_instance_id": m.group_instance_id or "",
                    "client_id": m.client_id,
                    "client_host": m.client_host,
                    "session_timeout_ms": m.session_timeout_ms,
                    "rebalance_timeout_ms": m.rebalance_timeout_ms,
                    "protocols": _protocols_to_json(m.protocols),
                    "assignment": m.assignment,
                    "last_heartbeat_at": _to_datetime(m.last_heartbeat_ms),
                },
            )


def _delete_group(tenant: str, group_id: str) -> None:
    ConsumerGroup.objects.filter(tenant__name=tenant, group_id=group_id).delete()


def _list_groups(tenant: str) -> list[GroupOverview]:
    return [
        GroupOverview(group_id, protocol_type, state)
        for group_id, protocol_type, state in ConsumerGroup.objects.filter(
            tenant__name=tenant
        ).values_list("group_id", "protocol_type", "state")
    ]


def _commit_offsets(
    tenant_name: str, group_id: str, offsets: Sequence[OffsetToCommit], commit_time_ms: float
) -> tuple[int, ...]:
    with transaction.atomic():
        tenant = Tenant.objects.filter(name=tenant_name).first()
        names = {o.topic for o in offsets}
        topics = {t.name: t for t in Topic.objects.filter(tenant=tenant, name__in=names)}
        errors: list[int] = []
        group: ConsumerGroup | None = None
        now = _to_datetime(commit_time_ms)
        for o in offsets:
            topic = topics.get(o.topic)
            if topic is None or not 0 <= o.partition < topic.partition_count:
                errors.append(ErrorCode.unknown_topic_or_partition)
                continue
            if group is None:
                group, _ = ConsumerGroup.objects.get_or_create(
                    tenant=tenant, group_id=group_id, defaults={"state_changed_at": now}
                )
            CommittedOffset.objects.update_or_create(
                group=group,
                topic=topic,
                partition=o.partition,
                defaults={
                    "offset": o.offset,
                    "leader_epoch": o.leader_epoch,
                    "metadata": o.metadata or "",
                    "committed_at": now,
                },
            )
            errors.append(ErrorCode.none)
        return tuple(errors)


def _fetch_offsets(
    tenant: str, group_id: str, partitions: Sequence[tuple[str, int]] | None
) -> list[CommittedOffsetInfo]:
    rows = {
        (row.topic.name, row.partition): row
        for row in CommittedOffset.objects.filter(
            group__tenant__name=tenant, group__group_id=group_id
        ).select_related("topic")
    }
    wanted = sorted(rows) if partitions is None else partitions
    result = []
    for topic, partition in wanted:
        row = rows.get((topic, partition))
        if row is None:
            result.append(CommittedOffsetInfo(topic, partition))
        else:
            result.append(
                CommittedOffsetInfo(topic, partition, row.offset, row.leader_epoch, row.metadata)
            )
    return result


def _offset_commit_times(tenant: str, group_id: str) -> dict[tuple[str, int], float]:
    return {
        (topic, partition): _to_ms(committed_at)
        for topic, partition, committed_at in CommittedOffset.objects.filter(
            group__tenant__name=tenant, group__group_id=group_id
        ).values_list("topic__name", "partition", "committed_at")
    }


def _delete_offsets(
    tenant: str,
    group_id: str,
    partitions: Sequence[tuple[str, int]],
    committed_up_to_ms: float | None,
) -> int:
    offsets = CommittedOffset.objects.filter(group__tenant__name=tenant, group__group_id=group_id)
    with transaction.atomic():
        if partitions:
            by_topic: dict[str, set[int]] = {}
            for topic, partition in partitions:
                by_topic.setdefault(topic, set()).add(partition)
            wanted = Q()
            for topic, indexes in by_topic.items():
                wanted |= Q(topic__name=topic, partition__in=sorted(indexes))
            doomed = offsets.filter(wanted)
            if committed_up_to_ms is not None:
                doomed = doomed.filter(committed_at__lte=_to_datetime(committed_up_to_ms))
            doomed.delete()
        return offsets.count()


def _delete_group_without_offsets(tenant: str, group_id: str) -> bool:
    with transaction.atomic():
        deleted, _ = ConsumerGroup.objects.filter(
            tenant__name=tenant, group_id=group_id, committed_offsets__isnull=True
        ).delete()
        return bool(deleted)


def _expiry_candidates(retention_start_ms: float) -> list[tuple[str, str]]:
    retention_start = _to_datetime(retention_start_ms)
    empty = Q(state=ConsumerGroup.State.EMPTY)
    return list(
        ConsumerGroup.objects.filter(
            Q(committed_offsets__committed_at__lte=retention_start)
            | (empty & Q(state_changed_at__lte=retention_start))
            | (empty & Q(committed_offsets__isnull=True))
        )
        .values_list("tenant__name", "group_id")
        .distinct()
        .order_by("tenant__name", "group_id")
    )


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _to_datetime(ms: float) -> datetime.datetime:
    """Milliseconds since the epoch as a datetime, exact to the microsecond (no float drift, so
    a time read back compares equal to the row it came from)."""
    return _EPOCH + datetime.timedelta(microseconds=round(ms * 1000))


def _to_ms(moment: datetime.datetime) -> float:
    return (moment - _EPOCH) / datetime.timedelta(microseconds=1) / 1000


def _protocols_to_json(protocols: tuple[tuple[str, bytes], ...]) -> list[dict[str, str]]:
    return [
        {"name": name, "metadata": base64.b64encode(metadata).decode()}
        for name, metadata in protocols
    ]


def _protocols_from_json(protocols: object) -> tuple[tuple[str, bytes], ...]:
    if not isinstance(protocols, list):
        return ()
    return tuple(
        (str(p.get("name", "")), base64.b64decode(p.get("metadata", "")))
        for p in protocols
        if isinstance(p, dict)
    )
