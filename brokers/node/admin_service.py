"""DjangoAdminService: the protocol's AdminService over brokers/services.py (every door's rules).

The Kafka admin APIs (CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs,
AlterConfigs, IncrementalAlterConfigs) and Metadata's auto-creation reach topics through here.
Each call resolves the tenant from the principal, runs the service function in a worker thread
(the event loop never waits on the database), and turns TopicError into Kafka's error code and
message. After a change it calls `on_change()`, with which the node reloads its metadata
snapshot at once: clients create a topic and ask Metadata for it straight away.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, transaction

from brokers import services
from brokers.models import Topic
from brokers.protocol.create_topics import CreatedTopic
from brokers.protocol.describe_configs import STATIC_BROKER_CONFIG
from brokers.protocol.errors import ERROR_CODES, ErrorCode
from brokers.protocol.services import AdminResult, ConfigEntry, Principal
from brokers.topic_config import (
    TOPIC_CONFIGS,
    InvalidTopicName,
    validate_topic_name,
)
from djafka.models import Tenant

log = logging.getLogger(__name__)

T = TypeVar("T")

# Kafka's ConfigSource ids.
DYNAMIC_TOPIC_CONFIG = 1
DEFAULT_CONFIG = 5

# Kafka's ConfigType id of each TOPIC_CONFIGS kind.
CONFIG_TYPES = {"boolean": 1, "string": 2, "int": 3, "long": 5, "list": 7}

# The broker settings Kafka derives each topic config's default from (LogConfig's synonyms).
BROKER_SYNONYMS = {
    "cleanup.policy": "log.cleanup.policy",
    "retention.ms": "log.retention.ms",
    "retention.bytes": "log.retention.bytes",
    "segment.bytes": "log.segment.bytes",
    "segment.ms": "log.roll.ms",
    "max.message.bytes": "message.max.bytes",
    "min.insync.replicas": "min.insync.replicas",
    "message.timestamp.type": "log.message.timestamp.type",
    "delete.retention.ms": "log.cleaner.delete.retention.ms",
    "min.compaction.lag.ms": "log.cleaner.min.compaction.lag.ms",
    "flush.messages": "log.flush.interval.messages",
    "flush.ms": "log.flush.interval.ms",
}


class _Refused(Exception):
    """A request answered with an error before any service function ran."""

    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.result = AdminResult(error, message)


class DjangoAdminService:
    """AdminService (brokers/protocol/services.py) for the tenant `tenant_of(principal)` names.

    `on_change` (sync or async) runs after every change that committed; the default partition
    count and replication factor are what -1 in CreateTopics and auto-creation mean (Kafka's
    num.partitions and default.replication.factor).
    """

    def __init__(
        self,
        tenant_of: Callable[[Principal | None], str],
        on_change: Callable[[], Awaitable[None] | None] | None = None,
        *,
        default_partitions: int = 1,
        default_replication_factor: int = 1,
        auto_create_topics_enable: bool | None = None,
    ) -> None:
        self._tenant_of = tenant_of
        self._on_change = on_change
        self.default_partitions = default_partitions
        self.default_replication_factor = default_replication_factor
        self.auto_create_topics_enable = (
            settings.DJAFKA_AUTO_CREATE_TOPICS
            if auto_create_topics_enable is None
            else auto_create_topics_enable
        )

    # --- AdminService ------------------------------------------------------------------

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
        tenant_name = self._tenant_of(principal)
        partitions = self.default_partitions if num_partitions == -1 else num_partitions
        factor = self.default_replication_factor if replication_factor == -1 else replication_factor

        def create() -> AdminResult:
            nulls = sorted(key for key, value in configs.items() if value is None)
            if nulls:
                # Kafka refuses null config values in CreateTopics (ZkAdminManager, KRaft alike).
                raise _Refused(
                    ErrorCode.invalid_config,
                    f"Null value not supported for topic configs: {','.join(nulls)}",
                )
            tenant = _tenant(tenant_name)
            topic = services.create_topic(
                tenant, name, partitions, factor, dict(configs), validate_only=validate_only
            )
            return CreatedTopic(
                topic_id=None if validate_only else topic.topic_id,
                num_partitions=topic.partition_count,
                replication_factor=topic.replication_factor,
                configs=tuple(config_entries(topic.configs, None)),
            )

        return await self._run(create, changes=not validate_only)

    async def delete_topic(self, principal: Principal | None, name: str) -> AdminResult:
        tenant_name = self._tenant_of(principal)

        def delete() -> AdminResult:
            topic = _topic(tenant_name, name, validate_name=False)
            services.delete_topic(topic)
            return AdminResult(topic_id=topic.topic_id)

        return await self._run(delete, changes=True)

    async def create_partitions(
        self, principal: Principal | None, name: str, count: int, *, validate_only: bool
    ) -> AdminResult:
        tenant_name = self._tenant_of(principal)

        def grow() -> AdminResult:
            topic = _topic(tenant_name, name)
            services.add_partitions(topic, count, validate_only=validate_only)
            return AdminResult(topic_id=topic.topic_id)

        return await self._run(grow, changes=not validate_only)

    async def describe_topic_configs(
        self, principal: Principal | None, name: str, keys: Sequence[str] | None
    ) -> tuple[AdminResult, Sequence[ConfigEntry]]:
        tenant_name = self._tenant_of(principal)
        entries: list[ConfigEntry] = []

        def describe() -> AdminResult:
            topic = _topic(tenant_name, name)
            entries.extend(config_entries(topic.configs, keys))
            return AdminResult(topic_id=topic.topic_id)

        result = await self._run(describe, changes=False)
        return result, entries if result.error_code == 0 else ()

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
        tenant_name = self._tenant_of(principal)

        def alter() -> AdminResult:
            with transaction.atomic():
                topic = _topic(tenant_name, name, for_update=True)
                deleting = set(delete_configs)
                if replace_all:
                    # AlterConfigs: whatever is not given returns to its default.
                    deleting |= set(topic.configs) - set(set_configs)
                services.alter_topic_configs(
                    topic, dict(set_configs), deleting, validate_only=validate_only
                )
            return AdminResult(topic_id=topic.topic_id)

        return await self._run(alter, changes=not validate_only)

    # --- DescribeConfigs of BROKER resources (brokers/protocol/describe_configs.py) -----------

    def broker_configs(self) -> Sequence[ConfigEntry]:
        """This broker's settings as Kafka names them; read-only (static) here."""
        values = {
            "auto.create.topics.enable": ("boolean", str(self.auto_create_topics_enable).lower()),
            "num.partitions": ("int", str(self.default_partitions)),
            "default.replication.factor": ("int", str(self.default_replication_factor)),
        }
        for topic_config, broker_config in BROKER_SYNONYMS.items():
            definition = TOPIC_CONFIGS[topic_config]
            values[broker_config] = (definition.kind, definition.default)
        return [
            ConfigEntry(
                name=name,
                value=value,
                source=STATIC_BROKER_CONFIG,
                is_default=False,
                read_only=True,
                config_type=CONFIG_TYPES[kind],
            )
            for name, (kind, value) in sorted(values.items())
        ]

    # --- plumbing ----------------------------------------------------------------------

    async def _run(self, operation: Callable[[], AdminResult], *, changes: bool) -> AdminResult:
        """Run `operation` in a worker thread; TopicError becomes Kafka's code and message."""
        try:
            result = await _in_thread(operation)
        except _Refused as exc:
            return exc.result
        except services.TopicError as exc:
            return AdminResult(
                ERROR_CODES.get(exc.error, ErrorCode.unknown_server_error), exc.message
            )
        if changes:
            await self._changed()
        return result

    async def _changed(self) -> None:
        if self._on_change is None:
            return
        try:
            outcome = self._on_change()
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            # The change is committed; the node's metadata poll picks it up a moment later.
            log.exception("reloading metadata after an admin change failed")


def config_entries(overrides: Mapping[str, str], keys: Sequence[str] | None) -> list[ConfigEntry]:
    """Every topic config (or those in `keys`, in table order) as DescribeConfigs shows it."""
    wanted = None if keys is None else set(keys)
    entries = []
    for name, definition in TOPIC_CONFIGS.items():
        if wanted is not None and name not in wanted:
            continue
        is_set = name in overrides
        entries.append(
            ConfigEntry(
                name=name,
                value=overrides[name] if is_set else definition.default,
                source=DYNAMIC_TOPIC_CONFIG if is_set else DEFAULT_CONFIG,
                is_default=not is_set,
                read_only=False,
                is_sensitive=definition.is_sensitive,
                config_type=CONFIG_TYPES[definition.kind],
                documentation=definition.doc,
            )
        )
    return entries


async def _in_thread(operation: Callable[[], T]) -> T:
    return await sync_to_async(_with_fresh_connection, thread_sensitive=False)(operation)


def _with_fresh_connection(operation: Callable[[], T]) -> T:
    """Django's request hygiene in a worker thread: drop stale connections before and after."""
    close_old_connections()
    try:
        return operation()
    finally:
        close_old_connections()


def _tenant(name: str) -> Tenant:
    tenant = Tenant.objects.filter(name=name).first()
    if tenant is None:
        raise _Refused(ErrorCode.topic_authorization_failed, f"No tenant '{name}' to act for.")
    return tenant


def _topic(
    tenant_name: str, name: str, *, validate_name: bool = True, for_update: bool = False
) -> Topic:
    """The tenant's topic, or INVALID_TOPIC_EXCEPTION / UNKNOWN_TOPIC_OR_PARTITION as Kafka."""
    if validate_name:
        try:
            validate_topic_name(name)
        except InvalidTopicName as exc:
            raise services.InvalidTopic(str(exc)) from exc
    topics: Any = Topic.objects.select_related("tenant")
    if for_update:
        topics = topics.select_for_update()
    topic = topics.filter(tenant__name=tenant_name, name=name).first()
    if topic is None:
        raise services.UnknownTopic(f"Topic '{name}' does not exist.")
    return topic
