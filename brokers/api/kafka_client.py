"""A tenant's view of the cluster for the web tier: leaders, connections, and produce.

A REST produce request already is a batch, so nothing is gained by handing its records one at a
time to a general-purpose client that batches them again (librdkafka through confluent-kafka
costs a Python call and a delivery callback per record, most of the web tier's time). The
calling thread builds each partition's batches once (produce_batches.py); this module sends
them as Produce requests over kafka_connection.py:

- ``TenantCluster``: a tenant's view of the cluster: leaders from Metadata, cached until an
  answer says they moved, one shared connection per node, and idle connections kept for
  fetches that may wait (kafka_reader.py reads through them).
- ``web_client.WebClient`` runs it on the process's event loop (a thread of its own), so the
  synchronous Django views hand it ready batches and wait for the offsets.

Errors that mean "not appended" (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE,
UNKNOWN_TOPIC_OR_PARTITION, no connection or login before anything was sent) are retried after
a metadata refresh until the request's deadline; nothing else is retried, because without
idempotence a retry could write a record twice. Once any Produce has gone out, a failure
becomes per-record errors, never an exception that would hide what was written.

No Django here: the caller passes addresses and credentials.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from brokers.api.kafka_connection import (
    ConnectionFailed,
    KafkaClientError,
    KafkaConnection,
    remaining,
)
from brokers.api.produce_batches import PartitionBatches, partition_for_key
from brokers.protocol import codec
from brokers.protocol.errors import ErrorCode, error_name

__all__ = (
    "Credentials", "KafkaClientError", "ProduceResult", "TenantCluster", "partition_for_key",
)

PRODUCE_VERSION = 9
METADATA_VERSION = 12

# Errors a Produce answers before appending anything: safe to retry after new metadata.
_NOT_APPENDED = frozenset({
    ErrorCode.not_leader_or_follower,
    ErrorCode.leader_not_available,
    ErrorCode.unknown_topic_or_partition,
})
# Metadata failures worth another try before the deadline (the topic may be brand new; a node
# may be restarting).
_RETRY_METADATA = frozenset({
    "UNKNOWN_TOPIC_OR_PARTITION", "LEADER_NOT_AVAILABLE", "NETWORK_EXCEPTION",
    "BROKER_NOT_AVAILABLE", "REQUEST_TIMED_OUT",
})
_RETRY_BACKOFF_S = 0.1
# A Metadata answer is trusted this long without any error saying a leader moved.
METADATA_MAX_AGE_S = 30.0
# Connections kept idle per node for fetches (each fetch has one to itself while it runs).
IDLE_FETCH_CONNECTIONS_PER_NODE = 8

_metadata = importlib.import_module(codec.request_type(3, METADATA_VERSION).__module__)
_produce = importlib.import_module(codec.request_type(0, PRODUCE_VERSION).__module__)


class ProduceResult(msgspec.Struct, omit_defaults=True):
    """A record's outcome: its partition and offset (None with acks=0), or its error.

    One per record of a request, so a msgspec Struct: made at a dict's cost (half a slotted
    dataclass's), and encoded by msgspec as REST answers it, error and message only when set.
    """

    partition: int | None
    offset: int | None
    error: str | None = None
    message: str | None = None


@dataclass(slots=True)
class Credentials:
    username: str
    password: str


@dataclass(slots=True)
class _Leaders:
    by_partition: dict[int, int]
    fetched_at: float


class TenantCluster:
    """A tenant's leaders and connections; every method runs on the client's event loop."""

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
        self._idle: dict[int, list[KafkaConnection]] = {}

    @property
    def needs_bootstrap(self) -> bool:
        """True until a Metadata answer has named the nodes (or after all of them failed)."""
        return not self._nodes

    async def _connection(
        self, key: int | tuple[str, int], address: tuple[str, int], deadline: float
    ) -> KafkaConnection:
        """The open connection for ``key`` (a node id, or an address before metadata)."""
        connection = self._connections.get(key)
        if connection is not None and not connection.closed:
            return connection
        waiting = self._connecting.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        waiting = self._connecting[key] = asyncio.get_running_loop().create_future()
        try:
            connection = KafkaConnection(*address, self._client_id)
            await connection.open(self._credentials.username, self._credentials.password,
                                  deadline)
        except BaseException as exc:
            waiting.set_exception(exc)
            waiting.exception()  # retrieved: only the waiters care
            raise
        finally:
            del self._connecting[key]
        self._connections[key] = connection
        waiting.set_result(connection)
        return connection

    async def _any_connection(self, deadline: float) -> KafkaConnection:
        for connection in self._connections.values():
            if not connection.closed:
                return connection
        failures = []
        candidates = list(self._nodes.items()) or [(a, a) for a in self.bootstrap]
        random.shuffle(candidates)
        for key, address in candidates:
            try:
                return await self._connection(key, address, deadline)
            except ConnectionFailed as exc:
                failures.append(exc.message)
        # Nothing known answers: the next request starts again from the caller's bootstrap.
        self._nodes = {}
        raise KafkaClientError(
            "BROKER_NOT_AVAILABLE",
            "No broker node could be reached" + (f": {failures[0]}" if failures else "."),
        )

    async def leaders(self, topic: str, deadline: float, refresh: bool = False) -> dict[int, int]:
        """Partition -> leader node id (-1 while a partition has none) of ``topic``."""
        cached = self._leaders.get(topic)
        if cached and not refresh and time.monotonic() - cached.fetched_at < METADATA_MAX_AGE_S:
            return cached.by_partition
        request = _metadata.MetadataRequest(
            topics=(_metadata.MetadataRequestTopic(topic_id=None, name=topic),),
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        )
        connection = await self._any_connection(deadline)
        answer = await connection.request(request, deadline)
        self._nodes = {int(b.node_id): (b.host, int(b.port)) for b in answer.brokers}
        for node_id, address in self._nodes.items():
            # Bootstrap connections were keyed by address; key them by node id from now on.
            known = self._connections.pop(address, None)
            if known is not None and node_id not in self._connections:
                self._connections[node_id] = known
        (described,) = answer.topics
        if described.error_code != ErrorCode.none:
            self._leaders.pop(topic, None)
            name = error_name(described.error_code)
            raise KafkaClientError(name, f"Metadata for '{topic}' answered {name}.")
        by_partition = {int(p.partition_index): int(p.leader_id) for p in described.partitions}
        self._leaders[topic] = _Leaders(by_partition, time.monotonic())
        return by_partition

    def forget_leaders(self, topic: str) -> None:
        """An answer said a leader of ``topic`` moved: ask Metadata again next time."""
        self._leaders.pop(topic, None)

    def _node(self, node_id: int) -> tuple[str, int]:
        address = self._nodes.get(node_id)
        if address is None:
            raise KafkaClientError(
                "LEADER_NOT_AVAILABLE", f"Broker {node_id} is not in the last Metadata answer."
            )
        return address

    async def connection_to(self, node_id: int, deadline: float) -> KafkaConnection:
        """The node's shared connection, for requests the broker answers at once."""
        return await self._connection(node_id, self._node(node_id), deadline)

    async def borrow_connection(self, node_id: int, deadline: float) -> KafkaConnection:
        """A connection to the node for one request at a time; ``give_back`` it after.

        A broker answers a connection's requests in order, so a Fetch that may wait (long
        poll) on the shared connection would hold up every request behind it.
        """
        idle = self._idle.get(node_id)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        connection = KafkaConnection(*self._node(node_id), self._client_id)
        try:
            await connection.open(self._credentials.username, self._credentials.password,
                                  deadline)
        except BaseException:
            connection.close()
            raise
        return connection

    def give_back(self, node_id: int, connection: KafkaConnection) -> None:
        """A borrowed connection with no request in flight, kept for the next fetch."""
        idle = self._idle.setdefault(node_id, [])
        if connection.closed or len(idle) >= IDLE_FETCH_CONNECTIONS_PER_NODE:
            connection.close()
        else:
            idle.append(connection)

    async def produce(
        self, topic: str, shares: Sequence[PartitionBatches], acks: int, deadline: float,
        results: list[ProduceResult | None],
    ) -> None:
        """Send every partition's batches; fill ``results`` at each record's request position.

        Raises KafkaClientError only while nothing has been sent (a refused login, no broker):
        the whole request failed and may be retried. After that every record gets a result.
        """
        waiting = {share.partition: share for share in shares}
        refresh = False
        sent_any = False
        last_error: dict[int, tuple[str, str]] = {}
        while waiting and time.monotonic() < deadline:
            try:
                leaders = await self.leaders(topic, deadline, refresh)
            except KafkaClientError as exc:
                if exc.error not in _RETRY_METADATA and not sent_any:
                    raise
                for partition in waiting:
                    last_error[partition] = (exc.error, exc.message)
                await asyncio.sleep(min(_RETRY_BACKOFF_S, remaining(deadline)))
                refresh = True
                continue
            by_leader: dict[int, list[PartitionBatches]] = {}
            retry: set[int] = set()
            for partition, share in waiting.items():
                leader = leaders.get(partition, -1)
                if leader < 0 or leader not in self._nodes:
                    known = partition in leaders
                    last_error[partition] = (
                        "LEADER_NOT_AVAILABLE" if known else "UNKNOWN_TOPIC_OR_PARTITION",
                        f"Partition {partition} of '{topic}' has no leader now." if known
                        else f"Partition {partition} of '{topic}' is not known to the brokers.",
                    )
                    retry.add(partition)
                    continue
                by_leader.setdefault(leader, []).append(share)
            outcomes = await asyncio.gather(*(
                self._produce_on(leader, self._nodes[leader], topic, group, acks, deadline,
                                 results)
                for leader, group in by_leader.items()
            ), return_exceptions=True)
            for group, outcome in zip(by_leader.values(), outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    if not isinstance(outcome, KafkaClientError):
                        raise outcome
                    # The leader could not be reached or refused the login: nothing was sent.
                    if outcome.error not in _RETRY_METADATA and not sent_any:
                        raise outcome
                    outcome = {share.partition: (outcome.error, outcome.message)
                               for share in group}
                else:
                    sent_any = True
                for partition, error in outcome.items():
                    last_error[partition] = error
                    retry.add(partition)
            waiting = {p: waiting[p] for p in retry}
            if waiting:
                refresh = True
                await asyncio.sleep(min(_RETRY_BACKOFF_S, remaining(deadline)))
        for partition, share in waiting.items():
            error, message = last_error.get(
                partition, ("REQUEST_TIMED_OUT", "Not acknowledged in time.")
            )
            for positions in share.positions:
                for position in positions:
                    if results[position] is None:
                        results[position] = ProduceResult(partition, None, error, message)

    async def _produce_on(
        self, leader: int, address: tuple[str, int], topic: str,
        shares: list[PartitionBatches], acks: int, deadline: float,
        results: list[ProduceResult | None],
    ) -> dict[int, tuple[str, str]]:
        """Produce to one leader; the partitions to retry, with their last error.

        Raises KafkaClientError only if no connection could be had (nothing was sent).
        """
        try:
            connection = await self._connection(leader, address, deadline)
        except ConnectionFailed as exc:
            return {share.partition: (exc.error, exc.message) for share in shares}
        rounds = max(len(share.batches) for share in shares)
        retry: dict[int, tuple[str, str]] = {}
        timeout = datetime.timedelta(seconds=remaining(deadline))
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
                    await connection.send(request)
                except ConnectionFailed as exc:
                    for share in in_round:
                        self._fail_round(share, round_no, exc.error, exc.message, results)
                    continue
                for share in in_round:
                    for position in share.positions[round_no]:
                        results[position] = ProduceResult(share.partition, None)
                continue
            # The broker waits up to `timeout` for acks; allow the answer a second more.
            sends.append((round_no, in_round, connection.request(request, deadline + 1)))
        if not sends:
            return retry
        answers = await asyncio.gather(*(send for _r, _s, send in sends), return_exceptions=True)
        failed: set[int] = set()
        for (round_no, in_round, _send), answer in zip(sends, answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, KafkaClientError):
                    raise answer
                for share in in_round:
                    failed.add(share.partition)
                    self._fail_round(share, round_no, answer.error, answer.message, results)
                continue
            by_partition = {
                int(p.index): p for t in answer.responses for p in t.partition_responses
            }
            for share in in_round:
                answered = by_partition.get(share.partition)
                if answered is None:
                    failed.add(share.partition)
                    self._fail_round(share, round_no, "UNKNOWN_SERVER_ERROR",
                                     "The broker did not answer for this partition.", results)
                elif answered.error_code == ErrorCode.none:
                    base = int(answered.base_offset)
                    for index, position in enumerate(share.positions[round_no]):
                        results[position] = ProduceResult(share.partition, base + index)
                elif answered.error_code in _NOT_APPENDED:
                    # Later rounds of this partition are refused too (same leader, in order).
                    name = error_name(answered.error_code)
                    retry[share.partition] = (name, answered.error_message or name)
                else:
                    failed.add(share.partition)
                    self._fail_round(share, round_no, error_name(answered.error_code),
                                     answered.error_message or "", results,
                                     {int(e.batch_index): e.batch_index_error_message
                                      for e in answered.record_errors})
        if any(isinstance(answer, KafkaClientError) for answer in answers) or retry:
            self._leaders.pop(topic, None)
        for share in shares:
            if share.partition not in retry:
                continue
            if share.partition in failed:
                # A round failed for good: the rounds after it fail with the retry's error.
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
        results: list[ProduceResult | None], record_errors: dict[int, str | None] | None = None,
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
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
