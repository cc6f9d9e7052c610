"""The broker node's view of cluster metadata: an immutable snapshot (no Django in here).

brokers/node/metadata.py loads it from the database; the node swaps in a new snapshot whenever
the metadata version moves, so handlers read metadata from memory and never wait on the database.
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from brokers.topic_config import effective_configs


@dataclass(frozen=True, slots=True)
class BrokerMeta:
    id: int
    host: str
    port: int
    rack: str


@dataclass(frozen=True, slots=True)
class PartitionMeta:
    index: int
    leader_id: int | None
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TopicMeta:
    tenant: str
    name: str
    topic_id: uuid.UUID
    replication_factor: int
    configs: dict[str, str]  # overrides only; see effective_configs
    partitions: tuple[PartitionMeta, ...]

    @property
    def dir_prefix(self) -> str:
        """Name of the topic on disk. Tenant names have no '.', so the prefix is unambiguous."""
        return f"{self.tenant}.{self.name}"

    @property
    def effective_configs(self) -> dict[str, str]:
        return effective_configs(self.configs)


@dataclass(frozen=True, slots=True)
class MetadataSnapshot:
    version: int
    cluster_id: str
    brokers: dict[int, BrokerMeta]  # broker nodes the controller holds alive
    topics: dict[tuple[str, str], TopicMeta] = field(default_factory=dict)

    @property
    def controller_id(self) -> int:
        """The broker clients send controller-bound requests to; every node can serve them."""
        return min(self.brokers, default=-1)

    def topic(self, tenant: str, name: str) -> TopicMeta | None:
        return self.topics.get((tenant, name))

    def topics_of(self, tenant: str) -> list[TopicMeta]:
        return [t for (owner, _), t in sorted(self.topics.items()) if owner == tenant]

    def replicas_on(self, broker_id: int) -> Iterator[tuple[TopicMeta, PartitionMeta]]:
        for topic in self.topics.values():
            for partition in topic.partitions:
                if broker_id in partition.replicas:
                    yield topic, partition
