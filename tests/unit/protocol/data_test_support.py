"""Test scaffolding for the data plane: a listener over REAL replica logs in a temporary folder.

`DataBroker` starts a KafkaServer in a thread (protocol_test_support.ServerThread) whose services
hold a ReplicaLogManager over a ReplicaManager's PartitionLogs, with a hand-built
MetadataSnapshot naming this broker (id 1) leader. The real Metadata handler
(brokers/protocol/metadata.py over brokers/node/metadata_view.py) lets clients find
partitions, leaders and topic ids.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import importlib
import struct
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from protocol_test_support import CLUSTER_ID, NODE_ID, ServerThread, WireClient, build

from brokers.groups.coordinator import GroupCoordinator
from brokers.groups.memory_store import InMemoryGroupStore
from brokers.log import compression
from brokers.log.batch import iter_batches
from brokers.log.records import Record, build_batch, decode_batch
from brokers.node.log_manager import ReplicaLogManager
from brokers.node.metadata_view import SnapshotMetadataView
from brokers.node.replicas import ReplicaManager
from brokers.node.snapshot import BrokerMeta, MetadataSnapshot, PartitionMeta, TopicMeta
from brokers.protocol import codec
from brokers.protocol.registry import Registry, default_registry
from brokers.protocol.services import Principal

T = TypeVar("T")

TENANT = "acme"
OTHER_BROKER_ID = 2
DATA_HANDLER_MODULES = (
    "brokers.protocol.metadata",
    "brokers.protocol.produce",
    "brokers.protocol.fetch",
    "brokers.protocol.list_offsets",
)


def topic_meta(
    name: str,
    partitions: int = 3,
    *,
    leader_id: int = NODE_ID,
    leader_epoch: int = 0,
    replicas: tuple[int, ...] = (NODE_ID,),
    configs: dict[str, str] | None = None,
    tenant: str = TENANT,
) -> TopicMeta:
    return TopicMeta(
        tenant=tenant,
        name=name,
        topic_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{name}"),
        replication_factor=len(replicas),
        configs=configs or {},
        partitions=tuple(
            PartitionMeta(index, leader_id, leader_epoch, replicas, replicas)
            for index in range(partitions)
        ),
    )


def default_topics() -> list[TopicMeta]:
    """`events` (3 partitions led here), `elsewhere` (a replica here, led by broker 2), `small`
    (max.message.bytes 2000)."""
    return [
        topic_meta("events", 3),
        topic_meta(
            "elsewhere",
            1,
            leader_id=OTHER_BROKER_ID,
            leader_epoch=4,
            replicas=(OTHER_BROKER_ID, NODE_ID),
        ),
        topic_meta("small", 1, configs={"max.message.bytes": "2000"}),
    ]


def tenant_of(principal: Principal | None) -> str:
    return TENANT


class DataServices:
    """BrokerServices with a real log manager; no SASL users, no admin."""

    def __init__(self, metadata: SnapshotMetadataView, log: ReplicaLogManager) -> None:
        self.node_id = NODE_ID
        self.metadata = metadata
        self.log = log
        self.admin: Any = None
        self.auto_create_topics_enable = False
        # Consumers with a group.id look up a coordinator: the real one, kept in memory.
        self.groups = GroupCoordinator(
            NODE_ID,
            brokers=metadata.brokers,
            tenant_of=lambda principal: TENANT,
            store=InMemoryGroupStore(self._partition_count),
        )

    def _partition_count(self, tenant: str, name: str) -> int | None:
        topic = self.metadata.topic(None, name)
        return None if topic is None else len(topic.partitions)

    async def authenticate_plain(self, username: str, password: str) -> Principal | None:
        return None

    async def allocate_producer_id(self) -> int:
        """InitProducerId: ids from a per-broker counter (the node claims blocks from the DB)."""
        self.producer_ids_allocated = getattr(self, "producer_ids_allocated", 0) + 1
        return 1000 + self.producer_ids_allocated


def data_registry() -> Registry:
    """The default handlers plus Metadata, Produce, Fetch and ListOffsets."""
    registry = default_registry()
    for module in DATA_HANDLER_MODULES:
        registry.register_module(module)
    return registry


class DataBroker:
    """A listener over real logs in `data_dir`; `with DataBroker(tmp_path) as broker: ...`."""

    def __init__(self, data_dir: Path, topics: Sequence[TopicMeta] | None = None) -> None:
        self.replicas = ReplicaManager(NODE_ID, data_dir)
        self.snapshot = MetadataSnapshot(
            version=1,
            cluster_id=CLUSTER_ID,
            brokers={},  # this broker, once its listener has a port (__enter__)
            topics={(t.tenant, t.name): t for t in (topics or default_topics())},
        )
        self.replicas.sync(self.snapshot)
        self.log_manager = ReplicaLogManager(
            self.replicas, lambda: self.snapshot, NODE_ID, tenant_of
        )
        metadata = SnapshotMetadataView(lambda: self.snapshot, tenant_of)
        self.services = DataServices(metadata, self.log_manager)
        self.thread = ServerThread(self.services, registry=data_registry())  # type: ignore[arg-type]

    @property
    def bootstrap(self) -> str:
        return self.thread.bootstrap

    @property
    def address(self) -> tuple[str, int]:
        return self.thread.address

    def log(self, topic: str, partition: int) -> Any:
        return self.replicas.get(TENANT, topic, partition)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's event loop (the logs' single writer) and return its result."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.thread.loop).result(10)

    def set_snapshot(self, snapshot: MetadataSnapshot) -> None:
        def install() -> None:
            self.replicas.sync(snapshot)
            self.snapshot = snapshot

        self.call(install)

    def wire(self) -> WireClient:
        return WireClient(self.address)

    def __enter__(self) -> DataBroker:
        self.thread.__enter__()
        host, port = self.address
        self.snapshot = dataclasses.replace(
            self.snapshot, brokers={NODE_ID: BrokerMeta(NODE_ID, host, port, "")}
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.thread.__exit__(*exc_info)
        self.replicas.close()


def batch_of(
    values: Sequence[bytes],
    *,
    keys: Sequence[bytes | None] | None = None,
    timestamp_ms: int | None = None,
    timestamps: Sequence[int] | None = None,
    codec_name: str = "none",
    producer_id: int = -1,
) -> bytes:
    """One RecordBatch v2 of `values` as a producer would send it (base offset 0).

    Every record gets `timestamp_ms` (None: now), or its own from `timestamps`.
    """
    keys = keys or [None] * len(values)
    stamps = timestamps or [timestamp_ms] * len(values)
    records = [
        Record(key=key, value=value, timestamp=stamp)
        for key, value, stamp in zip(keys, values, stamps, strict=True)
    ]
    return bytes(
        build_batch(
            records,
            0,
            compression.CODEC_IDS[codec_name],
            producer_id=producer_id,
            producer_epoch=0 if producer_id >= 0 else -1,
            base_sequence=0 if producer_id >= 0 else -1,
        )
    )


def corrupt_crc(batch: bytes) -> bytes:
    """The batch with its CRC32C flipped (bytes 17-20)."""
    (crc,) = struct.unpack_from(">I", batch, 17)
    return batch[:17] + struct.pack(">I", crc ^ 0xFFFFFFFF) + batch[21:]


def request(api_key: int, version: int, **values: Any) -> Any:
    """A kio request of (api_key, version) from keyword values (missing fields fail loudly)."""
    return codec.request_type(api_key, version)(**values)


def request_types(api_key: int, version: int) -> Any:
    """The kio module of a request version, for its nested classes."""
    return importlib.import_module(codec.request_type(api_key, version).__module__)


# --- raw requests over a WireClient ---------------------------------------------------------


def produce(
    wire: WireClient,
    topic: str,
    partition: int,
    records: bytes,
    *,
    version: int = 9,
    acks: int = 1,
    transactional_id: str | None = None,
    topic_id: uuid.UUID | None = None,
) -> Any:
    """One-partition Produce; the partition's response (or None when acks=0)."""
    types = request_types(0, version)
    topic_data = build(
        types.TopicProduceData,
        name=topic,
        topic_id=topic_id,
        partition_data=(types.PartitionProduceData(index=partition, records=records),),
    )
    message = build(
        codec.request_type(0, version),
        transactional_id=transactional_id,
        acks=acks,
        timeout=datetime.timedelta(seconds=5),
        topic_data=(topic_data,),
    )
    if acks == 0:
        wire.send(message)
        return None
    response = wire.call(message)
    return response.responses[0].partition_responses[0]


def fetch_request(
    partitions: dict[tuple[str, int], int],
    *,
    version: int = 12,
    max_wait_ms: int = 0,
    min_bytes: int = 1,
    max_bytes: int = 50 * 1024 * 1024,
    partition_max_bytes: int = 1024 * 1024,
    current_leader_epoch: int = -1,
    topic_ids: dict[str, uuid.UUID] | None = None,
    session_id: int = 0,
    session_epoch: int = -1,
    isolation_level: int = 0,
) -> Any:
    types = request_types(1, version)
    by_topic: dict[str, list[Any]] = {}
    for (topic, partition), offset in partitions.items():
        by_topic.setdefault(topic, []).append(
            build(
                types.FetchPartition,
                partition=partition,
                current_leader_epoch=current_leader_epoch,
                fetch_offset=offset,
                last_fetched_epoch=-1,
                log_start_offset=-1,
                partition_max_bytes=partition_max_bytes,
            )
        )
    topics = tuple(
        build(
            types.FetchTopic,
            topic=topic,
            topic_id=(topic_ids or {}).get(topic),
            partitions=tuple(parts),
        )
        for topic, parts in by_topic.items()
    )
    return build(
        codec.request_type(1, version),
        replica_id=-1,
        max_wait=datetime.timedelta(milliseconds=max_wait_ms),
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        isolation_level=isolation_level,
        session_id=session_id,
        session_epoch=session_epoch,
        topics=topics,
        forgotten_topics_data=(),
        rack_id="",
    )


def list_offsets_request(
    partitions: dict[tuple[str, int], int],
    *,
    version: int = 7,
    current_leader_epoch: int = -1,
    isolation_level: int = 0,
) -> Any:
    types = request_types(2, version)
    by_topic: dict[str, list[Any]] = {}
    for (topic, partition), timestamp in partitions.items():
        by_topic.setdefault(topic, []).append(
            build(
                types.ListOffsetsPartition,
                partition_index=partition,
                current_leader_epoch=current_leader_epoch,
                timestamp=timestamp,
            )
        )
    return build(
        codec.request_type(2, version),
        replica_id=-1,
        isolation_level=isolation_level,
        topics=tuple(
            types.ListOffsetsTopic(name=topic, partitions=tuple(parts))
            for topic, parts in by_topic.items()
        ),
        timeout=datetime.timedelta(seconds=5),
    )


def decode_records(data: bytes | None) -> list[Record]:
    """Every record of the whole batches in a fetch response's records field."""
    if not data:
        return []
    view = memoryview(data)
    out: list[Record] = []
    for position, size, _, _ in iter_batches(view):
        out.extend(decode_batch(view[position : position + size]))
    return out
