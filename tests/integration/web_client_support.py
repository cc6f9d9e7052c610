"""The web tier's Kafka client (brokers/api/web_client.py) against a test cluster: a client
logged in with a tenant's API key, topics made with a Kafka admin client, records to produce."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from confluent_kafka.admin import AdminClient, NewTopic

from brokers.api.kafka_client import Credentials
from brokers.api.web_client import WebClient
from tests.integration.cluster import Cluster, running_cluster
from tests.integration.conftest import wait_for


@contextmanager
def keyed_cluster(folder: Path) -> Iterator[Cluster]:
    """Two broker nodes and an API key of tenant ``acme`` as ``cluster.token``."""
    with running_cluster(folder, broker_count=2) as cluster:
        cluster.token = cluster.manage("issue_api_key", "acme", "--create").strip()
        yield cluster


def addresses(cluster: Cluster) -> list[tuple[str, int]]:
    return [("127.0.0.1", port) for port in cluster.broker_ports.values()]


@contextmanager
def web_client(cluster: Cluster, password: str | None = None) -> Iterator[WebClient]:
    """A WebClient logging in with ``cluster.token`` (or its username and ``password``)."""
    username, secret = cluster.token.split(".", 1)
    client = WebClient(lambda: addresses(cluster),
                       lambda tenant: Credentials(username, password or secret))
    try:
        yield client
    finally:
        client.close()


def create_topic(cluster: Cluster, name: str, partitions: int, **configs: str) -> None:
    admin = AdminClient(cluster.kafka_config(cluster.token))
    admin.create_topics([NewTopic(name, partitions, config=configs)])[name].result(30)

    def known_everywhere() -> bool:
        # Each node learns of a topic at its next metadata poll: ask every one of them.
        return all(cluster.knows_topic(cluster.token, port, name, partitions)
                   for port in cluster.broker_ports.values())

    wait_for(known_everywhere, 30, f"{name} known to every broker node")


def record(key: bytes | None, value: bytes, **fields: object) -> SimpleNamespace:
    """A record as WebClient.produce takes it (wire.OutgoingRecord's fields)."""
    return SimpleNamespace(
        key=key, value=value, headers=fields.get("headers"),
        timestamp_ms=fields.get("timestamp_ms"), partition=fields.get("partition"),
    )
