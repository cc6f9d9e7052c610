"""confluent-kafka's AdminClient (librdkafka) against the admin handlers over the test database."""

from __future__ import annotations

import pytest
from admin_test_support import AdminServer, DatabaseServices, topic_row
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT_S = 10


@pytest.fixture
def server(tenant):
    with AdminServer(DatabaseServices(open_tenant=tenant.name)) as running:
        yield running


@pytest.fixture
def admin(server):
    return AdminClient({"bootstrap.servers": server.bootstrap, "socket.timeout.ms": 10000})


def _error_of(future) -> KafkaError | None:
    try:
        future.result(TIMEOUT_S)
    except KafkaException as exc:
        return exc.args[0]
    return None


def test_create_with_broker_defaults_then_list_and_delete(admin, tenant) -> None:
    futures = admin.create_topics([NewTopic("defaults"), NewTopic("four", 4, 1)])
    assert [_error_of(f) for f in futures.values()] == [None, None]
    defaults = topic_row(tenant.name, "defaults")
    assert (defaults.partition_count, defaults.replication_factor) == (1, 1)
    assert topic_row(tenant.name, "four").partition_count == 4
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    assert sorted(metadata.topics) == ["defaults", "four"]
    assert metadata.topics["four"].partitions[3].leader == 1
    assert metadata.cluster_id == "djafka-test-cluster"
    assert metadata.controller_id == 1
    (future,) = admin.delete_topics(["defaults"]).values()
    assert _error_of(future) is None
    assert topic_row(tenant.name, "defaults") is None


def test_bad_requests_answer_kafka_error_codes(admin) -> None:
    admin.create_topics([NewTopic("taken", 1, 1)])["taken"].result(TIMEOUT_S)
    futures = admin.create_topics(
        [
            NewTopic("taken", 1, 1),
            NewTopic("bad/name", 1, 1),
            NewTopic("zero", 0, 1),
            NewTopic("too-wide", 1, 2),
            NewTopic("unknown-config", 1, 1, config={"no.such": "x"}),
            NewTopic("bad-value", 1, 1, config={"retention.ms": "-7"}),
        ]
    )
    codes = {name: _error_of(f).code() for name, f in futures.items()}
    assert codes == {
        "taken": KafkaError.TOPIC_ALREADY_EXISTS,
        "bad/name": KafkaError.TOPIC_EXCEPTION,
        "zero": KafkaError.INVALID_PARTITIONS,
        "too-wide": KafkaError.INVALID_REPLICATION_FACTOR,
        "unknown-config": KafkaError.INVALID_CONFIG,
        "bad-value": KafkaError.INVALID_CONFIG,
    }
    (missing,) = admin.delete_topics(["missing"]).values()
    assert _error_of(missing).code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    (shrink,) = admin.create_partitions([NewPartitions("taken", 1)]).values()
    assert _error_of(shrink).code() == KafkaError.INVALID_PARTITIONS
    assert sorted(admin.list_topics(timeout=TIMEOUT_S).topics) == ["taken"]


def test_create_partitions_and_validate_only(admin, tenant) -> None:
    admin.create_topics([NewTopic("grow", 1, 1)])["grow"].result(TIMEOUT_S)
    (dry,) = admin.create_partitions([NewPartitions("grow", 6)], validate_only=True).values()
    assert _error_of(dry) is None
    assert topic_row(tenant.name, "grow").partition_count == 1
    (real,) = admin.create_partitions([NewPartitions("grow", 3)]).values()
    assert _error_of(real) is None
    assert topic_row(tenant.name, "grow").partition_count == 3
    assert len(admin.list_topics("grow", timeout=TIMEOUT_S).topics["grow"].partitions) == 3


def test_describe_and_incrementally_alter_topic_configs(admin, tenant) -> None:
    admin.create_topics([NewTopic("conf", 1, 1, config={"retention.ms": "1000"})])["conf"].result(
        TIMEOUT_S
    )
    resource = ConfigResource(ResourceType.TOPIC, "conf")
    (future,) = admin.describe_configs([resource]).values()
    configs = future.result(TIMEOUT_S)
    assert configs["retention.ms"].value == "1000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["segment.bytes"].is_default

    change = ConfigResource(
        ResourceType.TOPIC,
        "conf",
        incremental_configs=[
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
            ConfigEntry(
                "cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND
            ),
            ConfigEntry("segment.ms", "60000", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    (future,) = admin.incremental_alter_configs([change]).values()
    assert _error_of(future) is None
    assert topic_row(tenant.name, "conf").configs == {
        "cleanup.policy": "delete,compact",
        "segment.ms": "60000",
    }
    bad = ConfigResource(
        ResourceType.TOPIC,
        "conf",
        incremental_configs=[
            ConfigEntry("segment.ms", "-5", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    (future,) = admin.incremental_alter_configs([bad]).values()
    assert _error_of(future).code() == KafkaError.INVALID_CONFIG
    assert topic_row(tenant.name, "conf").configs["segment.ms"] == "60000"


def test_describe_broker_configs(admin) -> None:
    (future,) = admin.describe_configs([ConfigResource(ResourceType.BROKER, "1")]).values()
    configs = future.result(TIMEOUT_S)
    assert configs["num.partitions"].value == "1"
    assert configs["auto.create.topics.enable"].value == "true"
    assert configs["log.retention.ms"].is_read_only
    assert configs["log.retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
