"""The controller: broker liveness, leader election and placement of unplaced partitions.

One controller acts at a time: it holds a lease in ClusterState, taken and renewed by
compare-and-set on the controller epoch, so a paused controller that lost its lease cannot
write (its epoch no longer matches). Each step is a short transaction that bumps the metadata
version when it changes anything, so broker nodes reload within their poll interval.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from brokers.controller.placement import BrokerSlot, PlacementError, assign_replicas
from brokers.models import BROKER_SESSION_TIMEOUT, Broker, ClusterState, Partition, Replica

log = logging.getLogger(__name__)

LEASE_DURATION = timedelta(seconds=10)


@dataclass
class TickReport:
    """What one controller pass changed (for logs and tests)."""

    is_controller: bool = False
    marked_dead: list[int] = field(default_factory=list)
    marked_alive: list[int] = field(default_factory=list)
    elected: dict[str, int | None] = field(default_factory=dict)
    placed: list[str] = field(default_factory=list)
    isr_changed: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.marked_dead or self.marked_alive or self.elected or self.placed or self.isr_changed
        )


def acquire_lease(identity: str) -> int | None:
    """Take or renew the controller lease for ``identity``; its epoch, or None if held elsewhere."""
    now = timezone.now()
    state = ClusterState.get()
    is_free = (
        state.controller == identity
        or not state.controller
        or state.controller_lease_expires_at is None
        or state.controller_lease_expires_at < now
    )
    if not is_free:
        return None
    epoch = state.controller_epoch if state.controller == identity else state.controller_epoch + 1
    taken = ClusterState.objects.filter(pk=1, controller_epoch=state.controller_epoch).update(
        controller=identity,
        controller_epoch=epoch,
        controller_lease_expires_at=now + LEASE_DURATION,
    )
    if not taken:
        return None  # another candidate won the compare-and-set
    if epoch != state.controller_epoch:
        log.info("controller %s took the lease at epoch %d", identity, epoch)
    return epoch


def _still_controller(epoch: int) -> bool:
    return ClusterState.objects.filter(pk=1, controller_epoch=epoch).exists()


def update_broker_liveness(report: TickReport) -> None:
    """Dead after a missed-heartbeat timeout; alive again once heartbeats resume."""
    cutoff = timezone.now() - BROKER_SESSION_TIMEOUT
    stale = Broker.objects.filter(state=Broker.State.ALIVE).filter(
        Q(last_heartbeat_at__lt=cutoff) | Q(last_heartbeat_at__isnull=True)
    )
    report.marked_dead = list(stale.values_list("id", flat=True))
    if report.marked_dead:
        Broker.objects.filter(id__in=report.marked_dead).update(state=Broker.State.DEAD)
    back = Broker.objects.filter(state=Broker.State.DEAD, last_heartbeat_at__gte=cutoff)
    report.marked_alive = list(back.values_list("id", flat=True))
    if report.marked_alive:
        Broker.objects.filter(id__in=report.marked_alive).update(state=Broker.State.ALIVE)


def elect_leaders(report: TickReport) -> None:
    """Drop brokers that are not alive from ISRs, and re-elect leaders that are gone.

    As Kafka without unclean election: only an ISR member may lead. When none is alive the
    partition goes offline (no leader) and the ISR keeps its last member, who leads again on
    return. Every change of leader bumps the leader epoch.
    """
    alive = set(Broker.objects.filter(state=Broker.State.ALIVE).values_list("id", flat=True))
    for partition in Partition.objects.exclude(isr=[]).select_for_update():
        new_isr = [b for b in partition.isr if b in alive] or partition.isr
        new_leader = partition.leader_id
        if new_leader not in alive:
            new_leader = next((b for b in new_isr if b in alive), None)
        if new_isr == partition.isr and new_leader == partition.leader_id:
            continue
        if new_leader != partition.leader_id:
            partition.leader_id = new_leader
            partition.leader_epoch += 1
            report.elected[f"{partition.topic_id}-{partition.index}"] = new_leader
        partition.isr = new_isr
        partition.save(update_fields=["leader", "leader_epoch", "isr"])
        report.isr_changed += 1


def place_unplaced_partitions(report: TickReport) -> None:
    """Partitions created while no broker node was alive get their replicas now."""
    slots = [BrokerSlot(b.id, b.rack) for b in Broker.objects.alive()]
    if not slots:
        return
    unplaced = Partition.objects.select_related("topic").filter(replicas__isnull=True)
    for partition in unplaced.select_for_update(of=("self",)):
        rf = min(partition.topic.replication_factor, len(slots))
        try:
            replicas = assign_replicas(slots, 1, rf, first_partition=partition.index)
        except PlacementError:  # pragma: no cover - rf is capped above
            continue
        ids = replicas[partition.index]
        Replica.objects.bulk_create(
            Replica(partition=partition, broker_id=b, position=i) for i, b in enumerate(ids)
        )
        partition.leader_id = ids[0]
        partition.leader_epoch += 1
        partition.isr = ids[:1]
        partition.save(update_fields=["leader", "leader_epoch", "isr"])
        report.placed.append(str(partition))


def run_controller_pass(identity: str) -> TickReport:
    """One pass of the controller, if ``identity`` holds (or can take) the lease."""
    report = TickReport()
    with transaction.atomic():
        epoch = acquire_lease(identity)
    if epoch is None:
        return report
    report.is_controller = True
    with transaction.atomic():
        if not _still_controller(epoch):
            return report
        update_broker_liveness(report)
        elect_leaders(report)
        place_unplaced_partitions(report)
        if report.changed:
            ClusterState.bump_metadata_version()
    if report.changed:
        log.info("controller pass: %s", report)
    return report
