"""SnapshotMetadataView: the protocol's MetadataView over the node's current MetadataSnapshot.

Handlers see the topics of the principal's tenant by their bare names; the tenant comes from a
`tenant_of(principal)` callable (the node's rule: the principal's tenant, or the open listener's).
No Django here: the snapshot is plain data, swapped whole by the node when metadata changes.

A partition's leader is -1 when it has none or when the leader is not a live broker (Kafka's
KRaftMetadataCache answers LEADER_NOT_AVAILABLE then, as the client could not reach it), and
its offline replicas are those on brokers that are not alive.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence

from brokers.node.snapshot import MetadataSnapshot, TopicMeta
from brokers.protocol.services import BrokerEndpoint, PartitionInfo, Principal, TopicInfo

_EMPTY = MetadataSnapshot(version=-1, cluster_id="", brokers={})


class _Converted:
    """TopicInfos made from one snapshot, made once per topic and kept while it is current."""

    def __init__(self, snapshot: MetadataSnapshot) -> None:
        self.snapshot = snapshot
        self.brokers = tuple(
            BrokerEndpoint(b.id, b.host, b.port, b.rack or None)
            for b in sorted(snapshot.brokers.values(), key=lambda b: b.id)
        )
        self.infos: dict[tuple[str, str], TopicInfo] = {}
        self.by_id: dict[uuid.UUID, TopicMeta] = {t.topic_id: t for t in snapshot.topics.values()}

    def info(self, topic: TopicMeta) -> TopicInfo:
        key = (topic.tenant, topic.name)
        info = self.infos.get(key)
        if info is None:
            info = self.infos[key] = _topic_info(topic, self.snapshot.brokers.keys())
        return info


class SnapshotMetadataView:
    """MetadataView (brokers/protocol/services.py) over `snapshot()`, scoped by `tenant_of`."""

    def __init__(
        self,
        snapshot: Callable[[], MetadataSnapshot | None],
        tenant_of: Callable[[Principal | None], str],
    ) -> None:
        self._snapshot = snapshot
        self._tenant_of = tenant_of
        self._converted = _Converted(_EMPTY)

    def _current(self) -> _Converted:
        snapshot = self._snapshot() or _EMPTY
        converted = self._converted
        if converted.snapshot is not snapshot:
            converted = self._converted = _Converted(snapshot)
        return converted

    def cache_token(self) -> object | None:
        """The snapshot answers come from: the same object exactly while answers stay the same.

        The Metadata handler caches encoded responses under it (brokers/protocol/metadata.py).
        """
        return self._snapshot()

    @property
    def cluster_id(self) -> str:
        return self._current().snapshot.cluster_id

    @property
    def controller_id(self) -> int:
        return self._current().snapshot.controller_id

    def brokers(self) -> Sequence[BrokerEndpoint]:
        return self._current().brokers

    def topics(self, principal: Principal | None) -> Sequence[TopicInfo]:
        converted = self._current()
        return [converted.info(t) for t in converted.snapshot.topics_of(self._tenant_of(principal))]

    def topic(self, principal: Principal | None, name: str) -> TopicInfo | None:
        converted = self._current()
        found = converted.snapshot.topic(self._tenant_of(principal), name)
        return converted.info(found) if found is not None else None

    def topic_by_id(self, principal: Principal | None, topic_id: uuid.UUID) -> TopicInfo | None:
        converted = self._current()
        found = converted.by_id.get(topic_id)
        if found is None or found.tenant != self._tenant_of(principal):
            return None
        return converted.info(found)


def _topic_info(topic: TopicMeta, live: Collection[int]) -> TopicInfo:
    return TopicInfo(
        name=topic.name,
        topic_id=topic.topic_id,
        partitions=tuple(
            PartitionInfo(
                index=p.index,
                leader_id=p.leader_id if p.leader_id is not None and p.leader_id in live else -1,
                leader_epoch=p.leader_epoch,
                replicas=p.replicas,
                isr=p.isr,
                offline_replicas=tuple(r for r in p.replicas if r not in live),
            )
            for p in topic.partitions
        ),
    )
