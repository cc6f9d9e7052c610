"""The admin handlers' edge cases over a raw socket, at the versions the clients do not reach."""

from __future__ import annotations

import datetime
import uuid

import pytest
from admin_test_support import AdminServer, DatabaseServices, topic_row
from kio.schema.alter_configs import v2 as alter_v2
from kio.schema.create_partitions import v3 as partitions_v3
from kio.schema.create_topics import v2 as create_v2
from kio.schema.create_topics import v7 as create_v7
from kio.schema.delete_topics import v6 as delete_v6
from kio.schema.describe_configs import v4 as describe_v4
from kio.schema.incremental_alter_configs import v1 as incremental_v1
from protocol_test_support import WireClient

from brokers.protocol.errors import ErrorCode

pytestmark = pytest.mark.django_db(transaction=True)

MINUTE = datetime.timedelta(minutes=1)
TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


@pytest.fixture
def server(tenant):
    with AdminServer(DatabaseServices(open_tenant=tenant.name)) as running:
        yield running


@pytest.fixture
def wire(server):
    with WireClient(server.address, timeout_s=10) as client:
        yield client


def create(wire, *topics, validate_only=False, module=create_v7, timeout=MINUTE):
    request = module.request.CreateTopicsRequest(
        topics=tuple(topics), timeout=timeout, validate_only=validate_only
    )
    return {t.name: t for t in wire.call(request).topics}


def new_topic(name, partitions=1, factor=1, configs=(), assignments=(), module=create_v7):
    types = module.request
    return types.CreatableTopic(
        name=name,
        num_partitions=partitions,
        replication_factor=factor,
        assignments=tuple(
            types.CreatableReplicaAssignment(partition_index=i, broker_ids=tuple(b))
            for i, b in assignments
        ),
        configs=tuple(types.CreatableTopicConfig(name=k, value=v) for k, v in configs),
    )


def test_create_answers_defaults_configs_and_topic_id_at_v7(wire, tenant) -> None:
    result = create(wire, new_topic("t", -1, -1, configs=[("cleanup.policy", "compact")]))["t"]
    row = topic_row(tenant.name, "t")
    assert result.error_code == ErrorCode.none
    assert (result.num_partitions, result.replication_factor) == (1, 1)
    assert result.topic_id == row.topic_id
    configs = {c.name: c for c in result.configs}
    assert configs["cleanup.policy"].value == "compact"
    assert configs["cleanup.policy"].config_source == 1
    assert configs["retention.ms"].config_source == 5


def test_create_duplicates_manual_assignments_and_null_configs_are_refused(wire, tenant) -> None:
    results = create(
        wire,
        new_topic("twice"),
        new_topic("twice", 2),
        new_topic("manual", -1, -1, assignments=[(0, [1])]),
        new_topic("null-config", configs=[("retention.ms", None)]),
        new_topic("fine"),
    )
    assert list(results) == ["twice", "manual", "null-config", "fine"]
    assert results["twice"].error_code == ErrorCode.invalid_request
    assert results["manual"].error_code == ErrorCode.invalid_request
    assert "not supported" in results["manual"].error_message
    assert results["null-config"].error_code == ErrorCode.invalid_config
    assert results["fine"].error_code == ErrorCode.none
    assert results["twice"].num_partitions == -1 and results["twice"].configs == ()
    assert topic_row(tenant.name, "twice") is None
    assert topic_row(tenant.name, "fine") is not None


def test_create_at_v2_and_validate_only(wire, tenant) -> None:
    results = create(
        wire, new_topic("old", 2, module=create_v2), module=create_v2, validate_only=True
    )
    assert results["old"].error_code == ErrorCode.none
    assert topic_row(tenant.name, "old") is None


def test_delete_by_id_unknown_id_both_and_duplicates(wire, tenant) -> None:
    created = create(wire, new_topic("by-id"), new_topic("by-name"))
    types = delete_v6.request
    unknown = uuid.uuid4()
    request = types.DeleteTopicsRequest(
        topics=(
            types.DeleteTopicState(name=None, topic_id=created["by-id"].topic_id),
            types.DeleteTopicState(name=None, topic_id=unknown),
            types.DeleteTopicState(name="by-name", topic_id=created["by-name"].topic_id),
            types.DeleteTopicState(name="again", topic_id=None),
            types.DeleteTopicState(name="again", topic_id=None),
        ),
        timeout=MINUTE,
    )
    responses = wire.call(request).responses
    assert [(r.name, r.topic_id, r.error_code) for r in responses] == [
        ("by-id", created["by-id"].topic_id, ErrorCode.none),
        (None, unknown, ErrorCode.unknown_topic_id),
        ("by-name", created["by-name"].topic_id, ErrorCode.invalid_request),
        ("again", None, ErrorCode.invalid_request),
    ]
    assert topic_row(tenant.name, "by-id") is None
    assert topic_row(tenant.name, "by-name") is not None


def test_create_partitions_duplicates_and_manual_assignments(wire, tenant) -> None:
    create(wire, new_topic("p", 1), new_topic("q", 1))
    types = partitions_v3.request
    request = types.CreatePartitionsRequest(
        topics=(
            types.CreatePartitionsTopic(name="p", count=2, assignments=None),
            types.CreatePartitionsTopic(name="p", count=3, assignments=None),
            types.CreatePartitionsTopic(
                name="q", count=2, assignments=(types.CreatePartitionsAssignment(broker_ids=(1,)),)
            ),
        ),
        timeout=MINUTE,
        validate_only=False,
    )
    results = wire.call(request).results
    assert [(r.name, r.error_code) for r in results] == [
        ("p", ErrorCode.invalid_request),
        ("q", ErrorCode.invalid_request),
    ]
    assert topic_row(tenant.name, "p").partition_count == 1


def describe(wire, *resources, documentation=False, synonyms=False):
    types = describe_v4.request
    request = types.DescribeConfigsRequest(
        resources=tuple(
            types.DescribeConfigsResource(resource_type=t, resource_name=n, configuration_keys=k)
            for t, n, k in resources
        ),
        include_synonyms=synonyms,
        include_documentation=documentation,
    )
    return wire.call(request).results


def test_describe_configs_keys_types_documentation_and_resource_errors(wire) -> None:
    create(wire, new_topic("d", configs=[("segment.ms", "1000")]))
    topic, missing, bad_name, broker, other_broker, logger = describe(
        wire,
        (TOPIC, "d", ("segment.ms", "cleanup.policy", "no.such.key")),
        (TOPIC, "missing", None),
        (TOPIC, "bad name", None),
        (BROKER, "", ("num.partitions",)),
        (BROKER, "7", None),
        (BROKER_LOGGER, "1", None),
        documentation=True,
        synonyms=True,
    )
    assert topic.error_code == ErrorCode.none
    by_name = {c.name: c for c in topic.configs}
    assert set(by_name) == {"segment.ms", "cleanup.policy"}
    assert by_name["segment.ms"].value == "1000" and by_name["segment.ms"].config_type == 5
    assert by_name["cleanup.policy"].config_type == 7
    assert by_name["cleanup.policy"].documentation
    assert [(s.name, s.source) for s in by_name["segment.ms"].synonyms] == [("segment.ms", 1)]
    assert missing.error_code == ErrorCode.unknown_topic_or_partition
    assert bad_name.error_code == ErrorCode.invalid_topic_exception
    assert [(c.name, c.value, c.read_only) for c in broker.configs] == [
        ("num.partitions", "1", True)
    ]
    assert other_broker.error_code == ErrorCode.invalid_request
    assert logger.error_code == ErrorCode.invalid_request
    (everything,) = describe(wire, (TOPIC, "d", None))
    assert len(everything.configs) == 12
    assert all(c.documentation is None for c in everything.configs)


def alter(wire, *resources, validate_only=False):
    types = alter_v2.request
    request = types.AlterConfigsRequest(
        resources=tuple(
            types.AlterConfigsResource(
                resource_type=t,
                resource_name=n,
                configs=tuple(types.AlterableConfig(name=k, value=v) for k, v in configs),
            )
            for t, n, configs in resources
        ),
        validate_only=validate_only,
    )
    return [(r.resource_name, r.error_code) for r in wire.call(request).responses]


def test_alter_configs_replaces_whole_set_and_checks(wire, tenant) -> None:
    create(wire, new_topic("a", configs=[("retention.ms", "1"), ("segment.ms", "2")]))
    assert alter(wire, (TOPIC, "a", [("segment.ms", "3")]), validate_only=True) == [
        ("a", ErrorCode.none)
    ]
    assert topic_row(tenant.name, "a").configs == {"retention.ms": "1", "segment.ms": "2"}
    assert alter(wire, (TOPIC, "a", [("segment.ms", "3")])) == [("a", ErrorCode.none)]
    assert topic_row(tenant.name, "a").configs == {"segment.ms": "3"}
    assert alter(
        wire,
        (TOPIC, "a", [("segment.ms", None)]),
        (TOPIC, "missing", []),
        (TOPIC, "b", [("x", "1"), ("x", "2")]),
        (TOPIC, "a", [("no.such", "1")]),
        (BROKER, "1", [("num.partitions", "3")]),
        (BROKER, "1", []),
        (BROKER_LOGGER, "1", []),
    ) == [
        ("a", ErrorCode.invalid_request),  # a resource given twice
        ("missing", ErrorCode.unknown_topic_or_partition),
        ("b", ErrorCode.invalid_request),
        ("a", ErrorCode.invalid_request),
        ("1", ErrorCode.invalid_request),
        ("1", ErrorCode.invalid_request),
        ("1", ErrorCode.invalid_request),
    ]
    assert alter(wire, (TOPIC, "a", [("segment.ms", None)])) == [("a", ErrorCode.invalid_request)]
    assert alter(wire, (TOPIC, "a", [("no.such", "1")])) == [("a", ErrorCode.invalid_config)]
    assert alter(wire, (BROKER, "1", [("num.partitions", "3")])) == [
        ("1", ErrorCode.invalid_config)
    ]
    assert alter(wire, (BROKER, "", [])) == [("", ErrorCode.none)]
    assert topic_row(tenant.name, "a").configs == {"segment.ms": "3"}


def incremental(wire, name, *changes, validate_only=False):
    types = incremental_v1.request
    request = types.IncrementalAlterConfigsRequest(
        resources=(
            types.AlterConfigsResource(
                resource_type=TOPIC,
                resource_name=name,
                configs=tuple(
                    types.AlterableConfig(name=k, config_operation=op, value=v)
                    for k, op, v in changes
                ),
            ),
        ),
        validate_only=validate_only,
    )
    (response,) = wire.call(request).responses
    return response.error_code


def test_incremental_alter_configs_operations(wire, tenant) -> None:
    create(wire, new_topic("i", configs=[("retention.ms", "1")]))
    assert incremental(wire, "i", ("cleanup.policy", APPEND, "compact,delete")) == 0
    assert topic_row(tenant.name, "i").configs["cleanup.policy"] == "delete,compact"
    assert incremental(wire, "i", ("cleanup.policy", SUBTRACT, "delete")) == 0
    assert topic_row(tenant.name, "i").configs["cleanup.policy"] == "compact"
    assert incremental(wire, "i", ("retention.ms", DELETE, None), validate_only=True) == 0
    assert "retention.ms" in topic_row(tenant.name, "i").configs
    assert incremental(wire, "i", ("retention.ms", APPEND, "2")) == ErrorCode.invalid_config
    assert incremental(wire, "i", ("retention.ms", 9, "2")) == ErrorCode.invalid_request
    assert incremental(wire, "i", ("retention.ms", SET, None)) == ErrorCode.invalid_request
    assert (
        incremental(wire, "i", ("retention.ms", SET, "5"), ("retention.ms", DELETE, None))
        == ErrorCode.invalid_request
    )
    assert incremental(wire, "i", ("no.such", SET, "1")) == ErrorCode.invalid_config
    assert incremental(wire, "i", ("no.such", DELETE, None)) == ErrorCode.invalid_config
    assert incremental(wire, "nope", ("retention.ms", SET, "1")) == (
        ErrorCode.unknown_topic_or_partition
    )
    assert topic_row(tenant.name, "i").configs == {"retention.ms": "1", "cleanup.policy": "compact"}


def test_a_failing_handler_answers_with_errors_and_the_listener_keeps_serving(
    wire, server, monkeypatch
) -> None:
    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(server.services.admin, "create_topic", broken)
    results = create(wire, new_topic("x"), new_topic("y"))
    assert [r.error_code for r in results.values()] == [ErrorCode.unknown_server_error] * 2
    monkeypatch.undo()
    assert create(wire, new_topic("x"))["x"].error_code == ErrorCode.none


def test_operations_past_the_timeout_answer_request_timed_out(wire, server, monkeypatch) -> None:
    import asyncio

    real = server.services.admin.create_topic

    async def slow(*args, **kwargs):
        await asyncio.sleep(0.5)
        return await real(*args, **kwargs)

    monkeypatch.setattr(server.services.admin, "create_topic", slow)
    results = create(
        wire, new_topic("late"), new_topic("later"), timeout=datetime.timedelta(milliseconds=100)
    )
    assert [r.error_code for r in results.values()] == [ErrorCode.request_timed_out] * 2
