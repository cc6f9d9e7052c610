"""REST records: produce to a topic, read a partition from an offset, a partition's offsets.

Thin views: the body is decoded by produce_decoder (record_format says what is wrong with a bad
one), the records travel over wire (the Kafka protocol to the partition leaders). A tenant sees
only its own topics: another tenant's topic is a 404, exactly as a topic that does not exist.
"""

import time
from dataclasses import dataclass

import msgspec
from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from brokers.api import wire
from brokers.api.long_polls import allowed_wait_ms
from brokers.api.produce_decoder import parse_produce_request
from brokers.api.record_format import (
    InvalidRecords,
    TooManyRecords,
    record_answer,
    record_size,
)
from brokers.api.record_schemas import (
    ErrorSerializer,
    PartitionOffsetsSerializer,
    ProduceRequestSerializer,
    ProduceResponseSerializer,
    ReadQuerySerializer,
    ReadResponseSerializer,
)
from brokers.api.renderers import OrjsonRenderer
from brokers.models import Partition, Topic


def tenant_topic(request: Request, name: str) -> Topic:
    """The calling tenant's topic ``name``; 404 for a missing one and for another tenant's."""
    topic = (
        Topic.objects.select_related("tenant").filter(tenant=request.user.tenant, name=name).first()
    )
    if topic is None:
        raise NotFound(f"Topic '{name}' does not exist.")
    return topic


@dataclass(frozen=True, slots=True)
class ProduceTarget:
    """What producing to a tenant's topic needs to know of it."""

    tenant: str
    topic: str
    partition_count: int
    max_message_bytes: int


# (tenant id, topic name) -> (valid until, target). A produce request then needs no database
# at all (measured: a third more records/s through one web process). Topic changes made in
# this process clear it at once; made elsewhere, they are seen within the cache time.
_produce_targets: dict[tuple[int, str], tuple[float, ProduceTarget]] = {}


@receiver([post_save, post_delete], sender=Topic)
def _forget_produce_targets(**_: object) -> None:
    _produce_targets.clear()


def produce_target(request: Request, name: str) -> ProduceTarget:
    """The calling tenant's topic ``name`` for producing, remembered for
    ``DJAFKA_REST_TOPIC_CACHE_S``; 404 as ``tenant_topic``."""
    key = (request.user.tenant.pk, name)
    cached = _produce_targets.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    topic = tenant_topic(request, name)
    target = ProduceTarget(
        topic.tenant.name, topic.name, topic.partition_count,
        int(topic.effective_configs["max.message.bytes"]),
    )
    if settings.DJAFKA_REST_TOPIC_CACHE_S > 0:
        _produce_targets[key] = (time.monotonic() + settings.DJAFKA_REST_TOPIC_CACHE_S, target)
    return target


_ANSWER = msgspec.json.Encoder()


def wire_error_response(exc: wire.WireError) -> Response:
    body = {"error": exc.error, "detail": exc.message}
    if isinstance(exc, wire.OffsetOutOfRange):
        body["log_start_offset"] = exc.log_start_offset
        body["log_end_offset"] = exc.log_end_offset
    return Response(body, status=exc.status)


def too_large(detail: str) -> Response:
    return Response(
        {"error": "RECORD_LIST_TOO_LARGE", "detail": detail},
        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


# Kafka errors that say nothing about a record itself: when every record of a request failed
# with one of them, the request failed, and its status says why (503, 404, ...).
_REQUEST_WIDE_ERRORS = {
    "REQUEST_TIMED_OUT",
    "NOT_ENOUGH_REPLICAS",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
    "NOT_LEADER_OR_FOLLOWER",
    "LEADER_NOT_AVAILABLE",
    "BROKER_NOT_AVAILABLE",
    "NETWORK_EXCEPTION",
    "UNKNOWN_TOPIC_OR_PARTITION",
    "SASL_AUTHENTICATION_FAILED",
    "TOPIC_AUTHORIZATION_FAILED",
}


class ProduceView(APIView):
    """POST records to a topic, as a Kafka producer would."""

    renderer_classes = [OrjsonRenderer, BrowsableAPIRenderer]

    @extend_schema(
        operation_id="topics_records_produce",
        request=ProduceRequestSerializer,
        responses={
            200: ProduceResponseSerializer,
            400: OpenApiTypes.OBJECT,
            404: ErrorSerializer,
            413: ErrorSerializer,
            503: ErrorSerializer,
        },
        description=(
            "Produce records. Each record without a partition goes where Kafka's Java client "
            "puts it: murmur2 of the key bytes, spread for null keys. The answer lists each "
            "record's partition and offset (null with acks=0), or its own error with Kafka's "
            "error name, in request order. Too many records or bytes answer 413; a record "
            "larger than the topic's max.message.bytes gets the error MESSAGE_TOO_LARGE. A "
            "record has the fields key, value, headers, timestamp and partition; any other "
            "field is a 400 (a misspelt 'partition' would otherwise be ignored)."
        ),
    )
    def post(self, request: Request, name: str) -> Response:
        topic = produce_target(request, name)
        max_bytes = settings.DJAFKA_REST_MAX_REQUEST_BYTES
        max_records = settings.DJAFKA_REST_MAX_RECORDS_PER_REQUEST
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > max_bytes:
            return too_large(f"The request has {declared} bytes; at most {max_bytes} are taken.")
        # Read the raw body (not request.data): produce_decoder decodes it straight into
        # records, and Django's DATA_UPLOAD_MAX_MEMORY_SIZE is not the limit here.
        raw = request._request.read(max_bytes + 1)
        if len(raw) > max_bytes:
            return too_large(f"The request has more than {max_bytes} bytes.")
        try:
            records, acks = parse_produce_request(raw, topic.partition_count, max_records)
        except TooManyRecords as exc:
            return too_large(str(exc))
        except InvalidRecords as exc:
            return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)

        max_message_bytes = topic.max_message_bytes
        answers: list[dict | None] = [None] * len(records)
        if len(raw) + record_size(wire.OutgoingRecord(None, None)) <= max_message_bytes:
            # No record is larger than the body it came in (JSON and base64 only shrink on the
            # way to bytes): none can exceed max.message.bytes, so skip the per-record check.
            to_send, positions = records, range(len(records))
        else:
            to_send, positions = [], []
            for index, record in enumerate(records):
                if record_size(record) > max_message_bytes:
                    answers[index] = {
                        "partition": record.partition, "offset": None,
                        "error": "MESSAGE_TOO_LARGE",
                        "message": f"The record is larger than the topic's max.message.bytes "
                        f"({max_message_bytes}).",
                    }
                else:
                    to_send.append(record)
                    positions.append(index)
            if not to_send and len(records) == 1:
                return Response(
                    {"error": "MESSAGE_TOO_LARGE", "detail": answers[0]["message"]},
                    status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                )
        try:
            results = wire.produce(
                topic.tenant, topic.topic, to_send, acks,
                partition_count=topic.partition_count, max_message_bytes=max_message_bytes,
            )
        except wire.WireError as exc:
            return wire_error_response(exc)
        errors = {r.error for r in results if r.error is not None}
        if not errors and len(to_send) == len(records):
            # The common answer, every record appended: the results encoded as they are.
            return HttpResponse(_ANSWER.encode({"records": results}),
                                content_type="application/json")
        if results and len(to_send) == len(records) and errors <= _REQUEST_WIDE_ERRORS and all(
            r.error for r in results
        ):
            error = min(errors)  # one name, the same in every process, when they differ
            if error == "UNKNOWN_TOPIC_OR_PARTITION":
                _produce_targets.pop((request.user.tenant.pk, name), None)
            message = next(r.message for r in results if r.error == error)
            return wire_error_response(wire.WireError(error, f"Producing to '{name}': {message}"))
        for index, result in zip(positions, results, strict=True):
            if result.error is None:
                answers[index] = {"partition": result.partition, "offset": result.offset}
            else:
                answers[index] = {
                    "partition": result.partition, "offset": None,
                    "error": result.error, "message": result.message,
                }
        return Response({"records": answers})


class PartitionRecordsView(APIView):
    """GET records of one partition from an offset, the start, the end, or a time."""

    renderer_classes = [OrjsonRenderer, BrowsableAPIRenderer]

    @extend_schema(
        operation_id="topics_partitions_records_read",
        parameters=[
            ReadQuerySerializer,
            OpenApiParameter("from", str, enum=["earliest", "latest"], required=False),
            OpenApiParameter("partition", int, OpenApiParameter.PATH),
        ],
        responses={
            200: ReadResponseSerializer,
            400: OpenApiTypes.OBJECT,
            404: ErrorSerializer,
            416: ErrorSerializer,
            503: ErrorSerializer,
        },
        description=(
            "Read records of a partition. Give exactly one start: offset=N, from=earliest|"
            "latest, or timestamp=ms (the first record at or after it; the log end if none). "
            "An offset outside [log_start_offset, log_end_offset] answers 416 with the valid "
            "range. At the log end, timeout_ms waits for a record (long poll). Keys and values "
            "are answered in key_format/value_format; a record whose key or value does not fit "
            "the asked format carries key_format/value_format with the format used instead "
            "(string when the bytes are UTF-8, else base64)."
        ),
    )
    def get(self, request: Request, name: str, partition: str) -> Response:
        topic = tenant_topic(request, name)
        partition = int(partition)  # the route takes digits only
        if partition >= topic.partition_count:
            raise NotFound(
                f"Partition {partition} of '{name}' does not exist; it has "
                f"{topic.partition_count}."
            )
        query = ReadQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        start = wire.StartAt(
            offset=q.get("offset"), position=q.get("from"), timestamp_ms=q.get("timestamp")
        )
        try:
            with allowed_wait_ms(q["timeout_ms"]) as wait_ms:
                fetched = wire.fetch(
                    topic.tenant.name, topic.name, partition, start,
                    q["max_records"], q["max_bytes"], wait_ms,
                )
        except wire.WireError as exc:
            return wire_error_response(exc)
        key_format, value_format = q["key_format"], q["value_format"]
        return Response({
            "topic": topic.name,
            "partition": partition,
            "records": [record_answer(r, key_format, value_format) for r in fetched.records],
            "next_offset": fetched.next_offset,
            "log_start_offset": fetched.log_start_offset,
            "log_end_offset": fetched.log_end_offset,
        })


class TopicPartitionsView(APIView):
    """GET a topic's partitions: leader, replicas, ISR, and earliest and latest offsets."""

    @extend_schema(
        operation_id="topics_partitions_list",
        responses={200: PartitionOffsetsSerializer(many=True), 404: ErrorSerializer,
                   503: ErrorSerializer},
    )
    def get(self, request: Request, name: str) -> Response:
        topic = tenant_topic(request, name)
        partitions = list(
            Partition.objects.filter(topic=topic).prefetch_related("replicas").order_by("index")
        )
        try:
            offsets = wire.watermarks(topic.tenant.name, topic.name, [p.index for p in partitions])
        except wire.WireError as exc:
            return wire_error_response(exc)
        return Response([
            {
                "partition": p.index,
                "leader": p.leader_id,
                "leader_epoch": p.leader_epoch,
                "replicas": p.replica_ids,
                "isr": p.isr,
                "earliest_offset": offsets[p.index][0],
                "latest_offset": offsets[p.index][1],
            }
            for p in partitions
        ])
