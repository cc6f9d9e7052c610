"""The web tier's Kafka producer: a REST request's records as one batch per partition, on the wire.

A REST produce request already is a batch, so nothing is gained by handing its records one at a
time to a general-purpose client that batches them again (librdkafka through confluent-kafka
costs a Python call and a delivery callback per record, most of the web tier's time). Here the
calling thread builds each partition's RecordBatch v2 in one pass (aiokafka's Cython builder)
and this module sends them as Produce requests to the partition leaders:

- ``KafkaConnection``: one asyncio connection to a broker node, logged in with SASL/PLAIN,
  requests pipelined by correlation id (a node answers a connection's requests in order).
- ``TenantCluster``: a tenant's view of the cluster: leaders from Metadata, cached until an
  answer says they moved, and one connection per node.
- ``WebProducer``: the process's producer. Its event loop runs on a thread of its own, so the
  synchronous Django views hand it ready batches and wait for the offsets.

Kafka's rules kept: Produce v3+ carries one batch per partition (a larger partition share goes
out as several requests, in order, on one connection); a batch never exceeds the topic's
max.message.bytes; records without a partition go where Java's client puts them (murmur2 of the
key, the sticky partition per request for null keys). Errors that mean "not appended"
(NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION, a connection that
failed before sending) are retried after a metadata refresh until the timeout; no other error
is retried, because without idempotence a retry could write a record twice.

No Django here: the caller passes addresses and credentials, so it is tested against real
broker nodes without a site.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import itertools
import random
import struct
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from murmurhash2 import murmurhash2

from brokers.protocol import codec
from brokers.protocol.errors import ErrorCode, error_name
from brokers.protocol.headers import skip_tagged_fields

PRODUCE_VERSION = 9
METADATA_VERSION = 12
SASL_HANDSHAKE_VERSION = 1
SASL_AUTHENTICATE_VERSION = 2

# Kafka's Java client: murmur2 with this seed, the sign bit cleared, modulo the partitions.
_MURMUR2_SEED = 0x9747B28C
_SIZE = struct.Struct(">i")
_HEADER = struct.Struct(">hhih")
# Errors a Produce answers before appending anything: safe to retry after new metadata.
_NOT_APPENDED = frozenset({
    ErrorCode.not_leader_or_follower,
    ErrorCode.leader_not_available,
    ErrorCode.unknown_topic_or_partition,
})
_RETRY_BACKOFF_S = 0.1
# A Metadata answer is trusted this long without any error saying a leader moved.
METADATA_MAX_AGE_S = 30.0

_metadata = importlib.import_module(codec.request_type(3, METADATA_VERSION).__module__)
_produce = importlib.import_module(codec.request_type(0, PRODUCE_VERSION).__module__)


def partition_for_key(key: bytes, partition_count: int) -> int:
    """Kafka's default partition of a keyed record (Java's ``Utils.toPositive(murmur2(key))``)."""
    return (murmurhash2(key, _MURMUR2_SEED) & 0x7FFFFFFF) % partition_count


class KafkaClientError(Exception):
    """A failure of a whole request: Kafka's error name and a message for a person."""

    def __init__(self, error: str, message: str):
        super().__init__(message)
        self.error = error
        self.message = message


class ConnectionFailed(KafkaClientError):
    """The connection broke or could not be made; ``sent`` says if the request had gone out."""

    def __init__(self, message: str, sent: bool):
        super().__init__("NETWORK_EXCEPTION", message)
        self.sent = sent


# --- One connection ---------------------------------------------------------------------------


class KafkaConnection:
    """A client connection to one broker node: SASL/PLAIN login, then pipelined requests."""

    def __init__(self, host: str, port: int, client_id: str):
        self.host = host
        self.port = port
        self._client_id = client_id.encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._correlation = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future, type[Any]]] = {}
        self._read_task: asyncio.Task | None = None
        self.closed = False

    async def open(self, username: str, password: str, timeout_s: float) -> None:
        """Connect and log in; raises ConnectionFailed or KafkaClientError (bad login)."""
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), timeout_s
            )
        except (OSError, TimeoutError) as exc:
            self.closed = True
            raise ConnectionFailed(
                f"Cannot connect to broker {self.host}:{self.port}: {exc or 'timed out'}",
                sent=False,
            ) from exc
        self._read_task = asyncio.get_running_loop().create_task(self._read_answers())
        handshake = codec.request_type(17, SASL_HANDSHAKE_VERSION)(mechanism="PLAIN")
        answer = await self.request(handshake, timeout_s)
        if answer.error_code != ErrorCode.none:
            self.close()
            raise KafkaClientError(error_name(answer.error_code), "SASL/PLAIN is not enabled.")
        token = b"\0" + username.encode() + b"\0" + password.encode()
        authenticate = codec.request_type(36, SASL_AUTHENTICATE_VERSION)(auth_bytes=token)
        answer = await self.request(authenticate, timeout_s)
        if answer.error_code != ErrorCode.none:
            self.close()
            raise KafkaClientError(
                error_name(answer.error_code),
                f"The broker refused the web tier's login: {answer.error_message}",
            )

    def _frame(self, entity: Any) -> tuple[int, bytes]:
        api_key, version = int(entity.__api_key__), int(entity.__version__)
        correlation_id = next(self._correlation)
        header = _HEADER.pack(api_key, version, correlation_id, len(self._client_id))
        header += self._client_id
        if codec.is_flexible_request(api_key, version):
            header += b"\0"  # header v2: an empty tagged-field section
        body = codec.encode(entity)
        return correlation_id, _SIZE.pack(len(header) + len(body)) + header + body

    async def request(self, entity: Any, timeout_s: float) -> Any:
        """Send a request and wait for its answer (decoded)."""
        if self.closed or self._writer is None:
            raise ConnectionFailed(f"Connection to {self.host}:{self.port} is closed.", False)
        correlation_id, frame = self._frame(entity)
        answer = asyncio.get_running_loop().create_future()
        response_cls = codec.response_type(int(entity.__api_key__), int(entity.__version__))
        self._pending[correlation_id] = (answer, response_cls)
        self._writer.write(frame)
        try:
            return await asyncio.wait_for(answer, timeout_s)
        except TimeoutError:
            self._pending.pop(correlation_id, None)
            # The answer may still come and would be read as another's: start afresh.
            self.close()
            raise KafkaClientError(
                "REQUEST_TIMED_OUT",
                f"Broker {self.host}:{self.port} did not answer within {timeout_s:g} s.",
            ) from None

    def send(self, entity: Any) -> None:
        """Send a request that gets no answer (Produce with acks=0)."""
        if self.closed or self._writer is None:
            raise ConnectionFailed(f"Connection to {self.host}:{self.port} is closed.", False)
        self._writer.write(self._frame(entity)[1])

    async def _read_answers(self) -> None:
        reader = self._reader
        assert reader is not None
        error: BaseException = ConnectionFailed(
            f"Broker {self.host}:{self.port} closed the connection.", sent=True
        )
        try:
            while True:
                size = _SIZE.unpack(await reader.readexactly(4))[0]
                frame = await reader.readexactly(size)
                correlation_id = _SIZE.unpack_from(frame, 0)[0]
                pending = self._pending.pop(correlation_id, None)
                if pending is None:
                    continue
                future, response_cls = pending
                offset = 4
                if codec.uses_flexible_response_header(response_cls):
                    offset = skip_tagged_fields(frame, offset)
                if not future.done():
                    try:
                        value = codec.decode_response(
                            int(response_cls.__api_key__), int(response_cls.__version__),
                            memoryview(frame)[offset:].tobytes(),
                        )
                    except Exception as exc:  # a malformed answer fails its request only
                        future.set_exception(KafkaClientError(
                            "CORRUPT_MESSAGE", f"Unreadable answer from the broker: {exc}"
                        ))
                    else:
                        future.set_result(value)
        except (asyncio.IncompleteReadError, OSError) as exc:
            error = ConnectionFailed(
                f"Connection to broker {self.host}:{self.port} failed: {exc}", sent=True
            )
        except asyncio.CancelledError:
            pass
        finally:
            self._fail_pending(error)

    def _fail_pending(self, error: BaseException) -> None:
        self.closed = True
        pending, self._pending = self._pending, {}
        for future, _cls in pending.values():
            if not future.done():
                future.set_exception(error)
        if self._writer is not None:
            self._writer.close()

    def close(self) -> None:
        self.closed = True
        if self._read_task is not None:
            self._read_task.cancel()
        elif self._writer is not None:
            self._writer.close()


# --- A tenant's view of the cluster -----------------------------------------------------------


@dataclass(slots=True)
class _Leaders:
    by_partition: dict[int, int]
    fetched_at: float


@dataclass(slots=True)
class PartitionBatches:
    """One partition's records as built batches, and where each record of the request is."""

    partition: int
    batches: list[bytes]
    # For batch i: the request positions of its records, in the batch's order.
    positions: list[list[int]]


@dataclass(slots=True)
class ProduceResult:
    partition: int | None = None
    offset: int | None = None
    error: str | None = None
    message: str | None = None


@dataclass(slots=True)
class Credentials:
    username: str
    password: str


class TenantCluster:
    """A tenant's leaders and connections; every method runs on the producer's event loop."""

    def __init__(self, tenant: str, credentials: Credentials, client_id: str):
        self.tenant = tenant
        # Where to ask for metadata before any answer named the nodes (set by the caller).
        self.bootstrap: list[tuple[str, int]] = []
        self._credentials = credentials
        self._client_id = client_id
        self._nodes: dict[int, tuple[str, int]] = {}
        self._leaders: dict[str, _Leaders] = {}
        self._connections: dict[int | tuple[str, int], KafkaConnection] = {}
        self._connecting: dict[int | tuple[str, int], asyncio.Future] = {}

    async def _connection(self, key: int | tuple[str, int], timeout_s: float) -> KafkaConnection:
        connection = self._connections.get(key)
        if connection is not None and not connection.closed:
            return connection
        waiting = self._connecting.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        host, port = key if isinstance(key, tuple) else self._nodes[key]
        waiting = self._connecting[key] = asyncio.get_running_loop().create_future()
        try:
            connection = KafkaConnection(host, port, self._client_id)
            await connection.open(self._credentials.username, self._credentials.password,
                                  timeout_s)
        except BaseException as exc:
            waiting.set_exception(exc)
            waiting.exception()  # retrieved: only the waiters care
            raise
        finally:
            del self._connecting[key]
        self._connections[key] = connection
        waiting.set_result(connection)
        return connection

    async def _any_connection(self, timeout_s: float) -> KafkaConnection:
        for connection in self._connections.values():
            if not connection.closed:
                return connection
        failures = []
        addresses = list(self._nodes.items()) or [(a, a) for a in self.bootstrap]
        random.shuffle(addresses)
        for key, _address in addresses:
            try:
                return await self._connection(key, timeout_s)
            except ConnectionFailed as exc:
                failures.append(exc.message)
        # Nothing known answers: the next request starts again from the caller's bootstrap.
        self._nodes.clear()
        raise KafkaClientError(
            "BROKER_NOT_AVAILABLE",
            "No broker node could be reached" + (f": {failures[0]}" if failures else "."),
        )

    @property
    def needs_bootstrap(self) -> bool:
        """True until a Metadata answer has named the nodes (or after all of them failed)."""
        return not self._nodes

    async def leaders(self, topic: str, timeout_s: float, refresh: bool = False) -> dict[int, int]:
        """Partition -> leader node id (-1 while a partition has none) of ``topic``."""
        cached = self._leaders.get(topic)
        if cached and not refresh and time.monotonic() - cached.fetched_at < METADATA_MAX_AGE_S:
            return cached.by_partition
        request = _metadata.MetadataRequest(
            topics=(_metadata.MetadataRequestTopic(topic_id=None, name=topic),),
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        )
        connection = await self._any_connection(timeout_s)
        answer = await connection.request(request, timeout_s)
        self._nodes = {int(b.node_id): (b.host, int(b.port)) for b in answer.brokers}
        for node_id, address in self._nodes.items():
            # Bootstrap connections were keyed by address; key them by node id from now on.
            known = self._connections.pop(address, None)
            if known is not None and node_id not in self._connections:
                self._connections[node_id] = known
        (described,) = answer.topics
        if described.error_code != ErrorCode.none:
            self._leaders.pop(topic, None)
            raise KafkaClientError(
                error_name(described.error_code), f"Metadata for '{topic}' answered "
                f"{error_name(described.error_code)}."
            )
        by_partition = {int(p.partition_index): int(p.leader_id) for p in described.partitions}
        self._leaders[topic] = _Leaders(by_partition, time.monotonic())
        return by_partition

    async def produce(
        self, topic: str, shares: Sequence[PartitionBatches], acks: int, timeout_s: float,
        results: list[ProduceResult],
    ) -> None:
        """Send every partition's batches; fill ``results`` at each record's request position."""
        deadline = time.monotonic() + timeout_s
        waiting = {share.partition: share for share in shares}
        refresh = False
        last_error: dict[int, tuple[str, str]] = {}
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                leaders = await self.leaders(topic, remaining, refresh)
            except KafkaClientError as exc:
                if exc.error in ("UNKNOWN_TOPIC_OR_PARTITION", "LEADER_NOT_AVAILABLE",
                                 "NETWORK_EXCEPTION", "BROKER_NOT_AVAILABLE"):
                    for partition in waiting:
                        last_error[partition] = (exc.error, exc.message)
                    await asyncio.sleep(min(_RETRY_BACKOFF_S, max(remaining, 0)))
                    refresh = True
                    continue
                raise
            by_leader: dict[int, list[PartitionBatches]] = {}
            for partition, share in waiting.items():
                leader = leaders.get(partition, -1)
                if leader < 0 or leader not in self._nodes:
                    last_error[partition] = (
                        "LEADER_NOT_AVAILABLE" if partition in leaders
                        else "UNKNOWN_TOPIC_OR_PARTITION",
                        f"Partition {partition} of '{topic}' has no leader now."
                        if partition in leaders
                        else f"Partition {partition} of '{topic}' is not known to the brokers.",
                    )
                    continue
                by_leader.setdefault(leader, []).append(share)
            outcomes = await asyncio.gather(*(
                self._produce_on(leader, topic, group, acks, deadline, results)
                for leader, group in by_leader.items()
            ))
            retry: set[int] = set(waiting) - {
                share.partition for group in by_leader.values() for share in group
            }
            for outcome in outcomes:
                for partition, error in outcome.items():
                    last_error[partition] = error
                    retry.add(partition)
            waiting = {p: waiting[p] for p in retry}
            if waiting:
                refresh = True
                await asyncio.sleep(min(_RETRY_BACKOFF_S, max(deadline - time.monotonic(), 0)))
        for partition, share in waiting.items():
            error, message = last_error.get(
                partition, ("REQUEST_TIMED_OUT", f"Not acknowledged within {timeout_s:g} s.")
            )
            for positions in share.positions:
                for position in positions:
                    results[position] = ProduceResult(partition, None, error, message)

    async def _produce_on(
        self, leader: int, topic: str, shares: list[PartitionBatches], acks: int,
        deadline: float, results: list[ProduceResult],
    ) -> dict[int, tuple[str, str]]:
        """Produce to one leader; the partitions to retry elsewhere, with their last error."""
        try:
            connection = await self._connection(leader, max(deadline - time.monotonic(), 0.001))
        except ConnectionFailed as exc:
            return {share.partition: (exc.error, exc.message) for share in shares}
        rounds = max(len(share.batches) for share in shares)
        retry: dict[int, tuple[str, str]] = {}
        timeout = datetime.timedelta(seconds=max(deadline - time.monotonic(), 0.001))
        sends = []
        for round_no in range(rounds):
            in_round = [share for share in shares if round_no < len(share.batches)]
            request = _produce.ProduceRequest(
                transactional_id=None, acks=acks, timeout=timeout,
                topic_data=(_produce.TopicProduceData(name=topic, partition_data=tuple(
                    _produce.PartitionProduceData(
                        index=share.partition, records=share.batches[round_no])
                    for share in in_round
                )),),
            )
            if acks == 0:
                try:
                    connection.send(request)
                except ConnectionFailed as exc:
                    retry.update({s.partition: (exc.error, exc.message) for s in in_round})
                    continue
                for share in in_round:
                    for position in share.positions[round_no]:
                        results[position] = ProduceResult(share.partition)
                continue
            sends.append((round_no, in_round, connection.request(
                request, max(deadline - time.monotonic(), 0.001) + 1
            )))
        if not sends:
            return retry
        answers = await asyncio.gather(*(send for _r, _s, send in sends), return_exceptions=True)
        failed_partitions: set[int] = set()
        for (round_no, in_round, _send), answer in zip(sends, answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, KafkaClientError):
                    raise answer
                for share in in_round:
                    if isinstance(answer, ConnectionFailed) and not answer.sent:
                        retry[share.partition] = (answer.error, answer.message)
                    else:
                        self._fail_round(share, round_no, answer.error, answer.message, results)
                continue
            by_partition = {
                int(p.index): p for t in answer.responses for p in t.partition_responses
            }
            for share in in_round:
                answered = by_partition.get(share.partition)
                if answered is None:
                    self._fail_round(share, round_no, "UNKNOWN_SERVER_ERROR",
                                     "The broker did not answer for this partition.", results)
                elif answered.error_code == ErrorCode.none:
                    base = int(answered.base_offset)
                    for index, position in enumerate(share.positions[round_no]):
                        results[position] = ProduceResult(share.partition, base + index)
                elif answered.error_code in _NOT_APPENDED and share.partition not in \
                        failed_partitions:
                    # Later rounds of this partition were refused too (same leader, in order).
                    retry[share.partition] = (
                        error_name(answered.error_code),
                        answered.error_message or error_name(answered.error_code),
                    )
                else:
                    failed_partitions.add(share.partition)
                    self._fail_round(share, round_no, error_name(answered.error_code),
                                     answered.error_message or "", results,
                                     {int(e.batch_index): e.batch_index_error_message
                                      for e in answered.record_errors})
        if any(isinstance(answer, KafkaClientError) for answer in answers):
            self._leaders.pop(topic, None)
        for share in shares:
            if share.partition not in retry:
                continue
            if share.partition in failed_partitions:
                # One round failed for good: the rest fail with the error that stopped them.
                error, message = retry.pop(share.partition)
                for round_no, positions in enumerate(share.positions):
                    if results[positions[0]] is None:
                        self._fail_round(share, round_no, error, message, results)
                continue
            # Sent again from the first round not acknowledged: drop the acknowledged ones.
            done = [i for i, positions in enumerate(share.positions)
                    if results[positions[0]] is not None]
            for i in reversed(done):
                del share.batches[i]
                del share.positions[i]
        return retry

    @staticmethod
    def _fail_round(
        share: PartitionBatches, round_no: int, error: str, message: str,
        results: list[ProduceResult], record_errors: dict[int, str | None] | None = None,
    ) -> None:
        for index, position in enumerate(share.positions[round_no]):
            own = (record_errors or {}).get(index)
            if record_errors and own is None:
                text = "The record's batch was rejected because of another record in it."
            else:
                text = own or message or error
            results[position] = ProduceResult(share.partition, None, error, text)

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()


# --- Building the batches ---------------------------------------------------------------------


@dataclass(slots=True)
class _Building:
    builder: Any
    batches: list[bytes] = field(default_factory=list)
    positions: list[list[int]] = field(default_factory=list)
    current: list[int] = field(default_factory=list)


def build_partition_batches(
    records: Sequence[Any], partition_count: int, max_batch_bytes: int,
    sticky_partition: int, now_ms: int | None = None,
) -> list[PartitionBatches]:
    """Records (``key``, ``value``, ``headers``, ``timestamp_ms``, ``partition``) as batches.

    Partitions are chosen as Java's producer chooses them: the record's own, murmur2 of its
    key, or ``sticky_partition`` for every null-key record of the request. Each batch stays
    within ``max_batch_bytes`` (a single larger record goes alone; the caller rejects those).
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    building: dict[int, _Building] = {}

    def new_builder() -> Any:
        return DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, max_batch_bytes)

    for position, record in enumerate(records):
        partition = record.partition
        if partition is None:
            key = record.key
            partition = sticky_partition if key is None else (
                (murmurhash2(key, _MURMUR2_SEED) & 0x7FFFFFFF) % partition_count
            )
        state = building.get(partition)
        if state is None:
            state = building[partition] = _Building(new_builder())
        timestamp = record.timestamp_ms if record.timestamp_ms is not None else now_ms
        headers = record.headers or []
        offset_delta = len(state.current)
        if state.builder.append(offset_delta, timestamp, record.key, record.value,
                                headers) is None:
            state.batches.append(bytes(state.builder.build()))
            state.positions.append(state.current)
            state.builder, state.current = new_builder(), []
            state.builder.append(0, timestamp, record.key, record.value, headers)
        state.current.append(position)
    shares = []
    for partition, state in building.items():
        if state.current:
            state.batches.append(bytes(state.builder.build()))
            state.positions.append(state.current)
        shares.append(PartitionBatches(partition, state.batches, state.positions))
    return shares


# --- The process's producer -------------------------------------------------------------------


class WebProducer:
    """The web process's producer: an event loop on its own thread and a TenantCluster each."""

    def __init__(
        self, bootstrap: Callable[[], list[tuple[str, int]]],
        credentials: Callable[[str], Credentials],
    ):
        # Both are called on the calling thread (they may query the database), never on the
        # loop's.
        self._bootstrap = bootstrap
        self._credentials = credentials
        self._clusters: dict[str, TenantCluster] = {}
        self._lock = threading.Lock()
        self._sticky = itertools.count(random.randrange(1 << 16))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="djafka-web-producer", daemon=True
        )
        self._thread.start()

    def _cluster(self, tenant: str) -> TenantCluster:
        cluster = self._clusters.get(tenant)
        if cluster is None:
            with self._lock:
                cluster = self._clusters.get(tenant)
                if cluster is None:
                    cluster = self._clusters[tenant] = TenantCluster(
                        tenant, self._credentials(tenant), f"djafka-web/{tenant}"
                    )
        return cluster

    def produce(
        self, tenant: str, topic: str, records: Sequence[Any], partition_count: int,
        acks: int, max_batch_bytes: int, timeout_s: float,
    ) -> list[ProduceResult]:
        """Produce ``records`` as ``tenant``; each one's partition and offset, or its error.

        Called from any thread; builds the batches on the calling thread and waits for the
        leaders' answers (acks 0, 1 or -1).
        """
        if not records:
            return []
        shares = build_partition_batches(
            records, partition_count, max_batch_bytes, next(self._sticky) % partition_count
        )
        results: list[Any] = [None] * len(records)
        cluster = self._cluster(tenant)
        bootstrap = self._bootstrap() if cluster.needs_bootstrap else None

        async def send() -> None:
            if bootstrap is not None:
                cluster.bootstrap = bootstrap
            await cluster.produce(topic, shares, acks, timeout_s, results)

        future: Future = asyncio.run_coroutine_threadsafe(send(), self._loop)
        future.result(timeout_s + 5)
        return results

    def forget(self, tenant: str) -> None:
        """Drop a tenant's connections (its credentials changed, or it was deleted)."""
        with self._lock:
            cluster = self._clusters.pop(tenant, None)
        if cluster is not None:
            self._loop.call_soon_threadsafe(cluster.close)

    def close(self) -> None:
        """Close every connection and stop the loop's thread."""

        async def shut_down() -> None:
            for cluster in self._clusters.values():
                cluster.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(shut_down(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
