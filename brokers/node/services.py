"""What the Kafka listener of a broker node reaches: metadata, logs, topic admin, and SASL.

Composes the node's parts behind the protocol's seam (brokers/protocol/services.py): handlers
see tenants' topics by their bare names, and the tenant comes from the connection's principal
(SASL/PLAIN with an API key) or, on an open listener, from DJAFKA_KAFKA_OPEN_TENANT.
"""

from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from brokers.groups.coordinator import GroupCoordinator
from brokers.groups.settings import GroupSettings
from brokers.node.admin_service import DjangoAdminService
from brokers.node.group_store import DjangoGroupStore
from brokers.node.log_manager import ReplicaLogManager
from brokers.node.metadata_view import SnapshotMetadataView
from brokers.node.producer_ids import ProducerIdAllocator
from brokers.node.snapshot import MetadataSnapshot
from brokers.protocol.services import Principal
from djafka.internal_auth import internal_tenant
from djafka.models import ApiKey, Tenant

if TYPE_CHECKING:
    from brokers.node.node import BrokerNode


class NodeServices:
    """The BrokerServices of one broker node."""

    def __init__(self, node: "BrokerNode"):
        self.node = node
        self.node_id = node.broker_id
        self.auto_create_topics_enable = settings.DJAFKA_AUTO_CREATE_TOPICS
        self.metadata = SnapshotMetadataView(self._snapshot, self.tenant_of)
        self.log = ReplicaLogManager(
            node.replicas, self._snapshot, node.broker_id, self.tenant_of
        )
        self.admin = DjangoAdminService(self.tenant_of, on_change=node.refresh_metadata_async)
        self.allocate_producer_id = ProducerIdAllocator().allocate
        self.groups = GroupCoordinator(
            node.broker_id,
            brokers=self.metadata.brokers,
            tenant_of=self.tenant_of,
            store=DjangoGroupStore(),
            settings=GroupSettings(
                offsets_retention_ms=round(settings.DJAFKA_OFFSETS_RETENTION_MINUTES * 60_000),
                offsets_retention_check_interval_ms=(
                    settings.DJAFKA_OFFSETS_RETENTION_CHECK_INTERVAL_MS
                ),
            ),
        )

    def _snapshot(self) -> MetadataSnapshot:
        return self.node.snapshot

    def tenant_of(self, principal: Principal | None) -> str:
        """The tenant a connection acts for."""
        if principal is not None and principal.tenant:
            return principal.tenant
        return self.node.settings.open_tenant

    async def authenticate_plain(self, username: str, password: str) -> Principal | None:
        """SASL/PLAIN: username is an API key's prefix, password its secret."""
        return await _authenticate(username, password)


@sync_to_async(thread_sensitive=False)
def _authenticate(prefix: str, secret: str) -> Principal | None:
    close_old_connections()
    if (tenant := internal_tenant(prefix, secret)) is not None:
        if not Tenant.objects.filter(name=tenant, is_active=True).exists():
            return None
        return Principal(name=prefix, tenant=tenant)
    api_key = ApiKey.authenticate(prefix, secret)
    if api_key is None:
        return None
    return Principal(name=api_key.prefix, tenant=api_key.tenant.name)
