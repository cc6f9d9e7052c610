"""The web tier's access to broker nodes over the Kafka protocol, as a tenant's Kafka client.

Record bytes go from the web process to the partition leaders over the same wire protocol every
Kafka client speaks (never through Celery or the database). Producing and reading go through
our own client (web_client.py): a REST request is already a batch, so its records become one
RecordBatch per partition on the calling thread and go to the leaders as Produce requests,
partitioned with murmur2 as Java's client does (produce_batches.py, kafka_producer.py); a
read is a Fetch from the leader, with long poll, and ListOffsets where a start is not an
offset (kafka_reader.py).
Live tails and group members stay librdkafka Consumers (``live_consumer``, ``client_config``).

The web tier logs in with SASL/PLAIN as ``internal_credentials(tenant)``: it never holds a
tenant's API key secret, and the broker nodes scope that login to the tenant's topics.
"""

import logging
import threading
from collections.abc import Mapping, Sequence

from channels.db import DatabaseSyncToAsync
from confluent_kafka import Consumer, KafkaError, KafkaException
from django.conf import settings

from brokers.api import kafka_client, kafka_producer, kafka_reader, produce_batches
from brokers.api.web_client import WebClient
from brokers.models import Broker
from djafka.internal_auth import internal_credentials

_librdkafka_log = logging.getLogger("brokers.api.wire.librdkafka")

# ListOffsets' special timestamps (Kafka protocol): the log start and the log end offsets.
EARLIEST_TIMESTAMP = kafka_reader.EARLIEST_TIMESTAMP
LATEST_TIMESTAMP = kafka_reader.LATEST_TIMESTAMP

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


OutgoingRecord = produce_batches.OutgoingRecord
ProduceResult = kafka_producer.ProduceResult


def _bootstrap_addresses() -> list[tuple[str, int]]:
    addresses = []
    for address in bootstrap_servers().split(","):
        host, _, port = address.strip().rpartition(":")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def _credentials(tenant: str) -> kafka_client.Credentials:
    return kafka_client.Credentials(*internal_credentials(tenant))


_client: WebClient | None = None
_client_lock = threading.Lock()


def web_client() -> WebClient:
    """The process's Kafka client (made on first use): see brokers/api/web_client.py."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = WebClient(_bootstrap_addresses, _credentials)
    return _client


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
        return web_client().produce(
            tenant, topic, records, partition_count, _ACKS[acks], max_message_bytes, timeout_s
        )
    except kafka_client.KafkaClientError as exc:
        raise WireError(exc.error, exc.message) from exc
    except TimeoutError as exc:
        raise WireError(
            "REQUEST_TIMED_OUT", f"The records were not acknowledged within {timeout_s:g} s."
        ) from exc


# --- Read ------------------------------------------------------------------------------------

FetchedRecord = kafka_reader.FetchedRecord
FetchResult = kafka_reader.FetchResult
StartAt = kafka_reader.StartAt


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


def _wire_error(exc: kafka_client.KafkaClientError) -> WireError:
    if isinstance(exc, kafka_reader.OffsetOutOfRangeError):
        return OffsetOutOfRange(exc.offset, exc.log_start_offset, exc.log_end_offset)
    return WireError(exc.error, exc.message)


def _timeout_s() -> float:
    return settings.DJAFKA_REST_METADATA_TIMEOUT_MS / 1000


def list_offsets(
    tenant: str,
    topic_partitions: Mapping[str, Sequence[int]],
    timestamp: int,
    timeout_s: float | None = None,
) -> dict[tuple[str, int], int]:
    """Offsets at ``timestamp`` (EARLIEST_TIMESTAMP, LATEST_TIMESTAMP or ms) by topic-partition.

    A partition with no record at or after a real timestamp answers -1, as Kafka's does.
    """
    if not any(topic_partitions.values()):
        return {}
    try:
        return web_client().list_offsets(
            tenant, topic_partitions, timestamp, timeout_s or _timeout_s()
        )
    except kafka_client.KafkaClientError as exc:
        raise _wire_error(exc) from exc


def watermarks(tenant: str, topic: str, partitions: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(log start offset, log end offset) of each partition."""
    if not partitions:
        return {}
    try:
        return web_client().watermarks(tenant, topic, partitions, _timeout_s())
    except kafka_client.KafkaClientError as exc:
        raise _wire_error(exc) from exc


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
    try:
        return web_client().fetch(
            tenant, topic, partition, start, max_records, max_bytes, timeout_ms / 1000,
            _timeout_s(),
        )
    except kafka_client.KafkaClientError as exc:
        raise _wire_error(exc) from exc


async def fetch_async(
    tenant: str,
    topic: str,
    partition: int,
    start: StartAt,
    max_records: int,
    max_bytes: int,
    timeout_ms: int,
) -> FetchResult:
    """``fetch`` for an event loop (websocket consumers): awaited, holding no thread."""
    client = web_client()
    if client.needs_bootstrap(tenant):
        # The bootstrap addresses may come from the database: looked up off the event loop.
        await DatabaseSyncToAsync(client.bootstrap, thread_sensitive=False)(tenant)
    try:
        return await client.fetch_async(
            tenant, topic, partition, start, max_records, max_bytes, timeout_ms / 1000,
            _timeout_s(),
        )
    except kafka_client.KafkaClientError as exc:
        raise _wire_error(exc) from exc


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
