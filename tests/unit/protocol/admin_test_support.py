"""A Kafka listener over the test database: the real SnapshotMetadataView and DjangoAdminService.

Tests of the Metadata and admin handlers drive it with real clients. The listener runs in a
thread of its own (ServerThread); its broker row is written with the listener's address and
a fresh heartbeat, so clients that follow the advertised address reach it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.db import close_old_connections
from django.utils import timezone
from protocol_test_support import CLUSTER_ID, NODE_ID, ServerThread

from brokers.models import Broker, ClusterState, Topic
from brokers.node.admin_service import DjangoAdminService
from brokers.node.metadata import load_snapshot
from brokers.node.metadata_view import SnapshotMetadataView
from brokers.node.snapshot import MetadataSnapshot
from brokers.protocol.registry import Registry, default_registry
from brokers.protocol.services import Principal

ADMIN_HANDLER_MODULES = (
    "brokers.protocol.metadata",
    "brokers.protocol.create_topics",
    "brokers.protocol.delete_topics",
    "brokers.protocol.create_partitions",
    "brokers.protocol.describe_configs",
    "brokers.protocol.alter_configs",
    "brokers.protocol.incremental_alter_configs",
)


def admin_registry() -> Registry:
    """The default handlers plus Metadata and the admin APIs (whether listed there yet or not)."""
    registry = default_registry()
    for module in ADMIN_HANDLER_MODULES:
        registry.register_module(module)
    return registry


def load_snapshot_fresh() -> MetadataSnapshot:
    """load_snapshot in whatever thread, without leaving a database connection behind."""
    close_old_connections()
    try:
        return load_snapshot()
    finally:
        close_old_connections()


class DatabaseServices:
    """BrokerServices over the test database; SASL users map to tenants by name.

    An unauthenticated connection (plaintext listener) acts for `open_tenant`, as a broker
    node's open listener does (DJAFKA_KAFKA_OPEN_TENANT).
    """

    __test__ = False

    def __init__(
        self,
        open_tenant: str = "acme",
        users: dict[str, tuple[str, str]] | None = None,
        auto_create_topics_enable: bool = True,
    ) -> None:
        self.node_id = NODE_ID
        self.open_tenant = open_tenant
        self.users = users or {}
        self.auto_create_topics_enable = auto_create_topics_enable
        self.snapshot: MetadataSnapshot | None = None
        self.metadata = SnapshotMetadataView(lambda: self.snapshot, self.tenant_of)
        self.admin = DjangoAdminService(
            self.tenant_of,
            on_change=self.reload_async,
            auto_create_topics_enable=auto_create_topics_enable,
        )
        self.log: Any = None
        self.groups: Any = None

    def tenant_of(self, principal: Principal | None) -> str:
        if principal is not None and principal.tenant:
            return principal.tenant
        return self.open_tenant

    def reload(self) -> None:
        """Load the snapshot now (from the test's thread, after writing rows directly)."""
        self.snapshot = load_snapshot_fresh()

    async def reload_async(self) -> None:
        self.snapshot = await asyncio.to_thread(load_snapshot_fresh)

    async def authenticate_plain(self, username: str, password: str) -> Principal | None:
        expected = self.users.get(username)
        if expected is None or expected[0] != password:
            return None
        return Principal(name=username, tenant=expected[1])


class AdminServer(ServerThread):
    """A listener with the admin handlers over DatabaseServices, its broker row alive."""

    def __init__(self, services: DatabaseServices, requires_auth: bool = False) -> None:
        super().__init__(services, registry=admin_registry(), requires_auth=requires_auth)  # type: ignore[arg-type]
        self.services: DatabaseServices = services  # type: ignore[assignment]

    def __enter__(self) -> AdminServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        host, port = self.address
        state = ClusterState.get()
        if state.cluster_id != CLUSTER_ID:
            ClusterState.objects.filter(pk=1).update(cluster_id=CLUSTER_ID)
        add_live_broker(NODE_ID, host, port)
        self.services.reload()
        return self


def add_live_broker(broker_id: int, host: str = "127.0.0.1", port: int = 9092) -> None:
    Broker.objects.update_or_create(
        id=broker_id,
        defaults={
            "host": host,
            "port": port,
            "state": Broker.State.ALIVE,
            "last_heartbeat_at": timezone.now(),
        },
    )
    ClusterState.bump_metadata_version()


def topic_row(tenant_name: str, name: str) -> Topic | None:
    return (
        Topic.objects.filter(tenant__name=tenant_name, name=name).prefetch_related("partitions")
    ).first()
