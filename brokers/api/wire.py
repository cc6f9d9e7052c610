"""The web tier's access to broker nodes over the Kafka protocol, as a tenant's Kafka client.

Record bytes go from the web process to the partition leaders over the same wire protocol every
Kafka client speaks (never through Celery or the database). Producing goes through our own
client (kafka_client.py): a REST request is already a batch, so its records become one
RecordBatch per partition on the calling thread and go to the leaders as Produce requests,
partitioned with murmur2 as Java's client does. Reading is librdkafka through confluent-kafka:
its Consumer, assigned and positioned per request, gives fetch with long poll, ListOffsets and
offsets-for-times.

The web tier logs in with SASL/PLAIN as ``internal_credentials(tenant)``: it never holds a
tenant's API key secret, and the broker nodes scope that login to the tenant's topics.
"""

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from django.conf import settings

from brokers.api import kafka_client
from brokers.models import Broker
from djafka.internal_auth import internal_credentials

_librdkafka_log = logging.getLogger("brokers.api.wire.librdkafka")

# ListOffsets' special timestamps (Kafka protocol): the log start and the log end offsets.
EARLIEST_TIMESTAMP = -2
LATEST_TIMESTAMP = -1

# librdkafka's names where Kafka's differ; a REST client sees Kafka's vocabulary.
_KAFKA_NAME = {
    "MSG_SIZE_TOO_LARGE": "MESSAGE_TOO_LARGE",
    "_MSG_TIMED_OUT": "REQUEST_TIMED_OUT",
    "_TIMED_OUT": "REQUEST_TIMED_OUT",
    "_UNKNOWN_PARTITION": "UNKNOWN_TOPIC_OR_PARTITION",
    "_UNKNOWN_TOPIC": "UNKNOWN_TOPIC_OR_PARTITION",
    "UNKNOWN_TOPIC_OR_PART": "UNKNOWN_TOPIC_OR_PARTITION",
    "_ALL_BROKERS_DOWN": "BROKER_NOT_AVAILABLE",
    "_TRANSPORT": "NETWORK_EXCEPTION",
    "_AUTHENTICATION": "SASL_AUTHENTICATION_FAILED",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND": "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
    "_QUEUE_FULL": "THROTTLING_QUOTA_EXCEEDED",
}
# The HTTP status a whole request gets when a Kafka error stops it (anything else: 502).
_HTTP_STATUS = {
    "UNKNOWN_TOPIC_OR_PARTITION": 404,
    "MESSAGE_TOO_LARGE": 413,
    "RECORD_LIST_TOO_LARGE": 413,
    "OFFSET_OUT_OF_RANGE": 416,
    "INVALID_RECORD": 400,
    "INVALID_TIMESTAMP": 400,
    "CORRUPT_MESSAGE": 400,
    "TOPIC_AUTHORIZATION_FAILED": 403,
    "SASL_AUTHENTICATION_FAILED": 503,
    "REQUEST_TIMED_OUT": 503,
    "NOT_ENOUGH_REPLICAS": 503,
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND": 503,
    "NOT_LEADER_OR_FOLLOWER": 503,
    "LEADER_NOT_AVAILABLE": 503,
    "BROKER_NOT_AVAILABLE": 503,
    "NETWORK_EXCEPTION": 503,
    "THROTTLING_QUOTA_EXCEEDED": 429,
    "POLICY_VIOLATION": 403,
}


def kafka_error_name(error: KafkaError) -> str:
    """Kafka's name of an error reported by librdkafka."""
    name = error.name()
    return _KAFKA_NAME.get(name, name.lstrip("_"))


def http_status_for(error_name: str) -> int:
    return _HTTP_STATUS.get(error_name, 502)


class WireError(Exception):
    """A Kafka error that stops a whole REST request: its Kafka name, a message, an HTTP status."""

    def __init__(self, error: str, message: str, status: int | None = None):
        super().__init__(message)
        self.error = error
        self.message = message
        self.status = status or http_status_for(error)

    @classmethod
    def from_kafka(cls, exc: KafkaException | KafkaError, doing: str) -> "WireError":
        error = exc.args[0] if isinstance(exc, KafkaException) else exc
        if not isinstance(error, KafkaError):
            return cls("UNKNOWN_SERVER_ERROR", f"{doing}: {error}")
        name = kafka_error_name(error)
        return cls(name, f"{doing}: {error.str()}")


def bootstrap_servers() -> str:
    """``DJAFKA_KAFKA_BOOTSTRAP`` if set, else the advertised addresses of the live brokers."""
    if settings.DJAFKA_KAFKA_BOOTSTRAP:
        return settings.DJAFKA_KAFKA_BOOTSTRAP
    alive = Broker.objects.alive().values_list("host", "port")
    addresses = [f"{host}:{port}" for host, port in alive]
    if not addresses:
        raise WireError("BROKER_NOT_AVAILABLE", "No broker node is alive.", status=503)
    return ",".join(addresses)


def client_config(tenant: str) -> dict:
    """librdkafka settings shared by the web tier's clients acting for ``tenant``."""
    username, password = internal_credentials(tenant)
    return {
        "bootstrap.servers": bootstrap_servers(),
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": username,
        "sasl.password": password,
        "client.id": f"djafka-web/{tenant}",
        # librdkafka logs through Python logging (not straight to stderr), where the site's
        # logging config decides; failures reach REST clients per request anyway.
        "logger": _librdkafka_log,
    }


# --- Produce ---------------------------------------------------------------------------------


@dataclass(slots=True)
class OutgoingRecord:
    """A record to produce: bytes ready for the wire; ``partition`` None lets murmur2 choose."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] | None = None
    timestamp_ms: int | None = None
    partition: int | None = None


ProduceResult = kafka_client.ProduceResult


def _bootstrap_addresses() -> list[tuple[str, int]]:
    addresses = []
    for address in bootstrap_servers().split(","):
        host, _, port = address.strip().rpartition(":")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def _credentials(tenant: str) -> kafka_client.Credentials:
    return kafka_client.Credentials(*internal_credentials(tenant))


_producer: kafka_client.WebProducer | None = None
_producer_lock = threading.Lock()


def web_producer() -> kafka_client.WebProducer:
    """The process's producer (made on first use): see brokers/api/kafka_client.py."""
    global _producer
    if _producer is None:
        with _producer_lock:
            if _producer is None:
                _producer = kafka_client.WebProducer(_bootstrap_addresses, _credentials)
    return _producer


_ACKS = {"0": 0, "1": 1, "all": -1}


def produce(
    tenant: str, topic: str, records: Sequence[OutgoingRecord], acks: str, *,
    partition_count: int, max_message_bytes: int,
) -> list[ProduceResult]:
    """Produce ``records`` to ``topic`` as ``tenant``: each one's partition and offset, or error.

    ``acks`` is "0", "1" or "all"; with "0" offsets are None. Records without a partition go
    where Java's producer puts them (``partition_count`` is the topic's). A batch stays within
    ``max_message_bytes``; the caller rejects single records larger than that.
    """
    timeout_s = settings.DJAFKA_REST_PRODUCE_TIMEOUT_MS / 1000
    try:
        return web_producer().produce(
            tenant, topic, records, partition_count, _ACKS[acks], max_message_bytes, timeout_s
        )
    except kafka_client.KafkaClientError as exc:
        raise WireError(exc.error, exc.message) from exc
    except TimeoutError as exc:
        raise WireError(
            "REQUEST_TIMED_OUT", f"The records were not acknowledged within {timeout_s:g} s."
        ) from exc


# --- Read ------------------------------------------------------------------------------------


@dataclass(slots=True)
class FetchedRecord:
    partition: int
    offset: int
    timestamp_ms: int
    timestamp_type: int  # confluent_kafka.TIMESTAMP_CREATE_TIME or TIMESTAMP_LOG_APPEND_TIME
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] | None


@dataclass(slots=True)
class FetchResult:
    records: list[FetchedRecord]
    next_offset: int
    log_start_offset: int
    log_end_offset: int


class OffsetOutOfRange(WireError):
    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int):
        super().__init__(
            "OFFSET_OUT_OF_RANGE",
            f"Offset {offset} is out of range: this partition has offsets "
            f"{log_start_offset} to {log_end_offset} (the log end offset, where the next "
            "record will go).",
            status=416,
        )
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class _ConsumerPool:
    """Idle Consumers of one tenant; a request takes one, assigns it, and gives it back."""

    def __init__(self, tenant: str):
        self.tenant = tenant
        self._idle: list[Consumer] = []
        self._lock = threading.Lock()

    def take(self) -> Consumer:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return Consumer({
            **client_config(self.tenant),
            # Assign-only: no group membership, no commits; group.id is still required.
            "group.id": "__djafka_rest_reader",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": False,
            "fetch.wait.max.ms": 200,
            "topic.metadata.refresh.interval.ms": 10_000,
        })

    def give_back(self, consumer: Consumer) -> None:
        with self._lock:
            if len(self._idle) < settings.DJAFKA_REST_IDLE_CONSUMERS_PER_TENANT:
                self._idle.append(consumer)
                return
        consumer.close()


_pools: dict[str, _ConsumerPool] = {}
_pools_lock = threading.Lock()


class _Borrowed:
    """A pooled consumer for one request: unassigned and returned on exit, closed on failure."""

    def __init__(self, tenant: str):
        with _pools_lock:
            self.pool = _pools.get(tenant) or _pools.setdefault(tenant, _ConsumerPool(tenant))

    def __enter__(self) -> Consumer:
        self.consumer = self.pool.take()
        return self.consumer

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.consumer.unassign()
        except KafkaException:
            self.consumer.close()
            return
        # librdkafka remembers a topic it was told is unknown until its next metadata refresh:
        # a consumer that asked about a topic before the broker nodes knew it would answer 404
        # for that long after the topic exists. It is closed, not pooled.
        unknown_topic = isinstance(exc, WireError) and exc.error == "UNKNOWN_TOPIC_OR_PARTITION"
        if exc_type is None or (isinstance(exc, WireError) and not unknown_topic):
            self.pool.give_back(self.consumer)
        else:
            self.consumer.close()


def _timeout_s() -> float:
    return settings.DJAFKA_REST_METADATA_TIMEOUT_MS / 1000


def _offsets_at(
    consumer: Consumer,
    topic: str,
    partitions: Iterable[int],
    timestamp: int,
    timeout_s: float | None = None,
) -> dict[int, int]:
    """ListOffsets for ``partitions`` at ``timestamp`` (or EARLIEST/LATEST): offset by partition.

    A partition with no record at or after a real timestamp answers -1, as Kafka's does.
    """
    asked = [TopicPartition(topic, p, timestamp) for p in partitions]
    if not asked:
        return {}
    try:
        answered = consumer.offsets_for_times(asked, timeout=timeout_s or _timeout_s())
    except KafkaException as exc:
        raise WireError.from_kafka(exc, f"Listing offsets of '{topic}'") from exc
    offsets = {}
    for tp in answered:
        if tp.error is not None:
            raise WireError.from_kafka(tp.error, f"Listing offsets of '{topic}-{tp.partition}'")
        offsets[tp.partition] = tp.offset
    return offsets


def list_offsets(
    tenant: str,
    topic_partitions: dict[str, Sequence[int]],
    timestamp: int,
    timeout_s: float | None = None,
) -> dict[tuple[str, int], int]:
    """Offsets at ``timestamp`` (EARLIEST_TIMESTAMP, LATEST_TIMESTAMP or ms) by topic-partition."""
    found: dict[tuple[str, int], int] = {}
    with _Borrowed(tenant) as consumer:
        for topic, partitions in topic_partitions.items():
            at = _offsets_at(consumer, topic, partitions, timestamp, timeout_s)
            for partition, offset in at.items():
                found[topic, partition] = offset
    return found


def watermarks(tenant: str, topic: str, partitions: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(log start offset, log end offset) of each partition."""
    with _Borrowed(tenant) as consumer:
        starts = _offsets_at(consumer, topic, partitions, EARLIEST_TIMESTAMP)
        ends = _offsets_at(consumer, topic, partitions, LATEST_TIMESTAMP)
    return {p: (starts[p], ends[p]) for p in partitions}


@dataclass(slots=True)
class StartAt:
    """Where a read starts: an ``offset``, earliest/latest, or the first at ``timestamp_ms``."""

    offset: int | None = None
    position: str | None = None  # "earliest" | "latest"
    timestamp_ms: int | None = None


def fetch(
    tenant: str,
    topic: str,
    partition: int,
    start: StartAt,
    max_records: int,
    max_bytes: int,
    timeout_ms: int,
) -> FetchResult:
    """Records of one partition from ``start``: at least one if any is there, up to the limits.

    At the log end it waits up to ``timeout_ms`` for a record to arrive (long poll).
    """
    with _Borrowed(tenant) as consumer:
        starts = _offsets_at(consumer, topic, [partition], EARLIEST_TIMESTAMP)
        ends = _offsets_at(consumer, topic, [partition], LATEST_TIMESTAMP)
        log_start, log_end = starts[partition], ends[partition]
        if start.position == "earliest":
            offset = log_start
        elif start.position == "latest":
            offset = log_end
        elif start.timestamp_ms is not None:
            found = _offsets_at(consumer, topic, [partition], start.timestamp_ms)[partition]
            offset = found if found >= 0 else log_end
        else:
            offset = start.offset
            if offset < log_start or offset > log_end:
                raise OffsetOutOfRange(offset, log_start, log_end)
        if offset >= log_end and timeout_ms <= 0:
            return FetchResult([], offset, log_start, log_end)
        consumer.assign([TopicPartition(topic, partition, offset)])
        records = _read(consumer, offset, log_end, max_records, max_bytes, timeout_ms)
        if records:
            log_end = max(log_end, consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )[1], records[-1].offset + 1)
        next_offset = records[-1].offset + 1 if records else offset
        return FetchResult(records, next_offset, log_start, log_end)


def _read(
    consumer: Consumer,
    offset: int,
    log_end: int,
    max_records: int,
    max_bytes: int,
    timeout_ms: int,
) -> list[FetchedRecord]:
    """Messages from an assigned consumer until a limit, the log end, or the wait runs out."""
    # Records known to be there are worth a fetch round trip even when the client does not
    # want to wait; past the log end only the long poll waits.
    first_wait_s = max(timeout_ms / 1000, _timeout_s() if offset < log_end else 0)
    deadline = time.monotonic() + first_wait_s
    records: list[FetchedRecord] = []
    size = 0
    while len(records) < max_records and size < max_bytes:
        remaining_s = deadline - time.monotonic()
        if records:
            # Drain what the last fetch brought; wait briefly only while the log has more.
            reached_end = records[-1].offset + 1 >= log_end
            wait_s = 0 if reached_end else min(0.05, max(remaining_s, 0))
            messages = consumer.consume(max_records - len(records), timeout=wait_s)
            if not messages:
                break
        else:
            # consume() waits for all it asks for; poll() answers with the first record.
            message = consumer.poll(max(remaining_s, 0))
            if message is None:
                break
            messages = [message]
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise WireError.from_kafka(error, "Fetching records")
            key, value = message.key(), message.value()
            size += (len(key) if key else 0) + (len(value) if value else 0)
            timestamp_type, timestamp_ms = message.timestamp()
            records.append(FetchedRecord(
                message.partition(), message.offset(), timestamp_ms, timestamp_type,
                key, value, message.headers(),
            ))
            if size >= max_bytes:
                break
        if records and records[-1].offset + 1 > log_end:
            log_end = records[-1].offset + 1
    return records


# --- Live tails (brokers/live) ---------------------------------------------------------------


def live_consumer(tenant: str) -> Consumer:
    """A Consumer for a web process's live tails of ``tenant``: assigned by hand, no group.

    Its fetches long-poll the leaders (the broker answers as soon as a batch is appended, or
    after ``fetch.wait.max.ms``), so a tail costs one parked request per leader, not a loop.
    """
    return Consumer({
        **client_config(tenant),
        "group.id": "__djafka_live_tail",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 500,
        "fetch.min.bytes": 1,
        "fetch.error.backoff.ms": 50,
        # A tail starts at the log end; if its offset ever falls out of the log, it rejoins
        # there and its subscribers get a skipped notice for the gap.
        "auto.offset.reset": "latest",
        "topic.metadata.refresh.interval.ms": 10_000,
    })


def fetched_record(message: object) -> FetchedRecord:
    """A confluent-kafka message (without error) as a FetchedRecord."""
    timestamp_type, timestamp_ms = message.timestamp()
    return FetchedRecord(
        message.partition(), message.offset(), timestamp_ms, timestamp_type,
        message.key(), message.value(), message.headers(),
    )
