"""The web tier's producer: a REST request's batches sent as Produce requests to the leaders.

A REST produce request already is a batch, so nothing is gained by handing its records one at a
time to a general-purpose client that batches them again (librdkafka through confluent-kafka
costs a Python call and a delivery callback per record, most of the web tier's time). The
calling thread builds each partition's batches once (produce_batches.py); ``produce`` sends
them through a TenantCluster (kafka_client.py: leaders and connections), on the web client's
event loop (web_client.py).

Errors that mean "not appended" (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE,
UNKNOWN_TOPIC_OR_PARTITION, no connection or login before anything was sent) are retried after
a metadata refresh until the request's deadline; nothing else is retried, because without
idempotence a retry could write a record twice. Once any Produce has gone out, a failure
becomes per-record errors, never an exception that would hide what was written.

No Django here.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import time
from collections.abc import Sequence

import msgspec

from brokers.api.kafka_client import TenantCluster
from brokers.api.kafka_connection import ConnectionFailed, KafkaClientError, remaining
from brokers.api.produce_batches import PartitionBatches
from brokers.protocol import codec
from brokers.protocol.errors import ErrorCode, error_name

__all__ = ("ProduceResult", "produce")

PRODUCE_VERSION = 9

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


async def produce(
    cluster: TenantCluster, topic: str, shares: Sequence[PartitionBatches], acks: int,
    deadline: float, results: list[ProduceResult | None],
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
            leaders = await cluster.leaders(topic, deadline, refresh)
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
            if leader < 0 or leader not in cluster.nodes:
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
            _produce_on(cluster, leader, topic, group, acks, deadline, results)
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
    cluster: TenantCluster, leader: int, topic: str,
    shares: list[PartitionBatches], acks: int, deadline: float,
    results: list[ProduceResult | None],
) -> dict[int, tuple[str, str]]:
    """Produce to one leader; the partitions to retry, with their last error.

    Raises KafkaClientError only if no connection could be had (nothing was sent).
    """
    try:
        connection = await cluster.connection_to(leader, deadline)
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
                    _fail_round(share, round_no, exc.error, exc.message, results)
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
                _fail_round(share, round_no, answer.error, answer.message, results)
            continue
        by_partition = {
            int(p.index): p for t in answer.responses for p in t.partition_responses
        }
        for share in in_round:
            answered = by_partition.get(share.partition)
            if answered is None:
                failed.add(share.partition)
                _fail_round(share, round_no, "UNKNOWN_SERVER_ERROR",
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
                _fail_round(share, round_no, error_name(answered.error_code),
                                 answered.error_message or "", results,
                                 {int(e.batch_index): e.batch_index_error_message
                                  for e in answered.record_errors})
    if any(isinstance(answer, KafkaClientError) for answer in answers) or retry:
        cluster.forget_leaders(topic)
    for share in shares:
        if share.partition not in retry:
            continue
        if share.partition in failed:
            # A round failed for good: the rounds after it fail with the retry's error.
            error, message = retry.pop(share.partition)
            for round_no, positions in enumerate(share.positions):
                if results[positions[0]] is None:
                    _fail_round(share, round_no, error, message, results)
            continue
        # Sent again from the first round not acknowledged: drop the acknowledged ones.
        done = [i for i, positions in enumerate(share.positions)
                if results[positions[0]] is not None]
        for i in reversed(done):
            del share.batches[i]
            del share.positions[i]
    return retry

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
