"""The web tier's produce (brokers/api/kafka_client.py) against real broker node processes.

It logs in with a tenant's API key as SASL/PLAIN, as any Kafka client would, builds one batch
per partition per request, and is checked by reading back with confluent-kafka: records land
where Java's partitioner puts them, in request order, with their headers and timestamps;
topics with a small max.message.bytes take a request as several batches; acks=0; a restarted
broker node; and the errors a caller sees (unknown topic, bad login, no broker).
"""

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka.partitioner.default import murmur2

from brokers.api.kafka_client import Credentials, KafkaClientError
from brokers.api.produce_batches import partition_for_key
from brokers.api.web_client import WebClient
from tests.integration.conftest import free_port
from tests.integration.web_client_support import create_topic, keyed_cluster, record, web_client

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with keyed_cluster(tmp_path_factory.mktemp("web-producer")) as cluster:
        yield cluster


@pytest.fixture
def producer(cluster):
    with web_client(cluster) as producer:
        yield producer


def read_all(cluster, topic: str, partitions: int, count: int) -> list:
    consumer = Consumer({**cluster.kafka_config(cluster.token), "group.id": "check",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        got.extend(m for m in consumer.consume(1000, timeout=1) if m.error() is None)
    consumer.close()
    return got


def test_partition_for_key_is_javas_murmur2():
    for key in (b"", b"a", b"customer-17", "ключ".encode(), bytes(range(256))):
        for partitions in (1, 3, 7, 100):
            assert partition_for_key(key, partitions) == (murmur2(key) & 0x7FFFFFFF) % partitions


def test_records_land_where_java_puts_them_in_request_order(cluster, producer):
    create_topic(cluster, "orders", 3)
    records = []
    for i in range(3000):
        if i % 10 == 0:
            records.append(record(None, b"null-key-%d" % i))
        elif i % 10 == 1:
            records.append(record(b"k", b"explicit-%d" % i, partition=2))
        else:
            records.append(record(b"customer-%d" % (i % 40), b"v-%d" % i,
                                  headers=[("n", b"%d" % i), ("empty", None)],
                                  timestamp_ms=1_700_000_000_000 + i))
    results = producer.produce("acme", "orders", records, 3, 1, 1 << 20, 30)

    assert [r.error for r in results] == [None] * 3000
    null_partitions = set()
    for sent, result in zip(records, results, strict=True):
        if sent.partition is not None:
            assert result.partition == sent.partition
        elif sent.key is None:
            null_partitions.add(result.partition)
        else:
            assert result.partition == (murmur2(sent.key) & 0x7FFFFFFF) % 3
    # Java's sticky partitioner: a request's null-key records go to one partition together.
    assert len(null_partitions) == 1
    # Offsets are 0.. per partition, in the order the records were given.
    for partition in range(3):
        offsets = [r.offset for r in results if r.partition == partition]
        assert offsets == list(range(len(offsets)))

    got = read_all(cluster, "orders", 3, 3000)
    assert len(got) == 3000
    sent_at = {(r.partition, r.offset): s for s, r in zip(records, results, strict=True)}
    for message in got:
        sent = sent_at[message.partition(), message.offset()]
        assert (message.key(), message.value()) == (sent.key, sent.value)
        if sent.headers:
            assert message.headers() == sent.headers
            assert message.timestamp()[1] == sent.timestamp_ms


def test_a_request_over_max_message_bytes_goes_as_several_batches_in_order(cluster, producer):
    create_topic(cluster, "small", 2, **{"max.message.bytes": "4096"})
    records = [record(b"key-%d" % (i % 2), b"%06d" % i + b"x" * 100) for i in range(1000)]
    results = producer.produce("acme", "small", records, 2, 1, 4096, 30)

    assert [r.error for r in results] == [None] * 1000
    for partition in range(2):
        mine = [(s.value, r.offset) for s, r in zip(records, results, strict=True)
                if r.partition == partition]
        assert [offset for _, offset in mine] == list(range(len(mine)))
    got = read_all(cluster, "small", 2, 1000)
    by_partition: dict[int, list[bytes]] = {}
    for message in sorted(got, key=lambda m: (m.partition(), m.offset())):
        by_partition.setdefault(message.partition(), []).append(message.value())
    for partition, values in by_partition.items():
        assert values == [s.value for s, r in zip(records, results, strict=True)
                          if r.partition == partition]


def test_acks_zero_answers_partitions_without_offsets(cluster, producer):
    create_topic(cluster, "fire-and-forget", 2)
    records = [record(b"a", b"1"), record(None, b"2", partition=1)]
    results = producer.produce("acme", "fire-and-forget", records, 2, 0, 1 << 20, 30)
    assert [(r.partition, r.offset, r.error) for r in results] == [
        ((murmur2(b"a") & 0x7FFFFFFF) % 2, None, None), (1, None, None)
    ]
    assert {m.value() for m in read_all(cluster, "fire-and-forget", 2, 2)} == {b"1", b"2"}


def test_a_restarted_broker_node_is_reconnected_to(cluster, producer):
    create_topic(cluster, "restarts", 1)
    first = producer.produce("acme", "restarts", [record(None, b"before")], 1, 1, 1 << 20, 30)
    assert first[0].offset == 0
    for broker_id in (1, 2):
        cluster.processes[f"broker{broker_id}"].stop()
        cluster.start_broker(broker_id)
    # The old connection is dead; the producer reconnects and retries within its timeout.
    second = producer.produce("acme", "restarts", [record(None, b"after")], 1, 1, 1 << 20, 60)
    assert (second[0].error, second[0].offset) == (None, 1)


def test_a_dead_leader_fails_its_partitions_only(cluster, producer):
    create_topic(cluster, "spread", 4)
    records = [record(b"key-%d" % i, b"v") for i in range(400)]
    before = producer.produce("acme", "spread", records, 4, 1, 1 << 20, 30)
    assert [r.error for r in before] == [None] * 400
    leader_of = leaders(cluster, "spread")
    assert set(leader_of.values()) == {1, 2}, "placement spreads partitions over both nodes"

    cluster.processes["broker2"].stop()
    try:
        # No exception although part of the request was written: each record says its fate.
        after = producer.produce("acme", "spread", records, 4, 1, 1 << 20, 2.0)
        for sent, result in zip(before, after, strict=True):
            assert result.partition == sent.partition
            if leader_of[sent.partition] == 1:
                assert result.error is None and result.offset is not None
            else:
                assert result.offset is None and result.error in (
                    "NETWORK_EXCEPTION", "REQUEST_TIMED_OUT", "LEADER_NOT_AVAILABLE",
                    "BROKER_NOT_AVAILABLE", "NOT_LEADER_OR_FOLLOWER",
                ), result
    finally:
        cluster.start_broker(2)


def leaders(cluster, topic: str) -> dict[int, int]:
    admin = AdminClient(cluster.kafka_config(cluster.token))
    described = admin.list_topics(topic, timeout=10).topics[topic]
    return {p.id: p.leader for p in described.partitions.values()}


def test_unknown_topic_is_an_error_per_record_after_the_timeout(cluster, producer):
    results = producer.produce("acme", "no-such-topic", [record(None, b"x")] * 2, 1, 1,
                               1 << 20, 1.0)
    assert {(r.error, r.offset) for r in results} == {("UNKNOWN_TOPIC_OR_PARTITION", None)}


def test_a_refused_login_is_an_error_for_the_whole_request(cluster):
    with web_client(cluster, password="wrong") as producer:
        with pytest.raises(KafkaClientError) as refused:
            producer.produce("acme", "orders", [record(None, b"x")], 3, 1, 1 << 20, 10)
        assert refused.value.error == "SASL_AUTHENTICATION_FAILED"


def test_no_reachable_broker_is_broker_not_available(cluster):
    closed_port = free_port()
    producer = WebClient(lambda: [("127.0.0.1", closed_port)],
                         lambda tenant: Credentials("u", "p"))
    try:
        results = producer.produce("acme", "orders", [record(None, b"x")], 3, 1, 1 << 20, 1.0)
        assert results[0].error == "BROKER_NOT_AVAILABLE"
        assert "127.0.0.1" in results[0].message
    finally:
        producer.close()
