"""Real Kafka clients (kafka-python, aiokafka, confluent-kafka) negotiate with the listener."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka import AIOKafkaClient
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient
from kafka.net.compat import KafkaNetClient
from protocol_test_support import CLUSTER_ID, NODE_ID

from brokers.protocol.registry import default_registry


def test_kafka_python_bootstraps_and_checks_the_version(server) -> None:
    client = KafkaNetClient(bootstrap_servers=server.bootstrap, request_timeout_ms=5000)
    try:
        version = client.check_version(timeout_ms=5000)
        assert isinstance(version, tuple) and version >= (0, 10)
        # It negotiated from our ApiVersions: only registered APIs and ranges are known to it.
        versions = client._manager.broker_version_data.api_versions
        assert versions[18] == (0, 4)
        assert versions[3] == (0, 12)
        produce = next(h for h in default_registry() if h.api_key == 0)
        assert versions[0] == (produce.min_version, produce.max_version)
    finally:
        client.close()


def test_kafka_python_admin_client_describes_the_cluster(server) -> None:
    admin = KafkaAdminClient(bootstrap_servers=server.bootstrap, request_timeout_ms=5000)
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    assert cluster["cluster_id"] == CLUSTER_ID
    assert cluster["controller_id"] == NODE_ID
    assert [b["broker_id"] for b in cluster["brokers"]] == [NODE_ID]


def test_aiokafka_bootstraps_over_api_versions_and_metadata(server) -> None:
    async def bootstrap() -> tuple[set[int], dict[int, tuple[int, int]]]:
        client = AIOKafkaClient(bootstrap_servers=server.bootstrap, request_timeout_ms=5000)
        try:
            await client.bootstrap()
            conn = await client._get_conn(NODE_ID)
            assert conn is not None
            return {b.nodeId for b in client.cluster.brokers()}, dict(conn._versions)
        finally:
            await client.close()

    brokers, versions = asyncio.run(bootstrap())
    assert brokers == {NODE_ID}
    assert versions[18] == (0, 4)
    assert versions[17] == (0, 1)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def rdkafka_log():
    logger = logging.getLogger("test.rdkafka")
    logger.setLevel(logging.DEBUG)
    handler = _Records()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


def test_confluent_kafka_negotiates_and_reads_metadata_without_protocol_errors(
    server, rdkafka_log
) -> None:
    logger, captured = rdkafka_log
    admin = AdminClient(
        {
            "bootstrap.servers": server.bootstrap,
            "socket.timeout.ms": 5000,
            "logger": logger,
            "debug": "protocol,broker",
        }
    )
    metadata = admin.list_topics(timeout=5)
    admin.poll(0)  # deliver queued log lines to the logger
    assert metadata.cluster_id == CLUSTER_ID
    assert set(metadata.brokers) == {NODE_ID}
    messages = [record.getMessage() for record in captured.records]
    assert any("Received ApiVersionResponse (v3" in message for message in messages), messages
    assert any("APIVERSION_QUERY -> UP" in message for message in messages), messages
    # librdkafka's words for a response it could not use or a connection we dropped.
    protocol_trouble = ("PROTOERR", "parse", "Protocol", "UNSUPPORTED", "Disconnected", "BADMSG")
    problems = [m for m in messages if any(word in m for word in protocol_trouble)]
    assert not problems, problems
    assert all(record.levelno < logging.WARNING for record in captured.records), messages
