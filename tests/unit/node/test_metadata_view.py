"""SnapshotMetadataView: the node's snapshot as the protocol's MetadataView, per tenant."""

from __future__ import annotations

import uuid

from brokers.node.metadata_view import SnapshotMetadataView
from brokers.node.snapshot import BrokerMeta, MetadataSnapshot, PartitionMeta, TopicMeta
from brokers.protocol.services import BrokerEndpoint, Principal


def topic(tenant: str, name: str, *partitions: PartitionMeta) -> TopicMeta:
    return TopicMeta(tenant, name, uuid.uuid4(), 1, {}, partitions)


def snapshot(*topics: TopicMeta, version: int = 1) -> MetadataSnapshot:
    return MetadataSnapshot(
        version=version,
        cluster_id="cid",
        brokers={2: BrokerMeta(2, "b", 9093, ""), 1: BrokerMeta(1, "a", 9092, "r1")},
        topics={(t.tenant, t.name): t for t in topics},
    )


def view_of(holder: list[MetadataSnapshot | None]) -> SnapshotMetadataView:
    return SnapshotMetadataView(lambda: holder[0], lambda p: p.tenant if p and p.tenant else "open")


ACME = Principal("key", "acme")


def test_brokers_cluster_and_controller_come_from_the_snapshot() -> None:
    view = view_of([snapshot()])
    assert view.brokers() == (BrokerEndpoint(1, "a", 9092, "r1"), BrokerEndpoint(2, "b", 9093))
    assert (view.cluster_id, view.controller_id) == ("cid", 1)


def test_topics_are_scoped_to_the_tenant_by_bare_name() -> None:
    mine = topic("acme", "orders", PartitionMeta(0, 1, 3, (1, 2), (1,)))
    theirs = topic("globex", "orders")
    open_one = topic("open", "public")
    view = view_of([snapshot(mine, theirs, open_one)])
    (info,) = view.topics(ACME)
    assert (info.name, info.topic_id) == ("orders", mine.topic_id)
    (partition,) = info.partitions
    assert (partition.leader_id, partition.leader_epoch, partition.replicas, partition.isr) == (
        1,
        3,
        (1, 2),
        (1,),
    )
    assert view.topic(ACME, "orders").topic_id == mine.topic_id
    assert view.topic(ACME, "public") is None
    assert [t.name for t in view.topics(None)] == ["public"]
    assert view.topic_by_id(ACME, mine.topic_id).name == "orders"
    assert view.topic_by_id(ACME, theirs.topic_id) is None


def test_missing_or_dead_leaders_are_minus_one_and_dead_replicas_offline() -> None:
    t = topic(
        "acme",
        "t",
        PartitionMeta(0, None, 0, (), ()),
        PartitionMeta(1, 5, 2, (5, 1), (5,)),
        PartitionMeta(2, 2, 0, (2, 5), (2,)),
    )
    first, second, third = view_of([snapshot(t)]).topic(ACME, "t").partitions
    assert first.leader_id == -1
    assert (second.leader_id, second.offline_replicas) == (-1, (5,))
    assert (third.leader_id, third.offline_replicas) == (2, (5,))


def test_follows_the_current_snapshot_and_its_cache_token() -> None:
    holder: list[MetadataSnapshot | None] = [None]
    view = view_of(holder)
    assert view.brokers() == () and view.topics(ACME) == [] and view.cache_token() is None
    first = snapshot(topic("acme", "a"))
    holder[0] = first
    assert [t.name for t in view.topics(ACME)] == ["a"]
    assert view.cache_token() is first
    holder[0] = snapshot(topic("acme", "a"), topic("acme", "b"), version=2)
    assert [t.name for t in view.topics(ACME)] == ["a", "b"]
    assert view.cache_token() is holder[0]
