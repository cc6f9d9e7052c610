"""The controller: one active through its lease, broker liveness, leader election, placement."""

from datetime import timedelta

import pytest
from django.utils import timezone

from brokers import services
from brokers.controller.controller import acquire_lease, run_controller_pass
from brokers.models import Broker, ClusterState, Partition
from brokers.node.registration import BrokerIdInUse, deregister_broker, register_broker

pytestmark = pytest.mark.django_db


def stale(broker_id: int) -> None:
    Broker.objects.filter(id=broker_id).update(
        last_heartbeat_at=timezone.now() - timedelta(seconds=60)
    )


def test_one_controller_holds_the_lease_until_it_expires():
    assert acquire_lease("a") == 1
    assert acquire_lease("b") is None
    assert acquire_lease("a") == 1  # renewing keeps the epoch
    ClusterState.objects.update(controller_lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert acquire_lease("b") == 2
    assert run_controller_pass("a").is_controller is False


def test_broker_marked_dead_after_missed_heartbeats_and_alive_when_it_returns():
    register_broker(1, "127.0.0.1", 9092)
    stale(1)
    report = run_controller_pass("c")
    assert report.marked_dead == [1]
    assert Broker.objects.get(id=1).state == Broker.State.DEAD
    register_broker(1, "127.0.0.1", 9092)  # heartbeats again
    Broker.objects.filter(id=1).update(state=Broker.State.DEAD)
    report = run_controller_pass("c")
    assert report.marked_alive == [1]
    assert Broker.objects.get(id=1).state == Broker.State.ALIVE


def test_leadership_moves_to_an_alive_isr_member_with_a_new_epoch(tenant):
    for broker_id in (1, 2):
        register_broker(broker_id, "127.0.0.1", 9090 + broker_id)
    topic = services.create_topic(tenant, "t", 2, 2)
    for partition in topic.partitions.all():  # as if followers had caught up
        partition.isr = partition.replica_ids
        partition.save()
    stale(1)
    version = ClusterState.get().metadata_version
    run_controller_pass("c")
    for partition in Partition.objects.filter(topic=topic):
        assert partition.leader_id == 2
        assert partition.isr == [2]
    moved = Partition.objects.filter(topic=topic, leader_epoch=1)
    assert moved.count() == 1  # only the one that broker 1 led changed leader
    assert ClusterState.get().metadata_version > version


def test_partition_without_live_isr_goes_offline_and_returns_with_its_broker(tenant):
    register_broker(1, "127.0.0.1", 9091)
    services.create_topic(tenant, "t", 1, 1)
    deregister_broker(1)
    run_controller_pass("c")
    partition = Partition.objects.get()
    assert partition.leader_id is None
    assert partition.isr == [1]
    register_broker(1, "127.0.0.1", 9091)
    run_controller_pass("c")
    partition.refresh_from_db()
    assert partition.leader_id == 1
    assert partition.leader_epoch == 2


def test_partitions_created_before_any_broker_are_placed_when_one_registers(tenant):
    services.create_topic(tenant, "early", 3, 1)
    assert Partition.objects.filter(leader__isnull=True).count() == 3
    register_broker(7, "127.0.0.1", 9097)
    report = run_controller_pass("c")
    assert len(report.placed) == 3
    assert set(Partition.objects.values_list("leader_id", flat=True)) == {7}


def test_a_second_live_node_cannot_take_a_broker_id():
    register_broker(1, "127.0.0.1", 9092)
    with pytest.raises(BrokerIdInUse):
        register_broker(1, "127.0.0.1", 9999)
    deregister_broker(1)
    register_broker(1, "127.0.0.1", 9999)  # after a clean stop the id is free again


def test_an_idle_pass_changes_nothing(tenant):
    register_broker(1, "127.0.0.1", 9091)
    services.create_topic(tenant, "t", 2, 1)
    deregister_broker(1)
    run_controller_pass("c")  # partitions go offline
    version = ClusterState.get().metadata_version
    assert not run_controller_pass("c").changed
    assert ClusterState.get().metadata_version == version
