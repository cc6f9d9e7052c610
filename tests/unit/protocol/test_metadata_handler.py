"""The Metadata handler over the test database: versions, auto-creation, errors, tenancy, cache."""

from __future__ import annotations

import uuid

import pytest
from admin_test_support import AdminServer, DatabaseServices, topic_row
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from kafka import KafkaAdminClient
from kio.schema.metadata import v0, v12
from protocol_test_support import CLUSTER_ID, WireClient

from brokers import services as topic_services
from brokers.models import Broker, ClusterState, Partition
from brokers.protocol import codec
from brokers.protocol.errors import ErrorCode

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(tenant):
    with AdminServer(DatabaseServices(open_tenant=tenant.name)) as running:
        yield running


@pytest.fixture
def wire(server):
    with WireClient(server.address, timeout_s=10) as client:
        yield client


def metadata(wire, version: int, names=None, ids=None, allow_auto=True):
    request_cls = codec.request_type(3, version)
    module = __import__(request_cls.__module__, fromlist=["x"])
    if names is None and ids is None:
        topics = None if version > 0 else ()
    else:
        topics = tuple(
            module.MetadataRequestTopic(name=n, **({"topic_id": None} if version >= 10 else {}))
            for n in names or ()
        ) + tuple(module.MetadataRequestTopic(name=None, topic_id=i) for i in ids or ())
    kwargs = {"topics": topics}
    if version >= 4:
        kwargs["allow_auto_topic_creation"] = allow_auto
    if version >= 8:
        kwargs["include_topic_authorized_operations"] = False
    if 8 <= version <= 10:
        kwargs["include_cluster_authorized_operations"] = False
    return wire.call(request_cls(**kwargs))


def test_every_version_answers_brokers_and_topics(wire, server, tenant) -> None:
    topic_services.create_topic(tenant, "orders", 2)
    server.services.reload()
    host, port = server.address
    for version in range(0, 14):
        response = metadata(wire, version)
        assert [(b.node_id, b.host, b.port) for b in response.brokers] == [(1, host, port)]
        (topic,) = response.topics
        assert topic.name == "orders" and topic.error_code == ErrorCode.none
        assert [p.leader_id for p in topic.partitions] == [1, 1]
        if version >= 2:
            assert response.cluster_id == CLUSTER_ID
        if version >= 10:
            assert topic.topic_id == topic_row(tenant.name, "orders").topic_id


def test_empty_list_means_none_but_every_topic_at_v0(wire, server, tenant) -> None:
    topic_services.create_topic(tenant, "t")
    server.services.reload()
    assert metadata(wire, 4, names=[]).topics == ()
    request = v0.request.MetadataRequest(topics=())
    assert [t.name for t in wire.call(request).topics] == ["t"]


def test_missing_topics_are_auto_created_when_allowed(wire, tenant) -> None:
    (refused,) = metadata(wire, 12, names=["nope"], allow_auto=False).topics
    assert refused.error_code == ErrorCode.unknown_topic_or_partition
    assert topic_row(tenant.name, "nope") is None
    (pending,) = metadata(wire, 12, names=["auto"]).topics
    assert pending.error_code == ErrorCode.leader_not_available
    assert topic_row(tenant.name, "auto").partition_count == 1
    (ready,) = metadata(wire, 12, names=["auto"]).topics
    assert ready.error_code == ErrorCode.none and ready.partitions[0].leader_id == 1
    (illegal,) = metadata(wire, 4, names=["no way"]).topics
    assert illegal.error_code == ErrorCode.invalid_topic_exception


def test_auto_creation_off_for_the_broker(tenant) -> None:
    services = DatabaseServices(open_tenant=tenant.name, auto_create_topics_enable=False)
    with AdminServer(services) as server, WireClient(server.address) as wire:
        (topic,) = metadata(wire, 12, names=["x"]).topics
    assert topic.error_code == ErrorCode.unknown_topic_or_partition
    assert topic_row(tenant.name, "x") is None


def test_topics_by_id(wire, server, tenant) -> None:
    topic = topic_services.create_topic(tenant, "by-id")
    server.services.reload()
    unknown = uuid.uuid4()
    found, missing = metadata(wire, 12, ids=[topic.topic_id, unknown]).topics
    assert (found.name, found.topic_id, found.error_code) == ("by-id", topic.topic_id, 0)
    assert (missing.name, missing.topic_id) == (None, unknown)
    assert missing.error_code == ErrorCode.unknown_topic_id


def test_partition_without_live_leader_answers_leader_not_available(wire, server, tenant) -> None:
    topic = topic_services.create_topic(tenant, "orphan", 2)
    Partition.objects.filter(topic=topic, index=1).update(leader=None)
    Broker.objects.create(id=2, host="127.0.0.1", port=1, state=Broker.State.DEAD)
    Partition.objects.get(topic=topic, index=0).replicas.create(broker_id=2, position=1)
    ClusterState.bump_metadata_version()
    server.services.reload()
    (answer,) = metadata(wire, 12, names=["orphan"]).topics
    first, second = answer.partitions
    assert (first.error_code, first.leader_id, first.offline_replicas) == (0, 1, (2,))
    assert first.replica_nodes == (1, 2)
    assert (second.error_code, second.leader_id) == (ErrorCode.leader_not_available, -1)


def test_encoded_responses_are_reused_until_metadata_changes(wire, server, tenant) -> None:
    topic_services.create_topic(tenant, "cached")
    server.services.reload()
    request = v12.request.MetadataRequest(
        topics=None, allow_auto_topic_creation=True, include_topic_authorized_operations=False
    )
    wire.send(request)
    first = wire.receive_frame()
    wire.send(request)
    second = wire.receive_frame()
    assert first[4:] == second[4:]  # same body after the correlation id
    topic_services.create_topic(tenant, "newer")
    server.services.reload()
    assert [t.name for t in wire.call(request).topics] == ["cached", "newer"]


def test_tenants_see_and_touch_only_their_own_topics(tenant, other_tenant) -> None:
    users = {"alice": ("alice-secret", tenant.name), "bob": ("bob-secret", other_tenant.name)}
    services = DatabaseServices(open_tenant="", users=users)
    with AdminServer(services, requires_auth=True) as server:

        def kafka_python(user):
            return KafkaAdminClient(
                bootstrap_servers=server.bootstrap,
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="PLAIN",
                sasl_plain_username=user,
                sasl_plain_password=users[user][0],
                request_timeout_ms=10000,
            )

        alice, bob = kafka_python("alice"), kafka_python("bob")
        try:
            for client in (alice, bob):
                client.create_topics(
                    {"shared-name": {"num_partitions": 1, "replication_factor": 1}}
                )
            alice.create_topics({"alice-only": {"num_partitions": 1, "replication_factor": 1}})
            assert sorted(alice.list_topics()) == ["alice-only", "shared-name"]
            assert bob.list_topics() == ["shared-name"]
            (hidden,) = bob.describe_topics(["alice-only"])
            assert hidden["error_code"] == ErrorCode.unknown_topic_or_partition
            gone = bob.delete_topics(["alice-only"], raise_errors=False)
            assert [t["error_code"] for t in gone["topics"]] == [3]
            grown = bob.create_partitions({"alice-only": 2}, raise_errors=False)
            assert [r.error_code for r in grown.results] == [3]
            bob.delete_topics(["shared-name"])
        finally:
            alice.close()
            bob.close()

        confluent = AdminClient(
            {
                "bootstrap.servers": server.bootstrap,
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "PLAIN",
                "sasl.username": "bob",
                "sasl.password": "bob-secret",
            }
        )
        (future,) = confluent.describe_configs(
            [ConfigResource(ResourceType.TOPIC, "alice-only")]
        ).values()
        with pytest.raises(Exception, match="UNKNOWN_TOPIC_OR_PART"):
            future.result(10)

    assert topic_row(tenant.name, "alice-only") is not None
    assert topic_row(tenant.name, "shared-name") is not None
    assert topic_row(other_tenant.name, "shared-name") is None
