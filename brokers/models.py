"""Cluster metadata: broker nodes, topics, partitions, replicas, groups and committed offsets.

The database is the metadata quorum (as ZooKeeper was for Kafka); record bytes never live here.
"""

import base64
import uuid
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from brokers.topic_config import (
    InvalidConfig,
    InvalidTopicName,
    effective_configs,
    validate_topic_configs,
    validate_topic_name,
)
from djafka.models import Tenant

# A broker node is considered dead when it has not heartbeated for this long (Kafka's
# broker.session.timeout.ms default is 9 s).
BROKER_SESSION_TIMEOUT = timedelta(seconds=9)


class BrokerQuerySet(models.QuerySet):
    def alive(self) -> "BrokerQuerySet":
        """Brokers in state alive whose last heartbeat is inside the session timeout."""
        return self.filter(
            state=Broker.State.ALIVE,
            last_heartbeat_at__gte=timezone.now() - BROKER_SESSION_TIMEOUT,
        )


class Broker(models.Model):
    """A broker node: a Celery worker that owns partition replicas and serves the protocol."""

    class State(models.TextChoices):
        ALIVE = "alive", "Alive"
        DEAD = "dead", "Dead"
        STOPPED = "stopped", "Stopped (clean shutdown)"

    id = models.PositiveIntegerField(primary_key=True, help_text="Kafka's broker.id.")
    host = models.CharField(max_length=255, help_text="Advertised host for Kafka clients.")
    port = models.PositiveIntegerField(help_text="Advertised port for Kafka clients.")
    rack = models.CharField(max_length=100, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.ALIVE)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    registered_at = models.DateTimeField(auto_now_add=True)

    objects = BrokerQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"broker {self.id} ({self.host}:{self.port})"

    @property
    def is_alive(self) -> bool:
        """Alive by state and by a heartbeat inside the session timeout."""
        return (
            self.state == self.State.ALIVE
            and self.last_heartbeat_at is not None
            and timezone.now() - self.last_heartbeat_at < BROKER_SESSION_TIMEOUT
        )


class Topic(models.Model):
    """A tenant's named stream of records, split into partitions."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="topics")
    name = models.CharField(max_length=249)
    topic_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, help_text="Kafka's topic id (KIP-516)."
    )
    partition_count = models.PositiveIntegerField(default=1)
    replication_factor = models.PositiveSmallIntegerField(default=1)
    configs = models.JSONField(
        default=dict, blank=True, help_text="Config overrides; unset configs take the default."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="topic_unique_per_tenant"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant.name}/{self.name}" if self.tenant_id else self.name

    def clean(self) -> None:
        errors: dict[str, str | list[str]] = {}
        try:
            validate_topic_name(self.name)
        except InvalidTopicName as exc:
            errors["name"] = str(exc)
        try:
            self.configs = validate_topic_configs(self.configs or {})
        except InvalidConfig as exc:
            errors["configs"] = [f"{k}: {v}" for k, v in exc.errors.items()]
        if errors:
            raise ValidationError(errors)

    @property
    def effective_configs(self) -> dict[str, str]:
        return effective_configs(self.configs)


class Partition(models.Model):
    """One partition of a topic: who leads it, in which epoch, and which replicas are in sync."""

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="partitions")
    index = models.PositiveIntegerField()
    leader = models.ForeignKey(
        Broker, null=True, blank=True, on_delete=models.SET_NULL, related_name="led_partitions"
    )
    leader_epoch = models.PositiveIntegerField(default=0)
    isr = models.JSONField(default=list, blank=True, help_text="In-sync replica broker ids.")

    class Meta:
        ordering = ["topic", "index"]
        constraints = [
            models.UniqueConstraint(fields=["topic", "index"], name="partition_unique_index"),
        ]

    def __str__(self) -> str:
        return f"{self.topic.name}-{self.index}"

    @property
    def replica_ids(self) -> list[int]:
        return [r.broker_id for r in self.replicas.all()]


class Replica(models.Model):
    """A copy of a partition on a broker node; the first in order is the preferred leader."""

    partition = models.ForeignKey(Partition, on_delete=models.CASCADE, related_name="replicas")
    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="replicas")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["partition", "position"]
        constraints = [
            models.UniqueConstraint(fields=["partition", "broker"], name="replica_unique_broker"),
        ]

    def __str__(self) -> str:
        return f"{self.partition} on broker {self.broker_id}"


class ConsumerGroup(models.Model):
    """A Kafka consumer group: members share a topic's partitions, offsets are committed here."""

    class State(models.TextChoices):
        EMPTY = "Empty"
        PREPARING_REBALANCE = "PreparingRebalance"
        COMPLETING_REBALANCE = "CompletingRebalance"
        STABLE = "Stable"
        DEAD = "Dead"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="groups")
    group_id = models.CharField(max_length=255)
    state = models.CharField(max_length=24, choices=State.choices, default=State.EMPTY)
    protocol_type = models.CharField(max_length=64, blank=True, default="")
    protocol_name = models.CharField(
        max_length=64, blank=True, default="", help_text="The chosen assignor, e.g. 'range'."
    )
    generation_id = models.IntegerField(default=0)
    leader_member_id = models.CharField(max_length=255, blank=True, default="")
    state_changed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the group entered its state. An Empty group's committed offsets expire "
        "offsets.retention after it (KIP-211).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant__name", "group_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "group_id"], name="group_unique_per_tenant"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant.name}/{self.group_id}" if self.tenant_id else self.group_id


class GroupMember(models.Model):
    """A member of a consumer group in the current generation."""

    group = models.ForeignKey(ConsumerGroup, on_delete=models.CASCADE, related_name="members")
    member_id = models.CharField(max_length=255)
    group_instance_id = models.CharField(
        max_length=255, blank=True, default="", help_text="Static membership id (KIP-345)."
    )
    client_id = models.CharField(max_length=255, blank=True, default="")
    client_host = models.CharField(max_length=255, blank=True, default="")
    session_timeout_ms = models.PositiveIntegerField(default=45000)
    rebalance_timeout_ms = models.PositiveIntegerField(default=300000)
    protocols = models.JSONField(
        default=list, blank=True, help_text="Assignors offered by the member, with metadata."
    )
    assignment = models.BinaryField(default=b"", blank=True)
    joined_at = models.DateTimeField(auto_now_add=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["group", "member_id"]
        constraints = [
            models.UniqueConstraint(fields=["group", "member_id"], name="member_unique_id"),
        ]

    def __str__(self) -> str:
        return self.member_id


class CommittedOffset(models.Model):
    """The offset a group has committed for one partition: where it resumes reading."""

    group = models.ForeignKey(
        ConsumerGroup, on_delete=models.CASCADE, related_name="committed_offsets"
    )
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="committed_offsets")
    partition = models.PositiveIntegerField()
    offset = models.BigIntegerField()
    leader_epoch = models.IntegerField(default=-1)
    metadata = models.TextField(blank=True, default="")
    committed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["group", "topic", "partition"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "topic", "partition"], name="offset_unique_partition"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group.group_id} {self.topic.name}-{self.partition}@{self.offset}"


class ClusterState(models.Model):
    """The one row of cluster-wide state: id, metadata version, and the controller's lease.

    Every metadata change bumps ``metadata_version`` in its own transaction, so a broker node
    learns of a change by reading one integer. The controller holds its lease by
    compare-and-set on ``controller_epoch``, as Kafka fences a stale controller by its epoch.
    """

    cluster_id = models.CharField(max_length=64)
    metadata_version = models.BigIntegerField(default=0)
    controller = models.CharField(max_length=255, blank=True, default="")
    controller_epoch = models.BigIntegerField(default=0)
    controller_lease_expires_at = models.DateTimeField(null=True, blank=True)
    next_producer_id = models.BigIntegerField(
        default=0,
        help_text="The first producer id no broker node has claimed yet (InitProducerId): nodes "
        "claim blocks from here, advanced atomically, as Kafka's ProducerIdManager does.",
    )

    class Meta:
        verbose_name = "cluster state"

    def __str__(self) -> str:
        return f"cluster {self.cluster_id} (metadata v{self.metadata_version})"

    @classmethod
    def get(cls) -> "ClusterState":
        state, _ = cls.objects.get_or_create(pk=1, defaults={"cluster_id": new_cluster_id()})
        return state

    @classmethod
    def bump_metadata_version(cls) -> None:
        """Mark metadata changed; call inside the transaction that changes it."""
        updated = cls.objects.filter(pk=1).update(metadata_version=models.F("metadata_version") + 1)
        if not updated:
            cls.get()


def new_cluster_id() -> str:
    """A cluster id as Kafka makes them: a random UUID in URL-safe base64, 22 characters."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
