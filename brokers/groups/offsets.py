"""Which committed offsets a group may lose, by OffsetDelete or by expiry; Kafka's rules, pure.

OffsetDelete (KIP-496): an Empty group's offsets may all be deleted; a consumer group with
members keeps those of the topics a member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC for each of
their partitions); a group of another protocol type with members refuses (NON_EMPTY_GROUP).

Expiry (KIP-211, Kafka 2.1+; ClassicGroup.offsetExpirationCondition), offsets.retention counts:
- in a group with a protocol type that is Empty: from when it became Empty, for every offset
  (from each offset's commit for groups stored before that time was kept, as Kafka does);
- in a Stable consumer group: from each offset's commit, for topics no member subscribes to;
- in a standalone group (commits only, no protocol type: assign(), admin tools): from each
  offset's commit;
and nothing expires otherwise (a rebalance in progress, a Stable group of another protocol type).
An Empty group left without offsets is removed, as Kafka's cleanupGroupMetadata turns it Dead.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from brokers.protocol.errors import ErrorCode

from .group import Group, GroupState

CONSUMER_PROTOCOL_TYPE = "consumer"


def subscription_topics(metadata: bytes) -> tuple[str, ...]:
    """The topics of a consumer-protocol subscription (a member's JoinGroup metadata).

    Read as version 0, the prefix every version shares, as Kafka's coordinator reads it: version
    int16, then topics as an int32-counted array of int16-length strings; what follows (user
    data, owned partitions, rack) is ignored. ValueError when the bytes are not one.
    """
    try:
        version, count = struct.unpack_from(">hi", metadata, 0)
        if version < 0 or count < 0:
            raise ValueError(f"not a consumer subscription (version {version}, {count} topics)")
        offset = 6
        topics = []
        for _ in range(count):
            (length,) = struct.unpack_from(">h", metadata, offset)
            offset += 2
            if length < 0 or offset + length > len(metadata):
                raise ValueError("truncated topic name in consumer subscription")
            topics.append(metadata[offset : offset + length].decode())
            offset += length
        return tuple(topics)
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"not a consumer subscription: {exc}") from exc


def subscribed_topics(group: Group) -> frozenset[str] | None:
    """Every topic a member of this consumer group subscribes to; None when unknown (not a
    consumer group, no generation chosen yet, or a subscription that does not decode)."""
    if group.protocol_type != CONSUMER_PROTOCOL_TYPE:
        return None
    if not group.members:
        return frozenset()
    if group.protocol_name is None:
        return None
    topics: set[str] = set()
    try:
        for member in group.members.values():
            topics.update(subscription_topics(member.metadata_for(group.protocol_name)))
    except ValueError:
        return None
    return frozenset(topics)


def is_subscribed(group: Group, topic: str) -> bool:
    """Kafka's isSubscribedToTopic: a consumer group whose subscriptions are unknown is taken to
    subscribe to every topic (its offsets are kept); other groups subscribe to none."""
    topics = subscribed_topics(group)
    if topics is None:
        return group.protocol_type == CONSUMER_PROTOCOL_TYPE
    return topic in topics


@dataclass(frozen=True, slots=True)
class OffsetDeletion:
    """What OffsetDelete may do to a group: a group-level error, or which partitions go."""

    error_code: int
    deletable: tuple[tuple[str, int], ...] = ()
    subscribed: tuple[tuple[str, int], ...] = ()
    """Partitions of subscribed topics: GROUP_SUBSCRIBED_TO_TOPIC, their offsets stay."""


def plan_offset_deletion(group: Group, partitions: Sequence[tuple[str, int]]) -> OffsetDeletion:
    if group.state is GroupState.DEAD:
        return OffsetDeletion(ErrorCode.group_id_not_found)
    if not group.is_empty and group.protocol_type != CONSUMER_PROTOCOL_TYPE:
        return OffsetDeletion(ErrorCode.non_empty_group)
    deletable, subscribed = [], []
    for topic, partition in partitions:
        if not group.is_empty and is_subscribed(group, topic):
            subscribed.append((topic, partition))
        else:
            deletable.append((topic, partition))
    return OffsetDeletion(ErrorCode.none, tuple(deletable), tuple(subscribed))


@dataclass(frozen=True, slots=True)
class ExpiryCondition:
    """When a group's committed offsets expire (Kafka's OffsetExpirationCondition)."""

    base_time_ms: float | None
    """Retention counts from here for every offset (Empty since); None: from each commit."""
    kept_topics: frozenset[str] = frozenset()
    """Subscribed topics of a Stable consumer group: their offsets do not expire."""

    def is_expired(
        self, topic: str, commit_time_ms: float, now_ms: float, retention_ms: float
    ) -> bool:
        if topic in self.kept_topics:
            return False
        base_ms = commit_time_ms if self.base_time_ms is None else self.base_time_ms
        return now_ms - base_ms >= retention_ms


def expiry_condition(group: Group) -> ExpiryCondition | None:
    """How the group's offsets expire now; None: none of them do."""
    if group.state is GroupState.DEAD:
        return None
    if group.protocol_type is None:
        return ExpiryCondition(base_time_ms=None)  # standalone: by commit time
    if group.is_empty:
        return ExpiryCondition(base_time_ms=group.state_timestamp_ms)
    if group.state is GroupState.STABLE:
        topics = subscribed_topics(group)
        if topics is not None:
            return ExpiryCondition(base_time_ms=None, kept_topics=topics)
    return None
