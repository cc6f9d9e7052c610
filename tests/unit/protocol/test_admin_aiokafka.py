"""aiokafka's AIOKafkaAdminClient against the admin handlers over the test database."""

from __future__ import annotations

import asyncio

import pytest
from admin_test_support import AdminServer, DatabaseServices, topic_row
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(tenant):
    with AdminServer(DatabaseServices(open_tenant=tenant.name)) as running:
        yield running


def _run(server, steps):
    async def main():
        admin = AIOKafkaAdminClient(bootstrap_servers=server.bootstrap, request_timeout_ms=10000)
        await admin.start()
        try:
            return await steps(admin)
        finally:
            await admin.close()

    return asyncio.run(main())


def test_topic_lifecycle_and_configs(server, tenant) -> None:
    async def steps(admin):
        created = await admin.create_topics(
            [NewTopic("events", 2, 1, topic_configs={"retention.ms": "5000"})]
        )
        listed = await admin.list_topics()
        grown = await admin.create_partitions({"events": NewPartitions(4)})
        (described,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "events", {"retention.ms": None})]
        )
        (altered,) = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "events", {"segment.ms": "9000"})]
        )
        after_alter = (await asyncio.to_thread(topic_row, tenant.name, "events")).configs
        deleted = await admin.delete_topics(["events"])
        return created, listed, grown, described, altered, after_alter, deleted

    created, listed, grown, described, altered, after_alter, deleted = _run(server, steps)
    assert [error_code for _name, error_code, *_ in created.topic_errors] == [0]
    assert listed == ["events"]
    assert [code for _name, code, _message in grown.topic_errors] == [0]
    (resource,) = described.resources
    error_code, _message, _type, name, configs = resource[:5]
    assert (error_code, name) == (0, "events")
    assert [(c[0], c[1]) for c in configs] == [("retention.ms", "5000")]
    assert [r[0] for r in altered.resources] == [0]
    # AlterConfigs replaces the whole set: retention.ms, not given, is back to its default.
    assert after_alter == {"segment.ms": "9000"}
    assert [code for _name, code, *_ in deleted.topic_error_codes] == [0]
    assert topic_row(tenant.name, "events") is None


def test_errors_reach_the_client(server) -> None:
    async def steps(admin):
        await admin.create_topics([NewTopic("dup", 1, 1)])
        again = await admin.create_topics([NewTopic("dup", 1, 1), NewTopic("x" * 250, 1, 1)])
        gone = await admin.delete_topics(["missing"])
        return again, gone

    again, gone = _run(server, steps)
    assert sorted(code for _name, code, *_ in again.topic_errors) == [17, 36]
    assert [code for _name, code, *_ in gone.topic_error_codes] == [3]
