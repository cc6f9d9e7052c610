"""Topic lifecycle: create, add partitions, change configs, delete. Every door calls these.

Admin, the REST API and the Kafka protocol (CreateTopics, CreatePartitions, ...) all go through
this module, so a topic is checked and placed the same way whichever door it came in by.
"""

from collections.abc import Iterable, Mapping

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum

from brokers.controller.placement import BrokerSlot, PlacementError, assign_replicas
from brokers.models import Broker, ClusterState, Partition, Replica, Topic
from brokers.topic_config import (
    TOPIC_CONFIGS,
    InvalidConfig,
    InvalidTopicName,
    collision_key,
    validate_topic_configs,
    validate_topic_name,
)
from djafka.models import Tenant


class TopicError(Exception):
    """A topic request that cannot be carried out; ``error`` is Kafka's error name.

    ``field`` names the request field at fault, so REST can answer with field errors.
    """

    error = "UNKNOWN_SERVER_ERROR"
    field = "non_field_errors"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        if field:
            self.field = field


class TopicAlreadyExists(TopicError):
    error = "TOPIC_ALREADY_EXISTS"
    field = "name"


class UnknownTopic(TopicError):
    error = "UNKNOWN_TOPIC_OR_PARTITION"
    field = "name"


class InvalidTopic(TopicError):
    error = "INVALID_TOPIC_EXCEPTION"
    field = "name"


class InvalidPartitions(TopicError):
    error = "INVALID_PARTITIONS"
    field = "partition_count"


class InvalidReplicationFactor(TopicError):
    error = "INVALID_REPLICATION_FACTOR"
    field = "replication_factor"


class InvalidTopicConfig(TopicError):
    error = "INVALID_CONFIG"
    field = "configs"

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class PolicyViolation(TopicError):
    error = "POLICY_VIOLATION"


def _check_partition_count(count: int) -> None:
    limit = settings.DJAFKA_MAX_PARTITIONS_PER_TOPIC
    if not 1 <= count <= limit:
        raise InvalidPartitions(f"A topic has from 1 to {limit} partitions; {count} was asked.")


def _check_tenant_partition_quota(tenant: Tenant, adding: int) -> None:
    if tenant.max_partitions is None:
        return
    used = Topic.objects.filter(tenant=tenant).aggregate(n=Sum("partition_count"))["n"] or 0
    if used + adding > tenant.max_partitions:
        raise PolicyViolation(
            f"Tenant '{tenant.name}' may have {tenant.max_partitions} partitions in all; "
            f"it has {used} and {adding} more were asked.",
            field="partition_count",
        )


def _live_broker_slots() -> list[BrokerSlot]:
    return [BrokerSlot(b.id, b.rack) for b in Broker.objects.alive()]


def _place_partitions(topic: Topic, first: int, count: int) -> None:
    """Create partitions first..first+count-1 with replicas on live brokers.

    With no live broker node (a web tier started alone) the partitions are created without
    replicas; the controller places them when broker nodes register.
    """
    slots = _live_broker_slots()
    assignment: dict[int, list[int]] = {}
    if slots:
        try:
            assignment = assign_replicas(slots, count, topic.replication_factor, first)
        except PlacementError as exc:
            raise InvalidReplicationFactor(str(exc)) from exc
    for index in range(first, first + count):
        replicas = assignment.get(index, [])
        partition = Partition.objects.create(
            topic=topic,
            index=index,
            leader_id=replicas[0] if replicas else None,
            leader_epoch=0,
            # Followers join the ISR once they have caught up with the leader.
            isr=replicas[:1],
        )
        Replica.objects.bulk_create(
            Replica(partition=partition, broker_id=broker_id, position=position)
            for position, broker_id in enumerate(replicas)
        )


def create_topic(
    tenant: Tenant,
    name: str,
    partition_count: int = 1,
    replication_factor: int = 1,
    configs: Mapping[str, object] | None = None,
    validate_only: bool = False,
) -> Topic:
    """Create a topic with its partitions placed on live broker nodes (CreateTopics)."""
    try:
        validate_topic_name(name)
    except InvalidTopicName as exc:
        raise InvalidTopic(str(exc)) from exc
    try:
        clean_configs = validate_topic_configs(configs or {})
    except InvalidConfig as exc:
        raise InvalidTopicConfig(exc.errors) from exc
    _check_partition_count(partition_count)
    if replication_factor < 1:
        raise InvalidReplicationFactor("Replication factor must be at least 1.")
    live = Broker.objects.alive().count()
    if live and replication_factor > live:
        raise InvalidReplicationFactor(
            f"Replication factor {replication_factor} is larger than the {live} live broker "
            "node(s)."
        )
    try:
        with transaction.atomic():
            existing = Topic.objects.select_for_update().filter(tenant=tenant)
            for other in existing.values_list("name", flat=True):
                if other == name:
                    raise TopicAlreadyExists(f"Topic '{name}' already exists.")
                if collision_key(other) == collision_key(name):
                    raise InvalidTopic(
                        f"Topic '{name}' collides with existing topic '{other}': names may "
                        "not differ only by '.' and '_'."
                    )
            _check_tenant_partition_quota(tenant, partition_count)
            topic = Topic(
                tenant=tenant,
                name=name,
                partition_count=partition_count,
                replication_factor=replication_factor,
                configs=clean_configs,
            )
            if validate_only:
                return topic
            topic.save()
            _place_partitions(topic, 0, partition_count)
            ClusterState.bump_metadata_version()
    except IntegrityError as exc:
        # Another request created the same name between our check and our insert.
        raise TopicAlreadyExists(f"Topic '{name}' already exists.") from exc
    return topic


def add_partitions(topic: Topic, new_total: int, validate_only: bool = False) -> Topic:
    """Grow a topic to ``new_total`` partitions (CreatePartitions); never shrinks it."""
    with transaction.atomic():
        topic = Topic.objects.select_for_update().select_related("tenant").get(pk=topic.pk)
        if new_total <= topic.partition_count:
            raise InvalidPartitions(
                f"Topic '{topic.name}' has {topic.partition_count} partitions; the new count "
                f"must be larger (partitions can be added, not removed). {new_total} was asked."
            )
        _check_partition_count(new_total)
        adding = new_total - topic.partition_count
        _check_tenant_partition_quota(topic.tenant, adding)
        if validate_only:
            return topic
        first = topic.partition_count
        topic.partition_count = new_total
        topic.save(update_fields=["partition_count"])
        _place_partitions(topic, first, adding)
        ClusterState.bump_metadata_version()
    return topic


def alter_topic_configs(
    topic: Topic,
    set_configs: Mapping[str, object] | None = None,
    delete_configs: Iterable[str] = (),
    validate_only: bool = False,
) -> Topic:
    """Set and remove config overrides (IncrementalAlterConfigs); removed ones take defaults."""
    delete_configs = set(delete_configs)
    try:
        clean = validate_topic_configs(set_configs or {})
    except InvalidConfig as exc:
        raise InvalidTopicConfig(exc.errors) from exc
    unknown = {name: "Unknown topic config." for name in delete_configs - TOPIC_CONFIGS.keys()}
    if unknown:
        raise InvalidTopicConfig(unknown)
    with transaction.atomic():
        topic = Topic.objects.select_for_update().get(pk=topic.pk)
        topic.configs = {k: v for k, v in topic.configs.items() if k not in delete_configs}
        topic.configs.update(clean)
        if not validate_only:
            topic.save(update_fields=["configs"])
            ClusterState.bump_metadata_version()
    return topic


def delete_topic(topic: Topic) -> None:
    """Delete a topic's metadata; broker nodes drop the replicas of topics that are gone."""
    with transaction.atomic():
        Topic.objects.filter(pk=topic.pk).delete()
        ClusterState.bump_metadata_version()
