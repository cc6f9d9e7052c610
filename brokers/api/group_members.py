"""REST members of consumer groups: join, poll (long poll, also the heartbeat), commit, leave.

Thin views over brokers/api/rest_members.py, which holds each member's Kafka consumer in this
web process. Records are answered as REST partition reads answer them (record_format). A member
is found only with its tenant and group: another tenant's member id is a 404.
"""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from brokers.api import wire
from brokers.api.long_polls import allowed_wait_ms
from brokers.api.record_format import FORMATS, record_answer
from brokers.api.record_schemas import (
    FORMAT_HELP,
    INT32_MAX,
    INT64_MAX,
    ErrorSerializer,
    FetchedRecordSerializer,
)
from brokers.api.records import wire_error_response
from brokers.api.renderers import OrjsonRenderer
from brokers.api.rest_members import (
    MemberBusy,
    MemberConfig,
    RestMember,
    TooManyMembers,
    UnknownMember,
    registry,
)
from brokers.models import Topic

# Group ids the web tier uses itself (the REST reader's assign-only consumers).
_RESERVED_GROUP_PREFIX = "__djafka"

SESSION_HELP = (
    "The member leaves the group (its partitions go to the others) when it is not polled for "
    "this long. Only polls count."
)


class MemberCreateSerializer(serializers.Serializer):
    topics = serializers.ListField(
        child=serializers.CharField(max_length=249), min_length=1, max_length=100,
        help_text="The tenant's topics to subscribe to.",
    )
    session_timeout_ms = serializers.IntegerField(default=30_000, help_text=SESSION_HELP)
    auto_offset_reset = serializers.ChoiceField(
        ["earliest", "latest"], default="latest",
        help_text="Where to start in a partition the group has no committed offset for.",
    )
    key_format = serializers.ChoiceField(FORMATS, default="string", help_text=FORMAT_HELP)
    value_format = serializers.ChoiceField(FORMATS, default="json", help_text=FORMAT_HELP)

    def validate_topics(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Give each topic once.")
        return value

    def validate_session_timeout_ms(self, value: int) -> int:
        low = settings.DJAFKA_REST_MEMBER_MIN_SESSION_TIMEOUT_MS
        high = settings.DJAFKA_REST_MEMBER_MAX_SESSION_TIMEOUT_MS
        if not low <= value <= high:
            raise serializers.ValidationError(f"Give {low} to {high} ms.")
        return value


class MemberSerializer(serializers.Serializer):
    member_id = serializers.CharField(
        help_text="This REST member's id: keep it secret, it is the member's handle."
    )
    group_id = serializers.CharField()
    kafka_member_id = serializers.CharField(
        allow_null=True, help_text="The member id the group coordinator gave (null until joined)."
    )
    topics = serializers.ListField(child=serializers.CharField())
    session_timeout_ms = serializers.IntegerField()
    auto_offset_reset = serializers.CharField()
    key_format = serializers.CharField()
    value_format = serializers.CharField()


class PollQuerySerializer(serializers.Serializer):
    max_records = serializers.IntegerField(default=500, min_value=1, max_value=10_000)
    max_bytes = serializers.IntegerField(
        default=1024 * 1024, min_value=1, max_value=64 * 1024 * 1024,
        help_text="Stop after this many key and value bytes (at least one record is answered).",
    )
    timeout_ms = serializers.IntegerField(
        default=1000, min_value=0,
        help_text="Wait this long for a record when none is there (long poll).",
    )
    key_format = serializers.ChoiceField(
        FORMATS, required=False, help_text="Default: the member's."
    )
    value_format = serializers.ChoiceField(
        FORMATS, required=False, help_text="Default: the member's."
    )

    def validate_timeout_ms(self, value: int) -> int:
        if value > settings.DJAFKA_REST_MAX_POLL_TIMEOUT_MS:
            raise serializers.ValidationError(
                f"At most {settings.DJAFKA_REST_MAX_POLL_TIMEOUT_MS} ms."
            )
        return value


class PolledRecordSerializer(FetchedRecordSerializer):
    topic = serializers.CharField()


class PollResponseSerializer(serializers.Serializer):
    records = PolledRecordSerializer(many=True)


class OffsetSerializer(serializers.Serializer):
    topic = serializers.CharField()
    partition = serializers.IntegerField(min_value=0, max_value=INT32_MAX)
    offset = serializers.IntegerField(
        min_value=0, max_value=INT64_MAX,
        help_text="The next offset to read: the last processed offset + 1.",
    )


class CommitRequestSerializer(serializers.Serializer):
    offsets = OffsetSerializer(
        many=True, required=False,
        help_text="Omit (or send no body) to commit the offsets after the last polled records.",
    )


class CommitResponseSerializer(serializers.Serializer):
    offsets = OffsetSerializer(many=True, help_text="What was committed.")


class AssignmentSerializer(serializers.Serializer):
    member_id = serializers.CharField()
    kafka_member_id = serializers.CharField(allow_null=True)
    assignment = serializers.DictField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="{topic: [partitions]} the group coordinator's leader gave this member.",
    )


def _member(request: Request, group_id: str, member_id: str) -> RestMember:
    try:
        return registry.get(request.user.tenant.name, group_id, member_id)
    except UnknownMember:
        raise NotFound(f"Member '{member_id}' of group '{group_id}' does not exist.") from None


def _describe(member: RestMember) -> dict:
    config = member.config
    return {
        "member_id": member.member_id,
        "group_id": member.group_id,
        "kafka_member_id": member.kafka_member_id(),
        "topics": config.topics,
        "session_timeout_ms": config.session_timeout_ms,
        "auto_offset_reset": config.auto_offset_reset,
        "key_format": config.key_format,
        "value_format": config.value_format,
    }


def _error(status_code: int, error: str, detail: str) -> Response:
    return Response({"error": error, "detail": detail}, status=status_code)


class MemberListView(APIView):
    """POST a new REST member of a consumer group."""

    @extend_schema(
        operation_id="groups_members_create",
        request=MemberCreateSerializer,
        responses={201: MemberSerializer, 400: OpenApiTypes.OBJECT, 404: ErrorSerializer,
                   429: ErrorSerializer, 503: ErrorSerializer},
        description=(
            "Join a consumer group as a new member subscribed to topics. The member is a real "
            "member of the Kafka group: REST members and Kafka clients of the same group id share "
            "its partitions. Partitions come with the first polls (the group rebalances). The "
            "member lives in the web process that answered: route its later requests there "
            "(sticky by member_id)."
        ),
    )
    def post(self, request: Request, group_id: str) -> Response:
        if group_id.startswith(_RESERVED_GROUP_PREFIX):
            return Response({"group_id": ["This group id is reserved."]}, status=400)
        body = MemberCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        tenant = request.user.tenant
        found = set(
            Topic.objects.filter(tenant=tenant, name__in=data["topics"]).values_list("name",
                                                                                    flat=True)
        )
        missing = [t for t in data["topics"] if t not in found]
        if missing:
            raise NotFound(f"Topic '{missing[0]}' does not exist.")
        config = MemberConfig(
            topics=data["topics"],
            session_timeout_ms=data["session_timeout_ms"],
            auto_offset_reset=data["auto_offset_reset"],
            key_format=data["key_format"],
            value_format=data["value_format"],
        )
        try:
            member = registry.create(tenant.name, group_id, config)
        except TooManyMembers as exc:
            return _error(429, "TOO_MANY_MEMBERS", str(exc))
        except wire.WireError as exc:
            return wire_error_response(exc)
        return Response(_describe(member), status=status.HTTP_201_CREATED)


class MemberDetailView(APIView):
    """GET a REST member's settings; DELETE it (it leaves the group)."""

    @extend_schema(
        operation_id="groups_members_retrieve",
        responses={200: MemberSerializer, 404: ErrorSerializer},
    )
    def get(self, request: Request, group_id: str, member_id: str) -> Response:
        return Response(_describe(_member(request, group_id, member_id)))

    @extend_schema(
        operation_id="groups_members_destroy",
        responses={204: None, 404: ErrorSerializer},
        description=(
            "Leave the group: its partitions go to the other members at once. Offsets are not "
            "committed on leaving; commit first."
        ),
    )
    def delete(self, request: Request, group_id: str, member_id: str) -> Response:
        member = _member(request, group_id, member_id)
        try:
            registry.leave(member)
        except UnknownMember:
            raise NotFound(f"Member '{member_id}' of group '{group_id}' does not exist.") from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberRecordsView(APIView):
    """GET records of the member's partitions (long poll); each poll is its heartbeat."""

    renderer_classes = [OrjsonRenderer, BrowsableAPIRenderer]

    @extend_schema(
        operation_id="groups_members_records_poll",
        parameters=[PollQuerySerializer],
        responses={200: PollResponseSerializer, 400: OpenApiTypes.OBJECT, 404: ErrorSerializer,
                   409: ErrorSerializer, 503: ErrorSerializer},
        description=(
            "Poll records of the partitions the group gave this member, continuing where the "
            "member's last poll ended (or, for a partition new to it, at the group's committed "
            "offset, else auto_offset_reset). Waits up to timeout_ms when none is there. Each "
            "poll resets the member's session timeout. A second poll of the same member waits "
            "for the first (409 if it cannot)."
        ),
    )
    def get(self, request: Request, group_id: str, member_id: str) -> Response:
        member = _member(request, group_id, member_id)
        query = PollQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        try:
            with allowed_wait_ms(q["timeout_ms"]) as wait_ms:
                polled = registry.poll(member, q["max_records"], q["max_bytes"], wait_ms)
        except UnknownMember:
            raise NotFound(f"Member '{member_id}' of group '{group_id}' does not exist.") from None
        except MemberBusy as exc:
            return _error(409, "MEMBER_BUSY", str(exc))
        except wire.WireError as exc:
            return wire_error_response(exc)
        key_format = q.get("key_format") or member.config.key_format
        value_format = q.get("value_format") or member.config.value_format
        return Response({
            "records": [
                {"topic": p.topic, **record_answer(p.record, key_format, value_format)}
                for p in polled
            ],
        })


class MemberOffsetsView(APIView):
    """POST a commit of the member's offsets: given ones, or those after its last poll."""

    @extend_schema(
        operation_id="groups_members_offsets_commit",
        request=CommitRequestSerializer,
        responses={200: CommitResponseSerializer, 400: OpenApiTypes.OBJECT,
                   404: ErrorSerializer, 409: ErrorSerializer, 503: ErrorSerializer},
        description=(
            "Commit offsets for the group as this member (OffsetCommit with its generation). "
            "With no offsets, commits the offset after the last record polled from each "
            "partition the member still owns. 409 REBALANCE_IN_PROGRESS or ILLEGAL_GENERATION: "
            "the group is rebalancing; poll, then commit again."
        ),
    )
    def post(self, request: Request, group_id: str, member_id: str) -> Response:
        member = _member(request, group_id, member_id)
        body = CommitRequestSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        given = body.validated_data.get("offsets")
        offsets = None
        if given is not None:
            counts = dict(
                Topic.objects.filter(
                    tenant=request.user.tenant, name__in={o["topic"] for o in given}
                ).values_list("name", "partition_count")
            )
            for o in given:
                if o["topic"] not in counts:
                    raise NotFound(f"Topic '{o['topic']}' does not exist.")
                if o["partition"] >= counts[o["topic"]]:
                    raise NotFound(
                        f"Partition {o['partition']} of '{o['topic']}' does not exist."
                    )
            offsets = [(o["topic"], o["partition"], o["offset"]) for o in given]
        try:
            committed = member.commit(offsets)
        except wire.WireError as exc:
            return wire_error_response(exc)
        return Response({
            "offsets": [{"topic": t, "partition": p, "offset": o} for t, p, o in committed],
        })


class MemberAssignmentView(APIView):
    """GET the partitions the group currently gives the member."""

    @extend_schema(
        operation_id="groups_members_assignment",
        responses={200: AssignmentSerializer, 404: ErrorSerializer},
        description="Observing the assignment is not a heartbeat: only polls are.",
    )
    def get(self, request: Request, group_id: str, member_id: str) -> Response:
        member = _member(request, group_id, member_id)
        return Response({
            "member_id": member.member_id,
            "kafka_member_id": member.kafka_member_id(),
            "assignment": member.assignment(),
        })
