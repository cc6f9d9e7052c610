"""kafka-python's KafkaAdminClient against the admin handlers over the test database."""

from __future__ import annotations

import uuid

import pytest
from admin_test_support import AdminServer, DatabaseServices, topic_row
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import (
    InvalidConfigurationError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(tenant):
    with AdminServer(DatabaseServices(open_tenant=tenant.name)) as running:
        yield running


@pytest.fixture
def admin(server):
    client = KafkaAdminClient(bootstrap_servers=server.bootstrap, request_timeout_ms=10000)
    yield client
    client.close()


def _create(admin, name: str, partitions: int = 1, **configs: str) -> dict:
    return admin.create_topics(
        {name: {"num_partitions": partitions, "replication_factor": 1, "configs": configs}}
    )


def test_create_topic_writes_rows_and_shows_in_metadata_at_once(admin, tenant) -> None:
    result = _create(admin, "orders", 3, **{"retention.ms": "60000"})
    (created,) = result["topics"]
    assert created["error_code"] == 0
    assert created["num_partitions"] == 3 and created["replication_factor"] == 1
    assert created["configs"]["retention.ms"]["value"] == "60000"
    row = topic_row(tenant.name, "orders")
    assert row is not None and row.partition_count == 3
    assert row.configs == {"retention.ms": "60000"}
    assert str(created["topic_id"]) == str(row.topic_id)
    assert "orders" in admin.list_topics()
    (described,) = admin.describe_topics(["orders"])
    assert described["error_code"] == 0
    assert [p["leader_id"] for p in described["partitions"]] == [1, 1, 1]
    assert [p["replica_nodes"] for p in described["partitions"]] == [[1], [1], [1]]


def test_validate_only_creates_nothing(admin, tenant) -> None:
    result = admin.create_topics(
        {"dry": {"num_partitions": 2, "replication_factor": 1}}, validate_only=True
    )
    assert result["topics"][0]["error_code"] == 0
    assert topic_row(tenant.name, "dry") is None


def test_bad_creates_answer_kafka_error_codes_and_the_listener_keeps_serving(admin) -> None:
    _create(admin, "taken")
    with pytest.raises(TopicAlreadyExistsError):
        _create(admin, "taken")
    with pytest.raises(InvalidTopicError):
        _create(admin, "bad name!")
    with pytest.raises(InvalidPartitionsError):
        _create(admin, "zero", 0)
    with pytest.raises(InvalidReplicationFactorError):
        admin.create_topics({"wide": {"num_partitions": 1, "replication_factor": 3}})
    with pytest.raises(InvalidConfigurationError):
        _create(admin, "unknown-config", **{"no.such.config": "1"})
    with pytest.raises(InvalidConfigurationError):
        _create(admin, "bad-value", **{"retention.ms": "soon"})
    result = admin.create_topics(
        {
            "a": {"num_partitions": 1, "replication_factor": 1},
            "bad!": {"num_partitions": 1, "replication_factor": 1},
        },
        raise_errors=False,
    )
    codes = {t["name"]: t["error_code"] for t in result["topics"]}
    assert codes == {"a": 0, "bad!": 17}
    assert sorted(admin.list_topics()) == ["a", "taken"]


def test_delete_topics_by_name_and_by_id(admin, tenant) -> None:
    _create(admin, "first")
    created = _create(admin, "second")["topics"][0]
    result = admin.delete_topics(["first", uuid.UUID(str(created["topic_id"]))])
    assert [t["error_code"] for t in result["topics"]] == [0, 0]
    assert topic_row(tenant.name, "first") is None
    assert topic_row(tenant.name, "second") is None
    assert admin.list_topics() == []
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.delete_topics(["never-was"])


def test_create_partitions_grows_and_refuses_to_shrink(admin, tenant) -> None:
    _create(admin, "grow", 2)
    admin.create_partitions({"grow": 5})
    row = topic_row(tenant.name, "grow")
    assert row.partition_count == 5 and row.partitions.count() == 5
    (described,) = admin.describe_topics(["grow"])
    assert len(described["partitions"]) == 5
    with pytest.raises(InvalidPartitionsError):
        admin.create_partitions({"grow": 3})
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.create_partitions({"nope": 3})
    admin.create_partitions({"grow": 8}, validate_only=True)
    assert topic_row(tenant.name, "grow").partition_count == 5


def test_describe_configs_of_a_topic_and_of_the_broker(admin) -> None:
    _create(admin, "conf", 1, **{"cleanup.policy": "compact"})
    result = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, "conf")], config_filter="all"
    )
    configs = result["topic"]["conf"]
    assert configs["cleanup.policy"]["value"] == "compact"
    assert configs["cleanup.policy"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert configs["retention.ms"]["value"] == "604800000"
    assert configs["retention.ms"]["config_source"] == "DEFAULT_CONFIG"
    assert configs["retention.ms"]["config_type"] == "LONG"
    broker = admin.describe_configs(
        [ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all"
    )["broker"]["1"]
    assert broker["num.partitions"]["value"] == "1"
    assert broker["default.replication.factor"]["value"] == "1"
    assert broker["auto.create.topics.enable"]["value"] == "true"
    assert broker["log.segment.bytes"]["value"] == str(1024**3)
    assert broker["message.max.bytes"]["read_only"] is True
    assert broker["log.retention.ms"]["config_source"] == "STATIC_BROKER_CONFIG"


def test_alter_configs_replaces_the_whole_set(admin, tenant) -> None:
    _create(admin, "whole", 1, **{"cleanup.policy": "compact", "retention.ms": "1000"})
    result = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, "whole", configs={"segment.ms": "5000"})],
        incremental=False,
        raise_on_unknown=False,
    )
    assert result == {"topic": {"whole": "OK"}}
    # kafka-python's non-incremental path re-sends the other modified keys itself, so go
    # through the wire for the pure replacement semantics: see test_admin_wire.py.
    assert topic_row(tenant.name, "whole").configs["segment.ms"] == "5000"


def test_incremental_alter_configs_sets_deletes_and_appends(admin, tenant) -> None:
    _create(admin, "inc", 1, **{"retention.ms": "1000"})
    result = admin.alter_configs(
        [
            ConfigResource(
                ConfigResourceType.TOPIC,
                "inc",
                configs={
                    "retention.ms": ("DELETE", None),
                    "segment.ms": ("SET", "7000"),
                    "cleanup.policy": ("APPEND", "compact"),
                },
            )
        ],
        incremental=True,
    )
    assert result == {"topic": {"inc": "OK"}}
    assert topic_row(tenant.name, "inc").configs == {
        "segment.ms": "7000",
        "cleanup.policy": "delete,compact",
    }
    admin.alter_configs(
        [
            ConfigResource(
                ConfigResourceType.TOPIC, "inc", configs={"cleanup.policy": ("SUBTRACT", "delete")}
            )
        ],
        incremental=True,
    )
    assert topic_row(tenant.name, "inc").configs["cleanup.policy"] == "compact"
    bad = admin.alter_configs(
        [
            ConfigResource(
                ConfigResourceType.TOPIC, "inc", configs={"retention.ms": ("APPEND", "5")}
            )
        ],
        incremental=True,
    )
    assert "InvalidConfigurationError" in bad["topic"]["inc"]
