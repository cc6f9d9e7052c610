"""A running broker node: registration, heartbeat, metadata refresh, replicas and the listener.

Threads: the Celery worker keeps its own (consumer, pool); the node adds an event-loop thread
(the Kafka listener and every log write: the logs' single writer) and a metadata thread
(heartbeat, and a reload of the snapshot whenever the metadata version moves).
"""

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.db import close_old_connections, connection

from brokers.node import registration
from brokers.node.metadata import MetadataSnapshot, load_snapshot, metadata_version
from brokers.node.replicas import ReplicaManager
from brokers.node.services import NodeServices
from brokers.protocol.server import KafkaServer, ListenerSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

_current: "BrokerNode | None" = None


def current_node() -> "BrokerNode | None":
    """The broker node running in this process, for its control-command tasks."""
    return _current


HEARTBEAT_INTERVAL_S = 1.0
# Broker nodes see metadata changes within this long of their commit.
METADATA_POLL_INTERVAL_S = 0.2


@dataclass(frozen=True)
class NodeSettings:
    broker_id: int
    data_dir: Path
    kafka_host: str
    kafka_port: int
    advertised_host: str | None
    advertised_port: int | None
    rack: str
    requires_auth: bool
    open_tenant: str

    @classmethod
    def from_options(cls, broker_id: int, options: Mapping[str, object]) -> "NodeSettings":
        data_dir = options.get("data_dir") or settings.DJAFKA_DATA_DIR / f"broker-{broker_id}"
        return cls(
            broker_id=broker_id,
            data_dir=Path(str(data_dir)),
            kafka_host=str(options.get("kafka_host") or "127.0.0.1"),
            kafka_port=int(options.get("kafka_port") or 0),
            advertised_host=options.get("advertised_host") or None,  # type: ignore[arg-type]
            advertised_port=options.get("advertised_port") or None,  # type: ignore[arg-type]
            rack=str(options.get("rack") or ""),
            requires_auth=not settings.DJAFKA_KAFKA_OPEN_TENANT,
            open_tenant=settings.DJAFKA_KAFKA_OPEN_TENANT,
        )


class BrokerNode:
    """Start with :meth:`start` (returns once the listener is up); stop with :meth:`stop`."""

    def __init__(self, node_settings: NodeSettings):
        self.settings = node_settings
        self.replicas = ReplicaManager(node_settings.broker_id, node_settings.data_dir)
        self.snapshot: MetadataSnapshot | None = None
        self.loop = asyncio.new_event_loop()
        self.services = NodeServices(self)
        self.server: KafkaServer | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._loop_thread = threading.Thread(target=self._run_loop, name="kafka-listener")
        self._metadata_thread = threading.Thread(target=self._watch_metadata, name="metadata")
        self._maintenance_thread = threading.Thread(
            target=self._maintain_logs, name="log-maintenance"
        )
        self._startup_error: BaseException | None = None

    @property
    def broker_id(self) -> int:
        return self.settings.broker_id

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._loop_thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._startup_error
        host, port = self.server.address
        advertised = (
            self.settings.advertised_host or host,
            self.settings.advertised_port or port,
        )
        registration.register_broker(self.broker_id, *advertised, rack=self.settings.rack)
        self._apply_snapshot(load_snapshot())
        self._metadata_thread.start()
        self._maintenance_thread.start()
        global _current
        _current = self
        log.info("broker %d serving Kafka on %s:%d", self.broker_id, host, port)

    def stop(self) -> None:
        global _current
        _current = None
        self._stopping.set()
        try:
            registration.deregister_broker(self.broker_id)
        except Exception:  # the database may be gone at shutdown; the timeout covers us
            log.exception("could not deregister broker %d", self.broker_id)
        for thread in (self._metadata_thread, self._maintenance_thread):
            if thread.is_alive():
                thread.join(timeout=10)
        if self._loop_thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop_loop)
            self._loop_thread.join(timeout=10)
        connection.close()

    # --- the event loop thread -------------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        listener = ListenerSettings(
            host=self.settings.kafka_host,
            port=self.settings.kafka_port,
            requires_auth=self.settings.requires_auth,
        )
        self.server = KafkaServer(self.services, settings=listener)
        try:
            self.loop.run_until_complete(self.server.start())
            self.loop.run_until_complete(self.services.groups.start())  # offset expiry
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.server.stop())
            self.loop.run_until_complete(self.services.groups.close())
            self.replicas.close()
            self.loop.close()

    def _stop_loop(self) -> None:
        self.loop.stop()

    def call_in_loop(self, fn: Callable[[], T], timeout_s: float = 30) -> T:
        """Run ``fn`` on the event loop thread (the logs' writer) and wait for its result."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout_s)

    # --- the metadata thread ---------------------------------------------------------------

    def _apply_snapshot(self, snapshot: MetadataSnapshot) -> None:
        self.call_in_loop(lambda: self._install_snapshot(snapshot))

    def _install_snapshot(self, snapshot: MetadataSnapshot) -> None:
        # Two loaders may race (the metadata thread, an admin change): never go back in time.
        if self.snapshot is not None and snapshot.version < self.snapshot.version:
            return
        self.replicas.sync(snapshot)
        self.snapshot = snapshot

    def _watch_metadata(self) -> None:
        since_heartbeat = 0.0
        while not self._stopping.wait(METADATA_POLL_INTERVAL_S):
            try:
                close_old_connections()
                since_heartbeat += METADATA_POLL_INTERVAL_S
                if since_heartbeat >= HEARTBEAT_INTERVAL_S:
                    registration.heartbeat(self.broker_id)
                    since_heartbeat = 0.0
                if metadata_version() != self.snapshot.version:
                    self._apply_snapshot(load_snapshot())
            except Exception:
                log.exception("broker %d: metadata refresh failed; retrying", self.broker_id)
        connection.close()

    def refresh_metadata(self) -> None:
        """Reload the snapshot now (from any thread but the event loop's)."""
        self._apply_snapshot(_load_snapshot_in_thread())

    async def refresh_metadata_async(self) -> None:
        """Reload the snapshot now, from the event loop (after an admin request changed it)."""
        snapshot = await asyncio.to_thread(_load_snapshot_in_thread)
        self._install_snapshot(snapshot)


    # --- log maintenance (retention and compaction, as Kafka's log cleaner) -----------------

    def run_log_maintenance(self) -> dict[str, int]:
        """Delete segments past retention and compact compacted logs; counts of each.

        PartitionLog takes its own lock for these, so they run here, beside the writer.
        """
        deleted = compacted = 0
        for replica in list(self.replicas.logs.values()):
            try:
                if replica.config.is_delete_enabled:
                    deleted += replica.delete_old_segments()
                if replica.config.is_compacted:
                    replica.compact()
                    compacted += 1
            except Exception:
                log.exception("log maintenance of %s failed", replica.directory)
        return {"segments_deleted": deleted, "logs_compacted": compacted}

    def _maintain_logs(self) -> None:
        while not self._stopping.wait(settings.DJAFKA_LOG_MAINTENANCE_INTERVAL_S):
            self.run_log_maintenance()


def _load_snapshot_in_thread() -> MetadataSnapshot:
    close_old_connections()
    return load_snapshot()
