"""Loading the metadata snapshot from the database, and the version that says when to reload.

A node reloads its snapshot when ClusterState.metadata_version moves (it polls that one integer).
"""

from brokers.models import Broker, ClusterState, Partition, Replica, Topic
from brokers.node.snapshot import BrokerMeta, MetadataSnapshot, PartitionMeta, TopicMeta


def metadata_version() -> int:
    return ClusterState.objects.filter(pk=1).values_list("metadata_version", flat=True).first() or 0


def load_snapshot() -> MetadataSnapshot:
    """Read the whole cluster metadata in a few queries (one consistent transaction on PG)."""
    state = ClusterState.get()
    brokers = {
        b.id: BrokerMeta(b.id, b.host, b.port, b.rack)
        for b in Broker.objects.filter(state=Broker.State.ALIVE).order_by("id")
    }
    replicas: dict[int, list[int]] = {}
    for partition_id, broker_id in Replica.objects.order_by("partition_id", "position").values_list(
        "partition_id", "broker_id"
    ):
        replicas.setdefault(partition_id, []).append(broker_id)
    partitions: dict[int, list[PartitionMeta]] = {}
    for p in Partition.objects.order_by("topic_id", "index").values(
        "id", "topic_id", "index", "leader_id", "leader_epoch", "isr"
    ):
        partitions.setdefault(p["topic_id"], []).append(
            PartitionMeta(
                p["index"],
                p["leader_id"],
                p["leader_epoch"],
                tuple(replicas.get(p["id"], ())),
                tuple(p["isr"] or ()),
            )
        )
    topics = {}
    for t in Topic.objects.select_related("tenant"):
        topics[(t.tenant.name, t.name)] = TopicMeta(
            tenant=t.tenant.name,
            name=t.name,
            topic_id=t.topic_id,
            replication_factor=t.replication_factor,
            configs=dict(t.configs),
            partitions=tuple(partitions.get(t.pk, ())),
        )
    return MetadataSnapshot(state.metadata_version, state.cluster_id, brokers, topics)
