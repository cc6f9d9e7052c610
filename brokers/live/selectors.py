"""The live feed's reads of topic metadata: what a subscription needs, and which topics remain.

Blocking (the database): called through ``sync.run_blocking``.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from brokers.models import ClusterState, Topic


@dataclass(frozen=True, slots=True)
class TopicInfo:
    partition_count: int
    topic_id: uuid.UUID  # Kafka's topic id: a topic deleted and created again gets a new one


def subscribable_topic(tenant: object, name: str) -> TopicInfo | None:
    """The tenant's topic ``name``, or None when it has none of that name."""
    found = Topic.objects.filter(tenant=tenant, name=name).values_list(
        "partition_count", "topic_id"
    ).first()
    return None if found is None else TopicInfo(*found)


def metadata_version() -> int:
    """The cluster's metadata version: it changes with every topic created or deleted."""
    version = ClusterState.objects.filter(pk=1).values_list("metadata_version", flat=True).first()
    return version or 0


def topic_ids(names: Iterable[tuple[str, str]]) -> dict[tuple[str, str], uuid.UUID]:
    """The topic id of each (tenant name, topic name) that exists; absent ones are left out."""
    wanted = set(names)
    if not wanted:
        return {}
    rows = Topic.objects.filter(
        tenant__name__in={tenant for tenant, _ in wanted}, name__in={name for _, name in wanted}
    ).values_list("tenant__name", "name", "topic_id")
    return {(tenant, name): topic_id for tenant, name, topic_id in rows
            if (tenant, name) in wanted}


def changed_topic_ids(known_version: int | None, names: Iterable[tuple[str, str]]
                      ) -> tuple[int, dict[tuple[str, str], uuid.UUID] | None]:
    """The metadata version, and ``topic_ids(names)`` unless it is still ``known_version``.

    The version is read first: a change made while the topics are read shows on the next call.
    """
    version = metadata_version()
    if version == known_version:
        return version, None
    return version, topic_ids(names)
