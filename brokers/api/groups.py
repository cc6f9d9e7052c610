"""REST consumer groups: their state, members and assignments, committed offsets and lag.

Group state is what the broker nodes' group coordinator wrote to the database; the log end
offsets that lag is measured against come from the partition leaders over wire.
"""

import struct
from collections import defaultdict

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from brokers.api import wire
from brokers.api.record_schemas import ErrorSerializer
from brokers.models import CommittedOffset, ConsumerGroup
from djafka.models import Tenant

# The reader's own group.id (assign-only, never joins); not a group a tenant made.
_INTERNAL_GROUPS = {"__djafka_rest_reader"}


def decode_assignment(data: bytes) -> dict[str, list[int]] | None:
    """The consumer protocol's MemberAssignment: {topic: [partitions]}, None if not decodable.

    Kafka's schema (ConsumerProtocolAssignment): version int16, then an array (int32 count) of
    (topic: int16-length string, partitions: int32 array), then nullable user data bytes.
    """
    if not data:
        return {}
    try:
        offset = 2
        (count,) = struct.unpack_from(">i", data, offset)
        offset += 4
        assignment: dict[str, list[int]] = {}
        for _ in range(max(count, 0)):
            (length,) = struct.unpack_from(">h", data, offset)
            offset += 2
            topic = data[offset : offset + length].decode()
            offset += length
            (n,) = struct.unpack_from(">i", data, offset)
            offset += 4
            partitions = list(struct.unpack_from(f">{n}i", data, offset)) if n > 0 else []
            offset += 4 * max(n, 0)
            assignment.setdefault(topic, []).extend(partitions)
        return assignment
    except (struct.error, UnicodeDecodeError):
        return None


def committed_with_lag(
    tenant: Tenant, group: ConsumerGroup, timeout_s: float | None = None
) -> list[dict]:
    """Each committed offset with its partition's log end offset and lag (null if unreachable)."""
    committed = list(
        CommittedOffset.objects.filter(group=group).select_related("topic")
        .order_by("topic__name", "partition")
    )
    by_topic: dict[str, list[int]] = defaultdict(list)
    for c in committed:
        by_topic[c.topic.name].append(c.partition)
    try:
        ends = (
            wire.list_offsets(tenant.name, by_topic, wire.LATEST_TIMESTAMP, timeout_s)
            if by_topic else {}
        )
    except wire.WireError:
        ends = {}
    rows = []
    for c in committed:
        end = ends.get((c.topic.name, c.partition))
        rows.append({
            "topic": c.topic.name,
            "partition": c.partition,
            "committed_offset": c.offset,
            "log_end_offset": end,
            "lag": max(end - c.offset, 0) if end is not None and c.offset >= 0 else None,
            "metadata": c.metadata,
            "committed_at": c.committed_at,
        })
    return rows


class GroupOffsetSerializer(serializers.Serializer):
    topic = serializers.CharField()
    partition = serializers.IntegerField()
    committed_offset = serializers.IntegerField()
    log_end_offset = serializers.IntegerField(
        allow_null=True, help_text="null when the partition's leader could not be reached."
    )
    lag = serializers.IntegerField(allow_null=True, help_text="log end offset - committed.")
    metadata = serializers.CharField()
    committed_at = serializers.DateTimeField()


class GroupMemberSerializer(serializers.Serializer):
    member_id = serializers.CharField()
    group_instance_id = serializers.CharField(allow_null=True)
    client_id = serializers.CharField()
    client_host = serializers.CharField()
    assignment = serializers.DictField(
        child=serializers.ListField(child=serializers.IntegerField()), allow_null=True,
        help_text="{topic: [partitions]} from the consumer protocol; null if not decodable.",
    )


class GroupSummarySerializer(serializers.Serializer):
    group_id = serializers.CharField()
    state = serializers.CharField()
    protocol_type = serializers.CharField()
    protocol_name = serializers.CharField()
    generation_id = serializers.IntegerField()
    member_count = serializers.IntegerField()
    lag = serializers.IntegerField(
        allow_null=True, help_text="Total lag over committed partitions; null if unknown."
    )


class GroupDetailSerializer(GroupSummarySerializer):
    leader_member_id = serializers.CharField()
    members = GroupMemberSerializer(many=True)
    offsets = GroupOffsetSerializer(many=True)


def _summary(group: ConsumerGroup, offsets: list[dict]) -> dict:
    lags = [o["lag"] for o in offsets]
    return {
        "group_id": group.group_id,
        "state": group.state,
        "protocol_type": group.protocol_type,
        "protocol_name": group.protocol_name,
        "generation_id": group.generation_id,
        "member_count": len(group.members.all()),
        "lag": sum(lags) if lags and None not in lags else (0 if not lags else None),
    }


def _groups(tenant: Tenant) -> QuerySet[ConsumerGroup]:
    return (
        ConsumerGroup.objects.filter(tenant=tenant)
        .exclude(group_id__in=_INTERNAL_GROUPS)
        .prefetch_related("members")
        .order_by("group_id")
    )


class GroupListView(APIView):
    """GET the tenant's consumer groups with their state and total lag."""

    @extend_schema(operation_id="groups_list", responses=GroupSummarySerializer(many=True))
    def get(self, request: Request) -> Response:
        tenant = request.user.tenant
        return Response([
            _summary(group, committed_with_lag(tenant, group)) for group in _groups(tenant)
        ])


class GroupDetailView(APIView):
    """GET one consumer group: members and their assignments, committed offsets and lag."""

    @extend_schema(
        operation_id="groups_retrieve",
        responses={200: GroupDetailSerializer, 404: ErrorSerializer},
    )
    def get(self, request: Request, group_id: str) -> Response:
        tenant = request.user.tenant
        group = _groups(tenant).filter(group_id=group_id).first()
        if group is None:
            raise NotFound(f"Group '{group_id}' does not exist.")
        offsets = committed_with_lag(tenant, group)
        members = [
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id or None,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "assignment": decode_assignment(bytes(m.assignment))
                if group.protocol_type in ("consumer", "") else None,
            }
            for m in group.members.all()
        ]
        return Response({
            **_summary(group, offsets),
            "leader_member_id": group.leader_member_id,
            "members": members,
            "offsets": offsets,
        })
