"""Broker health, metadata propagation and control commands, with real broker-node processes."""

import signal
import time

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.cluster import running_cluster
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("health"), broker_count=2) as cluster:
        token = cluster.manage("issue_api_key", "acme", "--create").strip()
        username, password = token.split(".", 1)
        cluster.sasl = {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": username,
            "sasl.password": password,
        }
        yield cluster


def client_config(cluster, port: int | None = None) -> dict:
    bootstrap = f"127.0.0.1:{port}" if port else cluster.bootstrap
    return {**cluster.sasl, "bootstrap.servers": bootstrap}


def broker_state(cluster, broker_id: int) -> str:
    return cluster.manage(
        "shell", "--no-imports", "-c",
        f"from brokers.models import Broker; print(Broker.objects.get(id={broker_id}).state)",
    ).strip()


def test_every_node_sees_a_new_topic_within_a_second(cluster):
    cluster.manage(
        "shell", "--no-imports", "-c",
        "from brokers.services import create_topic; from djafka.models import Tenant; "
        "create_topic(Tenant.objects.get(name='acme'), 'fresh', 4)",
    )
    committed = time.monotonic()
    for port in cluster.broker_ports.values():
        admin = AdminClient(client_config(cluster, port))
        wait_for(lambda a=admin: "fresh" in a.list_topics(timeout=5).topics, 5, "topic visible")
    # Both nodes poll the metadata version every 200 ms; allow for the clients' own round trips.
    assert time.monotonic() - committed < 3


def test_a_killed_node_is_marked_dead_and_alive_again_when_it_returns(cluster):
    admin = AdminClient(client_config(cluster, cluster.broker_ports[1]))
    assert len(admin.list_topics(timeout=5).brokers) == 2
    cluster.processes["broker2"].stop(signal.SIGKILL)
    # Missed heartbeats (9 s) make the controller mark it dead; Metadata then leaves it out.
    wait_for(lambda: broker_state(cluster, 2) == "dead", 30, "broker 2 marked dead")
    wait_for(lambda: len(admin.list_topics(timeout=5).brokers) == 1, 10, "metadata without 2")
    cluster.start_broker(2)
    wait_for(lambda: broker_state(cluster, 2) == "alive", 30, "broker 2 alive again")
    wait_for(lambda: len(admin.list_topics(timeout=5).brokers) == 2, 10, "metadata with 2")


def test_partitions_of_a_stopped_node_go_offline_and_come_back(cluster):
    admin = AdminClient(client_config(cluster))
    admin.create_topics([NewTopic("spread", num_partitions=4)])["spread"].result(30)
    topic = admin.list_topics("spread", timeout=5).topics["spread"]
    on_two = [p.id for p in topic.partitions.values() if p.leader == 2]
    assert on_two, "placement should give broker 2 some leaders"
    cluster.processes["broker2"].stop(signal.SIGTERM)  # clean stop: no timeout to wait for

    def leaders() -> dict[int, int]:
        parts = admin.list_topics("spread", timeout=5).topics["spread"].partitions
        return {p.id: p.leader for p in parts.values()}

    wait_for(lambda: all(leaders()[p] == -1 for p in on_two), 15, "offline partitions")
    cluster.start_broker(2)
    wait_for(lambda: all(leaders()[p] == 2 for p in on_two), 30, "leaders back")


def test_retention_runs_when_the_control_queue_asks(cluster):
    admin = AdminClient(client_config(cluster))
    configs = {"segment.bytes": "20000", "retention.ms": "1000"}
    admin.create_topics([NewTopic("short", 1, config=configs)])["short"].result(30)
    # Batches well under segment.bytes, so the log rolls into several segments.
    producer = Producer({**client_config(cluster), "linger.ms": 0, "batch.size": 4000})
    errors = []
    for i in range(300):
        producer.produce(
            "short", value=b"x" * 200, key=str(i).encode(),
            on_delivery=lambda err, msg: err and errors.append(err),
        )
    assert producer.flush(30) == 0
    assert errors == []
    time.sleep(1.5)  # every closed segment is now older than retention.ms
    leader = admin.list_topics("short", timeout=5).topics["short"].partitions[0].leader
    cluster.manage(
        "shell", "--no-imports", "-c",
        "from brokers import tasks; "
        f"tasks.send_to_broker(tasks.run_log_maintenance, {leader})",
    )
    from confluent_kafka import Consumer

    consumer = Consumer({**client_config(cluster), "group.id": "probe"})
    tp = TopicPartition("short", 0)
    wait_for(lambda: consumer.get_watermark_offsets(tp, timeout=5)[0] > 0, 20, "log start moved")
    low, high = consumer.get_watermark_offsets(tp, timeout=5)
    assert high == 300 and 0 < low < 300
    consumer.close()
