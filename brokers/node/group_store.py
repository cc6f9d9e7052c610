"""The group coordinator's durable state in Django models: ConsumerGroup, GroupMember, offsets.

Implements brokers/groups/records.GroupStore. Every call is one transaction, run in a worker
thread (never on the event loop) with a fresh-enough database connection. Rows are what admin
shows, and what a broker that becomes a group's coordinator loads it from.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, transaction
from django.utils import timezone

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
        self, tenant: str, group_id: str, offsets: Sequence[OffsetToCommit]
    ) -> tuple[int, ...]:
        if not offsets:
            return ()
        return await _in_worker_thread(_commit_offsets)(tenant, group_id, offsets)

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
            last_heartbeat_ms=(
                m.last_heartbeat_at.timestamp() * 1000 if m.last_heartbeat_at else 0.0
            ),
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
                    "last_heartbeat_at": datetime.datetime.fromtimestamp(
                        m.last_heartbeat_ms / 1000, tz=datetime.UTC
                    ),
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
    tenant_name: str, group_id: str, offsets: Sequence[OffsetToCommit]
) -> tuple[int, ...]:
    with transaction.atomic():
        tenant = Tenant.objects.filter(name=tenant_name).first()
        names = {o.topic for o in offsets}
        topics = {t.name: t for t in Topic.objects.filter(tenant=tenant, name__in=names)}
        errors: list[int] = []
        group: ConsumerGroup | None = None
        now = timezone.now()
        for o in offsets:
            topic = topics.get(o.topic)
            if topic is None or not 0 <= o.partition < topic.partition_count:
                errors.append(ErrorCode.unknown_topic_or_partition)
                continue
            if group is None:
                group, _ = ConsumerGroup.objects.get_or_create(tenant=tenant, group_id=group_id)
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
