"""Fetch (API key 1): whole batches from the leaders' logs, sent from the segments by sendfile.

Versions 4-18 (fetch_encoder's range, all of kio's). Topics by name up to v12, by id from v13
(KIP-516, resolved with MetadataView.topic_by_id; an unknown id answers UNKNOWN_TOPIC_ID).

- Long poll: the response goes out once the records gathered reach `min_bytes`, when a
  partition answers an error, or when `max_wait` runs out; meanwhile the handler sleeps in
  LogManager.wait_for_append and reads again after each append (no busy loop).
- Sizes (KIP-74): the response's `max_bytes` and each partition's `partition_max_bytes` are
  soft limits: the first partition with data returns at least one whole batch even if larger,
  so a consumer never gets stuck behind a big batch; later partitions stay within the budget.
- Sessions (KIP-227) are not implemented: every request is served as a full, sessionless
  fetch and answered with session id 0, which tells clients to keep sending full requests.
  A request naming a session id answers FETCH_SESSION_ID_NOT_FOUND.
- Follower fetches (replica id >= 0) are served like a consumer's until replication lands.
- read_committed reads up to the last stable offset, which is the high watermark (no
  transactions), with no aborted transactions.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .fetch_encoder import (
    FIRST_TOPIC_ID_VERSION,
    EncodedBody,
    FetchPartition,
    FetchResponseData,
    FetchTopic,
    encode_fetch_response,
)

API_KEY = 1
MIN_VERSION = 4
MAX_VERSION = 18

READ_COMMITTED = 1
_INITIAL_EPOCH = 0
_FINAL_EPOCH = -1


async def handle(ctx: RequestContext, request: Any) -> EncodedBody:
    version = ctx.api_version
    if version >= 7 and (
        request.session_id != 0 or request.session_epoch not in (_INITIAL_EPOCH, _FINAL_EPOCH)
    ):
        return error_response(version, request, ErrorCode.fetch_session_id_not_found)
    plan = _resolve_topics(ctx, request, version)
    read_committed = request.isolation_level == READ_COMMITTED
    min_bytes = request.min_bytes
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(request.max_wait.total_seconds(), 0.0)
    log = ctx.services.log
    while True:
        topics, total_bytes, has_errors = await _read_partitions(
            ctx, plan, request.max_bytes, read_committed
        )
        remaining_s = deadline - loop.time()
        if total_bytes >= min_bytes or has_errors or remaining_s <= 0 or not plan:
            break
        await log.wait_for_append(remaining_s)
    return encode_fetch_response(version, FetchResponseData(topics=topics, session_id=0))


class _TopicPlan:
    """A requested topic: the tenant's name for it (None when unknown) and its partitions."""

    __slots__ = ("name", "partitions", "topic", "unknown_code")

    def __init__(self, topic: Any, name: str | None, unknown_code: int) -> None:
        self.topic = topic
        self.name = name
        self.partitions = topic.partitions
        self.unknown_code = unknown_code


def _resolve_topics(ctx: RequestContext, request: Any, version: int) -> list[_TopicPlan]:
    plan = []
    if version >= FIRST_TOPIC_ID_VERSION:
        metadata = ctx.services.metadata
        for topic in request.topics:
            info = metadata.topic_by_id(ctx.principal, topic.topic_id)
            name = info.name if info is not None else None
            plan.append(_TopicPlan(topic, name, ErrorCode.unknown_topic_id))
    else:
        for topic in request.topics:
            plan.append(_TopicPlan(topic, topic.topic, ErrorCode.unknown_topic_or_partition))
    return plan


async def _read_partitions(
    ctx: RequestContext, plan: list[_TopicPlan], max_bytes: int, read_committed: bool
) -> tuple[list[FetchTopic], int, bool]:
    """One pass over every requested partition: (topics, record bytes, whether any failed)."""
    log = ctx.services.log
    principal = ctx.principal
    remaining = max_bytes
    is_first_with_data = True
    has_errors = False
    topics = []
    for topic_plan in plan:
        partitions = []
        name = topic_plan.name
        for requested in topic_plan.partitions:
            index = requested.partition
            if name is None:
                partitions.append(
                    FetchPartition(index, error_code=topic_plan.unknown_code, records=b"")
                )
                has_errors = True
                continue
            result = await log.read(
                principal,
                name,
                index,
                fetch_offset=requested.fetch_offset,
                max_bytes=max(min(requested.partition_max_bytes, remaining), 0),
                read_committed=read_committed,
                current_leader_epoch=getattr(requested, "current_leader_epoch", -1),
                min_one_batch=is_first_with_data,
            )
            records = result.records
            size = len(records) if records is not None else 0
            if size:
                remaining -= size
                is_first_with_data = False
            if result.error_code:
                has_errors = True
            partitions.append(
                FetchPartition(
                    index,
                    error_code=result.error_code,
                    high_watermark=result.high_watermark,
                    last_stable_offset=result.last_stable_offset,
                    log_start_offset=result.log_start_offset,
                    aborted_transactions=() if read_committed else None,
                    records=records if records is not None else b"",
                )
            )
        topics.append(_fetch_topic(topic_plan.topic, partitions))
    return topics, max_bytes - remaining, has_errors


def _fetch_topic(topic: Any, partitions: list[FetchPartition]) -> FetchTopic:
    return FetchTopic(
        partitions,
        name=getattr(topic, "topic", None),
        topic_id=getattr(topic, "topic_id", None),
    )


def error_response(version: int, request: Any, error_code: int) -> EncodedBody:
    """A top-level error (v7+) and the same code on every requested partition."""
    topics = [
        _fetch_topic(
            topic,
            [
                FetchPartition(p.partition, error_code=error_code, records=b"")
                for p in topic.partitions
            ],
        )
        for topic in request.topics
    ]
    if version >= 7 and error_code == ErrorCode.fetch_session_id_not_found:
        topics = []  # Kafka answers a session error with the top-level code alone
    return encode_fetch_response(
        version, FetchResponseData(topics=topics, error_code=error_code, session_id=0)
    )
