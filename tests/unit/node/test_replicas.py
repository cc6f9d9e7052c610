"""A broker node's replicas follow metadata: opened where placed, deleted when gone."""

import uuid

from brokers.node.replicas import ReplicaManager
from brokers.node.snapshot import BrokerMeta, MetadataSnapshot, PartitionMeta, TopicMeta


def snapshot(*topics: TopicMeta, version: int = 1) -> MetadataSnapshot:
    return MetadataSnapshot(
        version=version,
        cluster_id="test",
        brokers={1: BrokerMeta(1, "127.0.0.1", 9092, ""), 2: BrokerMeta(2, "127.0.0.1", 9093, "")},
        topics={(t.tenant, t.name): t for t in topics},
    )


def topic(tenant: str, name: str, partitions: int, replicas=(1,), topic_id=None, **configs):
    return TopicMeta(
        tenant=tenant,
        name=name,
        topic_id=topic_id or uuid.uuid4(),
        replication_factor=len(replicas),
        configs=configs,
        partitions=tuple(
            PartitionMeta(i, replicas[0], 0, tuple(replicas), tuple(replicas[:1]))
            for i in range(partitions)
        ),
    )


def test_replicas_placed_here_are_opened_in_tenant_qualified_folders(tmp_path):
    manager = ReplicaManager(1, tmp_path)
    manager.sync(snapshot(topic("acme", "orders", 2), topic("globex", "orders", 1)))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "acme.orders-0", "acme.orders-1", "globex.orders-0",
    ]
    assert manager.get("acme", "orders", 1) is not None
    assert "topic_id" in (tmp_path / "acme.orders-0" / "partition.metadata").read_text()


def test_replicas_placed_elsewhere_are_not_opened(tmp_path):
    manager = ReplicaManager(1, tmp_path)
    manager.sync(snapshot(topic("acme", "theirs", 1, replicas=(2,))))
    assert manager.logs == {}


def test_deleted_topic_replicas_are_removed_from_disk(tmp_path):
    manager = ReplicaManager(1, tmp_path)
    orders = topic("acme", "orders", 1)
    manager.sync(snapshot(orders))
    manager.get("acme", "orders", 0).append_records([_Rec()], 0)
    manager.sync(snapshot(version=2))
    assert manager.logs == {}
    assert list(tmp_path.iterdir()) == []


def test_recreated_topic_does_not_see_the_old_topics_records(tmp_path):
    manager = ReplicaManager(1, tmp_path)
    manager.sync(snapshot(topic("acme", "orders", 1)))
    manager.get("acme", "orders", 0).append_records([_Rec(), _Rec()], 0)
    manager.close()
    # The node was down while the topic was deleted and created again under the same name.
    restarted = ReplicaManager(1, tmp_path)
    restarted.sync(snapshot(topic("acme", "orders", 1), version=5))
    assert restarted.get("acme", "orders", 0).log_end_offset == 0


def test_a_restarted_node_keeps_its_records(tmp_path):
    orders = topic("acme", "orders", 1)
    manager = ReplicaManager(1, tmp_path)
    manager.sync(snapshot(orders))
    manager.get("acme", "orders", 0).append_records([_Rec(), _Rec(), _Rec()], 0)
    manager.close()
    restarted = ReplicaManager(1, tmp_path)
    restarted.sync(snapshot(orders))
    assert restarted.get("acme", "orders", 0).log_end_offset == 3


def test_config_changes_reach_open_logs(tmp_path):
    manager = ReplicaManager(1, tmp_path)
    orders = topic("acme", "orders", 1)
    manager.sync(snapshot(orders))
    manager.sync(snapshot(_with_configs(orders, {"retention.ms": "1000"}), version=2))
    assert manager.get("acme", "orders", 0).config.retention_ms == 1000


def _with_configs(meta: TopicMeta, configs: dict) -> TopicMeta:
    return TopicMeta(
        meta.tenant, meta.name, meta.topic_id, meta.replication_factor, configs, meta.partitions
    )


class _Rec:
    key = b"k"
    value = b"v"
    headers = ()
    timestamp = 1_700_000_000_000
