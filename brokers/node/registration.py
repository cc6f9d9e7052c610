"""A broker node's row in the cluster: register on start, heartbeat, mark stopped on exit."""

import logging

from django.db import transaction
from django.utils import timezone

from brokers.models import Broker, ClusterState

log = logging.getLogger(__name__)


class BrokerIdInUse(RuntimeError):
    """Another live broker node already has this id (as Kafka's InconsistentBrokerIdException)."""


def register_broker(broker_id: int, host: str, port: int, rack: str = "") -> None:
    """Create or update this node's row as alive with a fresh heartbeat."""
    with transaction.atomic():
        existing = Broker.objects.select_for_update().filter(id=broker_id).first()
        if (
            existing is not None
            and existing.is_alive
            and (existing.host, existing.port) != (host, port)
        ):
            raise BrokerIdInUse(
                f"Broker id {broker_id} is held by a live node at {existing.host}:"
                f"{existing.port}; give this node another --broker-id."
            )
        Broker.objects.update_or_create(
            id=broker_id,
            defaults={
                "host": host,
                "port": port,
                "rack": rack,
                "state": Broker.State.ALIVE,
                "last_heartbeat_at": timezone.now(),
            },
        )
        ClusterState.bump_metadata_version()
    log.info("broker %d registered at %s:%d", broker_id, host, port)


def heartbeat(broker_id: int) -> None:
    """Refresh the heartbeat; the controller decides alive or dead from it."""
    Broker.objects.filter(id=broker_id).update(last_heartbeat_at=timezone.now())


def deregister_broker(broker_id: int) -> None:
    """A clean shutdown: the controller moves leadership away at once, without the timeout."""
    with transaction.atomic():
        Broker.objects.filter(id=broker_id).update(state=Broker.State.STOPPED)
        ClusterState.bump_metadata_version()
