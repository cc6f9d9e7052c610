"""Metadata (API key 3): brokers, cluster id, controller, and the tenant's topics and partitions.

Kafka's rules followed here (KafkaApis.handleTopicMetadataRequest, KRaftMetadataCache):
- v0: an empty topic list means every topic; v1+: null means every topic, empty means none.
- v10+ may name topics by id (name null); an unknown id answers UNKNOWN_TOPIC_ID.
- A missing topic is created when the request allows it (v4+, always before) and the broker's
  auto.create.topics.enable is on; it is answered LEADER_NOT_AVAILABLE, as Kafka does while the
  topic is being created, so clients ask again. Illegal names answer INVALID_TOPIC_EXCEPTION.
- A partition without a live leader answers LEADER_NOT_AVAILABLE with leader -1.
- Authorized operations are never computed: -2147483648 ("not requested", KIP-430).

Encoding the response with kio costs about 2 ms for 240 partitions, and clients ask for the
same metadata again and again, so the encoded body is cached per metadata state (the view's
`cache_token()`, see brokers/node/metadata_view.py), principal, version and requested topics.
"""

from __future__ import annotations

import functools
import uuid
import weakref
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from brokers.topic_config import InvalidTopicName, validate_topic_name

from . import codec
from .chunks import EncodedBody
from .context import RequestContext
from .errors import ErrorCode
from .responses import NO_THROTTLE, build, response_module
from .services import MetadataView, PartitionInfo, Principal, TopicInfo

API_KEY = 3
MIN_VERSION = 0
MAX_VERSION = 13

AUTHORIZED_OPERATIONS_OMITTED = -2147483648
# Encoded responses kept per metadata state; a new state starts an empty cache.
_MAX_CACHED_RESPONSES = 1024


@functools.cache
def is_legal_topic_name(name: str) -> bool:
    """Kafka's Topic.validate, as a question."""
    try:
        validate_topic_name(name)
    except InvalidTopicName:
        return False
    return True


async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    view = ctx.services.metadata
    requested = _requested_topics(version, request)
    may_auto_create = bool(
        getattr(request, "allow_auto_topic_creation", True)
        and ctx.services.auto_create_topics_enable
    )
    cache = _cache_for(view)
    key = (version, ctx.principal, requested, may_auto_create)
    if cache is not None and (body := cache.get(key)) is not None:
        return EncodedBody((body,))
    topics, created_any = await _topic_entries(ctx, view, requested, may_auto_create)
    response = _response(version, view, topics)
    if cache is None or created_any:
        return response
    body = codec.encode(response)
    cache.put(key, body)
    return EncodedBody((body,))


def error_response(version: int, request: Any, error_code: int) -> Any:
    """Every requested topic with `error_code`, and no brokers."""
    module = response_module(API_KEY, version)
    names = [topic.name for topic in request.topics or ()]
    topics = tuple(
        build(
            module.MetadataResponseTopic,
            error_code=ErrorCode(error_code),
            name=name,
            topic_id=None,
            is_internal=False,
            partitions=(),
            topic_authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
        )
        for name in names
    )
    return build(
        module.MetadataResponse,
        throttle_time=NO_THROTTLE,
        brokers=(),
        cluster_id=None,
        controller_id=-1,
        topics=topics,
        cluster_authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
        error_code=ErrorCode.none,
    )


# The request: which topics, by name or by id. None means every topic of the tenant.
Requested = tuple[tuple[str | None, uuid.UUID | None], ...] | None


def _requested_topics(version: int, request: Any) -> Requested:
    if request.topics is None or (version == 0 and not request.topics):
        return None
    return tuple(
        (topic.name, getattr(topic, "topic_id", None) if topic.name is None else None)
        for topic in request.topics
    )


async def _topic_entries(
    ctx: RequestContext, view: MetadataView, requested: Requested, may_auto_create: bool
) -> tuple[list[tuple[int, str | None, uuid.UUID | None, TopicInfo | None]], bool]:
    """(error, name, topic id, topic) for each topic to answer, and whether one was created."""
    principal = ctx.principal
    if requested is None:
        return [(ErrorCode.none, t.name, t.topic_id, t) for t in view.topics(principal)], False
    entries: list[tuple[int, str | None, uuid.UUID | None, TopicInfo | None]] = []
    created_any = False
    seen: set[tuple[str | None, uuid.UUID | None]] = set()
    for name, topic_id in requested:
        if (name, topic_id) in seen:
            continue  # Kafka answers each topic once
        seen.add((name, topic_id))
        if name is None:
            found = view.topic_by_id(principal, topic_id) if topic_id is not None else None
            if found is None:
                entries.append((ErrorCode.unknown_topic_id, None, topic_id, None))
            else:
                entries.append((ErrorCode.none, found.name, found.topic_id, found))
            continue
        found = view.topic(principal, name)
        if found is not None:
            entries.append((ErrorCode.none, found.name, found.topic_id, found))
        elif not is_legal_topic_name(name):
            entries.append((ErrorCode.invalid_topic_exception, name, None, None))
        elif may_auto_create:
            error = await _auto_create(ctx, principal, name)
            created_any = True
            entries.append((error, name, None, None))
        else:
            entries.append((ErrorCode.unknown_topic_or_partition, name, None, None))
    return entries, created_any


async def _auto_create(ctx: RequestContext, principal: Principal | None, name: str) -> int:
    """Create a missing topic with the broker defaults; the error its Metadata entry gets."""
    result = await ctx.services.admin.create_topic(principal, name, -1, -1, {}, validate_only=False)
    if result.error_code in (ErrorCode.none, ErrorCode.topic_already_exists):
        return ErrorCode.leader_not_available  # clients retry until the topic has leaders
    return result.error_code


def _response(
    version: int,
    view: MetadataView,
    topics: Sequence[tuple[int, str | None, uuid.UUID | None, TopicInfo | None]],
) -> Any:
    module = response_module(API_KEY, version)
    brokers = tuple(
        build(
            module.MetadataResponseBroker,
            node_id=endpoint.node_id,
            host=endpoint.host,
            port=endpoint.port,
            rack=endpoint.rack,
        )
        for endpoint in view.brokers()
    )
    return build(
        module.MetadataResponse,
        throttle_time=NO_THROTTLE,
        brokers=brokers,
        cluster_id=view.cluster_id,
        controller_id=view.controller_id,
        topics=tuple(
            _topic(module, error, name, topic_id, topic) for error, name, topic_id, topic in topics
        ),
        cluster_authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
        error_code=ErrorCode.none,
    )


def _topic(
    module: ModuleType,
    error: int,
    name: str | None,
    topic_id: uuid.UUID | None,
    topic: TopicInfo | None,
) -> Any:
    return build(
        module.MetadataResponseTopic,
        error_code=ErrorCode(error),
        name=name,
        topic_id=topic_id,
        is_internal=topic.is_internal if topic is not None else False,
        partitions=tuple(_partition(module, p) for p in topic.partitions) if topic else (),
        topic_authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
    )


def _partition(module: ModuleType, partition: PartitionInfo) -> Any:
    error = ErrorCode.leader_not_available if partition.leader_id < 0 else ErrorCode.none
    return build(
        module.MetadataResponsePartition,
        error_code=error,
        partition_index=partition.index,
        leader_id=partition.leader_id if partition.leader_id >= 0 else -1,
        leader_epoch=partition.leader_epoch,
        replica_nodes=partition.replicas,
        isr_nodes=partition.isr,
        offline_replicas=partition.offline_replicas,
    )


class _ResponseCache:
    """Encoded responses of one metadata state; emptied when the state changes."""

    def __init__(self) -> None:
        self.token: object | None = None
        self.bodies: dict[object, bytes] = {}

    def get(self, key: object) -> bytes | None:
        return self.bodies.get(key)

    def put(self, key: object, body: bytes) -> None:
        if len(self.bodies) < _MAX_CACHED_RESPONSES:
            self.bodies[key] = body


_CACHES: weakref.WeakKeyDictionary[Any, _ResponseCache] = weakref.WeakKeyDictionary()


def _cache_for(view: MetadataView) -> _ResponseCache | None:
    """The view's cache for its current state, or None if the view cannot say when it changes.

    `cache_token()` returns an object that stays the same (`is`) exactly as long as the view's
    answers do, e.g. the immutable snapshot it reads; a view without it is never cached.
    """
    cache_token = getattr(view, "cache_token", None)
    if cache_token is None:
        return None
    token = cache_token()
    if token is None:
        return None
    try:
        cache = _CACHES.get(view)
        if cache is None:
            cache = _CACHES[view] = _ResponseCache()
    except TypeError:  # not weakly referenceable
        return None
    if cache.token is not token:
        cache.token = token
        cache.bodies = {}
    return cache
