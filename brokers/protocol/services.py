"""What protocol handlers need from the broker node: the seam the node implements (typing.Protocol).

The broker node (brokers/node/) builds one object satisfying `BrokerServices` over the cluster
metadata (Django models) and the log manager (brokers/log/), and hands it to the server. This
package never imports those; tests pass small in-memory fakes. Members are added here when a
handler needs them, each with the Kafka meaning it must have.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .chunks import FileSlice

if TYPE_CHECKING:
    from .group_services import GroupCoordinator


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a connection authenticated as: a tenant's API key presented as SASL/PLAIN username."""

    name: str
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class BrokerEndpoint:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One partition as Metadata shows it; leader_id -1 while the partition has no leader."""

    index: int
    leader_id: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic of the principal's tenant, by the bare name the tenant uses."""

    name: str
    topic_id: uuid.UUID
    partitions: tuple[PartitionInfo, ...]
    is_internal: bool = False


class MetadataView(Protocol):
    """Read-only cluster metadata as this broker last saw it (for Metadata, FindCoordinator...)."""

    cluster_id: str
    controller_id: int

    def brokers(self) -> Sequence[BrokerEndpoint]:
        """The live broker nodes, with the listener address clients should use."""
        ...

    def topics(self, principal: Principal | None) -> Sequence[TopicInfo]:
        """Every topic of the principal's tenant, sorted by name."""
        ...

    def topic(self, principal: Principal | None, name: str) -> TopicInfo | None:
        """One topic of the principal's tenant by name, or None."""
        ...

    def topic_by_id(self, principal: Principal | None, topic_id: uuid.UUID) -> TopicInfo | None:
        """One topic of the principal's tenant by topic id (Fetch v13+, DeleteTopics v6+)."""
        ...


@dataclass(frozen=True, slots=True)
class AdminResult:
    """The outcome of one admin operation on one topic: Kafka's error code and message."""

    error_code: int = 0
    error_message: str | None = None
    topic_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """A topic config as DescribeConfigs reports it.

    source: Kafka's ConfigSource: 1 DYNAMIC_TOPIC_CONFIG (set on the topic), 5
    DEFAULT_CONFIG (the broker default). config_type: Kafka's ConfigType (1 BOOLEAN, 2 STRING,
    3 INT, 4 SHORT, 5 LONG, 6 DOUBLE, 7 LIST, 8 CLASS, 9 PASSWORD).
    """

    name: str
    value: str | None
    source: int
    is_default: bool
    read_only: bool = False
    is_sensitive: bool = False
    config_type: int = 0
    documentation: str | None = None


class AdminService(Protocol):
    """Topic administration for the principal's tenant; every door shares the same rules.

    Each call validates as Kafka does and answers with Kafka's error code (TOPIC_ALREADY_EXISTS,
    INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_CONFIG,
    POLICY_VIOLATION, UNKNOWN_TOPIC_OR_PARTITION, ...) and a message for a person.
    """

    async def create_topic(
        self,
        principal: Principal | None,
        name: str,
        num_partitions: int,
        replication_factor: int,
        configs: Mapping[str, str | None],
        *,
        validate_only: bool,
    ) -> AdminResult:
        """num_partitions / replication_factor -1 take the broker defaults (KIP-464)."""
        ...

    async def delete_topic(self, principal: Principal | None, name: str) -> AdminResult: ...

    async def create_partitions(
        self, principal: Principal | None, name: str, count: int, *, validate_only: bool
    ) -> AdminResult:
        """Grow the topic to `count` partitions in all."""
        ...

    async def describe_topic_configs(
        self, principal: Principal | None, name: str, keys: Sequence[str] | None
    ) -> tuple[AdminResult, Sequence[ConfigEntry]]:
        """Every config (or those in `keys`), with value, source and default flag."""
        ...

    async def alter_topic_configs(
        self,
        principal: Principal | None,
        name: str,
        set_configs: Mapping[str, str],
        delete_configs: Sequence[str],
        *,
        replace_all: bool,
        validate_only: bool,
    ) -> AdminResult:
        """Incremental (replace_all False: SET / DELETE) or AlterConfigs' whole replacement."""
        ...


@dataclass(frozen=True, slots=True)
class AppendResult:
    error_code: int
    base_offset: int = -1
    log_append_time_ms: int = -1
    log_start_offset: int = -1
    error_message: str | None = None
    """The reason for an error, for ProduceResponse's error_message (v8+)."""


@dataclass(frozen=True, slots=True)
class ReadResult:
    error_code: int
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    records: bytes | FileSlice | None = None
    """Whole batches as they lie in the segment; a FileSlice is sent with sendfile."""


class LogManager(Protocol):
    """The partitions this broker leads, as the Produce and Fetch handlers use them.

    Topic names are as the tenant sees them; mapping to a tenant's real partition is the
    implementation's job, as is checking the principal may write or read.
    """

    async def append(
        self,
        principal: Principal | None,
        topic: str,
        partition: int,
        records: bytes,
        *,
        required_acks: int,
        timeout_ms: int,
    ) -> AppendResult:
        """Validate and append one RecordBatch-v2 blob; answer when `required_acks` hold."""
        ...

    async def read(
        self,
        principal: Principal | None,
        topic: str,
        partition: int,
        *,
        fetch_offset: int,
        max_bytes: int,
        read_committed: bool,
        current_leader_epoch: int = -1,
        min_one_batch: bool = True,
    ) -> ReadResult:
        """Batches from `fetch_offset`, at most `max_bytes`.

        With `min_one_batch` a first batch larger than `max_bytes` is returned whole (KIP-74);
        a `current_leader_epoch` other than -1 is checked against the leader's (KIP-320).
        """
        ...

    async def list_offset(
        self,
        principal: Principal | None,
        topic: str,
        partition: int,
        *,
        timestamp: int,
        current_leader_epoch: int,
    ) -> OffsetResult:
        """-2 earliest, -1 latest (the log end offset), -3 max timestamp, else by time."""
        ...

    async def wait_for_append(self, timeout_s: float) -> None:
        """Return when any partition led here gets records, or after `timeout_s` (long poll)."""
        ...


@dataclass(frozen=True, slots=True)
class OffsetResult:
    """ListOffsets' answer for one partition."""

    error_code: int
    timestamp: int = -1
    offset: int = -1
    leader_epoch: int = -1


class BrokerServices(Protocol):
    """Everything a handler may reach: one object per broker node."""

    node_id: int
    metadata: MetadataView
    log: LogManager
    admin: AdminService
    groups: GroupCoordinator
    """Consumer groups (FindCoordinator, JoinGroup, ... OffsetFetch): see group_services.py."""
    auto_create_topics_enable: bool
    """Kafka's auto.create.topics.enable: Metadata may create a missing topic when asked."""

    async def authenticate_plain(self, username: str, password: str) -> Principal | None:
        """SASL/PLAIN: the principal for these credentials, or None if they are wrong."""
        ...

    async def allocate_producer_id(self) -> int:
        """A producer id (InitProducerId) no producer of the cluster got before or gets later,
        whichever broker node hands it out and across restarts (Kafka's ProducerIdManager)."""
        ...
