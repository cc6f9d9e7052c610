"""Real Kafka clients against three real broker nodes, with only a bootstrap address and a key.

Each client creates a 6-partition topic with its own admin client, produces 10,000 keyed
records (some in compressed batches), reads them all back by assign and seek, finds offsets by
time, and must agree with the Java client's murmur2 partitioner on where every key lands.
"""

import asyncio
import re
import time
from collections import defaultdict

import pytest
from kafka.partitioner.default import murmur2

from tests.integration.cluster import running_cluster
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.slow

RECORDS = 10_000
PARTITIONS = 6
COMPRESSIONS = ["gzip", "snappy", "lz4", "zstd", None]
BASE_TS = 1_700_000_000_000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("kafka-clients"), broker_count=3) as cluster:
        token = cluster.manage("issue_api_key", "acme", "--create").strip()
        cluster.token = token
        cluster.username, cluster.password = token.split(".", 1)
        yield cluster


def wait_until_every_node_knows(cluster, topic: str) -> None:
    """Each node learns of a new topic within its metadata poll; produce only after that.

    A Produce that reaches a leader still loading the topic is refused (retriable), and a
    non-idempotent producer with several requests in flight may then write its retry after
    later batches: Kafka allows that reordering, so the order check below would not hold.
    """
    for port in cluster.broker_ports.values():
        wait_for(lambda port=port: cluster.knows_topic(cluster.token, port, topic, PARTITIONS),
                 30, f"node on port {port} to know {topic}")


def java_partition(key: bytes) -> int:
    """Where Kafka's Java client puts a keyed record: murmur2 of the key, made positive."""
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def record(i: int) -> tuple[bytes, bytes, int]:
    key = f"key-{i % 997}".encode()
    return key, f"value-{i}".encode() + b"x" * 80, BASE_TS + i


def check_read_back(topic: str, got: dict[int, list[tuple[int, bytes, bytes, int]]]) -> None:
    """Every record once, keys where murmur2 puts them, offsets dense and in order per partition."""
    total = sum(len(rows) for rows in got.values())
    assert total == RECORDS, f"{topic}: read {total} records"
    seen = set()
    for partition, rows in got.items():
        offsets = [offset for offset, *_ in rows]
        assert offsets == list(range(len(rows))), f"{topic}-{partition} offsets not dense"
        numbers = [int(value.split(b"-")[1].rstrip(b"x")) for _, _, value, _ in rows]
        assert numbers == sorted(numbers), f"{topic}-{partition} out of produce order"
        for _, key, value, timestamp in rows:
            assert java_partition(key) == partition, (key, partition)
            number = int(value.split(b"-")[1].rstrip(b"x"))
            assert timestamp == BASE_TS + number
            seen.add(number)
    assert seen == set(range(RECORDS))


def chunks() -> list[tuple[str | None, range]]:
    size = RECORDS // len(COMPRESSIONS)
    return [(codec, range(i * size, (i + 1) * size)) for i, codec in enumerate(COMPRESSIONS)]


def sasl_kafka_python(cluster) -> dict:
    return {
        "bootstrap_servers": cluster.bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": cluster.username,
        "sasl_plain_password": cluster.password,
    }


def test_kafka_python(cluster):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    topic = "kafka-python-orders"
    common = sasl_kafka_python(cluster)
    admin = KafkaAdminClient(**common)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    wait_until_every_node_knows(cluster, topic)

    for codec, numbers in chunks():
        # kafka-python's default producer: idempotent (acks=all, which is acks=1 here until
        # replication), the setting under which Kafka keeps order across retries.
        producer = KafkaProducer(**common, linger_ms=5, compression_type=codec)
        futures = []
        for i in numbers:
            key, value, ts = record(i)
            futures.append(producer.send(topic, key=key, value=value, timestamp_ms=ts))
        producer.flush()
        for future in futures:
            assert future.get(timeout=30).partition in range(PARTITIONS)
        producer.close()

    consumer = KafkaConsumer(**common, enable_auto_commit=False, consumer_timeout_ms=10_000)
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    got = defaultdict(list)
    deadline = time.monotonic() + 60
    while sum(map(len, got.values())) < RECORDS and time.monotonic() < deadline:
        for tp, messages in consumer.poll(timeout_ms=1000).items():
            for m in messages:
                got[tp.partition].append((m.offset, m.key, m.value, m.timestamp))
    check_read_back(topic, got)

    target = BASE_TS + 5000
    found = consumer.offsets_for_times({tp: target for tp in partitions})
    for tp, answer in found.items():
        rows = got[tp.partition]
        expected = next((o for o, _, _, ts in rows if ts >= target), None)
        assert (answer.offset if answer else None) == expected
    ends = consumer.end_offsets(partitions)
    assert {tp.partition: end for tp, end in ends.items()} == {
        p: len(rows) for p, rows in got.items()
    }
    consumer.close()


def test_aiokafka(cluster):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = "aiokafka-orders"
    common = {
        "bootstrap_servers": cluster.bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": cluster.username,
        "sasl_plain_password": cluster.password,
    }

    async def run() -> None:
        admin = AIOKafkaAdminClient(**common)
        await admin.start()
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
        await admin.close()
        await asyncio.to_thread(wait_until_every_node_knows, cluster, topic)

        for codec, numbers in chunks():
            producer = AIOKafkaProducer(**common, acks=1, linger_ms=5, compression_type=codec)
            await producer.start()
            try:
                pending = []
                for i in numbers:
                    key, value, ts = record(i)
                    pending.append(
                        await producer.send(topic, key=key, value=value, timestamp_ms=ts)
                    )
                await asyncio.gather(*pending)
            finally:
                await producer.stop()

        consumer = AIOKafkaConsumer(**common, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning()
            got = defaultdict(list)
            deadline = time.monotonic() + 60
            while sum(map(len, got.values())) < RECORDS and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, messages in batches.items():
                    for m in messages:
                        got[tp.partition].append((m.offset, m.key, m.value, m.timestamp))
            check_read_back(topic, got)
            target = BASE_TS + 7000
            found = await consumer.offsets_for_times({tp: target for tp in partitions})
            for tp, answer in found.items():
                expected = next((o for o, _, _, ts in got[tp.partition] if ts >= target), None)
                assert (answer.offset if answer else None) == expected
        finally:
            await consumer.stop()

    asyncio.run(run())


def test_confluent_kafka(cluster):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = "confluent-orders"
    common = {
        "bootstrap.servers": cluster.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": cluster.username,
        "sasl.password": cluster.password,
    }
    admin = AdminClient(common)
    for future in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS)]).values():
        future.result(timeout=30)
    metadata = admin.list_topics(topic, timeout=10)
    assert len(metadata.topics[topic].partitions) == PARTITIONS
    assert len(metadata.brokers) == 3
    wait_until_every_node_knows(cluster, topic)

    errors = []
    for codec, numbers in chunks():
        producer = Producer(
            {**common, "acks": 1, "linger.ms": 5, "partitioner": "murmur2_random",
             "compression.type": codec or "none"}
        )
        for i in numbers:
            key, value, ts = record(i)
            producer.produce(
                topic, key=key, value=value, timestamp=ts,
                on_delivery=lambda err, msg: err and errors.append(err),
            )
            producer.poll(0)
        assert producer.flush(30) == 0
    assert errors == []

    consumer = Consumer({**common, "group.id": "reader", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got = defaultdict(list)
    deadline = time.monotonic() + 60
    while sum(map(len, got.values())) < RECORDS and time.monotonic() < deadline:
        for m in consumer.consume(num_messages=1000, timeout=1):
            assert m.error() is None, m.error()
            got[m.partition()].append((m.offset(), m.key(), m.value(), m.timestamp()[1]))
    check_read_back(topic, got)

    target = BASE_TS + 2500
    found = consumer.offsets_for_times(
        [TopicPartition(topic, p, target) for p in range(PARTITIONS)], timeout=10
    )
    for tp in found:
        expected = next((o for o, _, _, ts in got[tp.partition] if ts >= target), -1)
        assert tp.offset == expected
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    assert (low, high) == (0, len(got[0]))
    consumer.close()


def test_tenants_see_only_their_own_topics_on_the_wire(cluster):
    from confluent_kafka.admin import AdminClient, NewTopic

    token = cluster.manage("issue_api_key", "globex", "--create").strip()
    username, password = token.split(".", 1)

    def admin_for(user: str, secret: str) -> AdminClient:
        return AdminClient({
            "bootstrap.servers": cluster.bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": user,
            "sasl.password": secret,
        })

    acme, globex = admin_for(cluster.username, cluster.password), admin_for(username, password)
    for admin in (acme, globex):
        for future in admin.create_topics([NewTopic("orders", num_partitions=2)]).values():
            future.result(timeout=30)
    acme_topics = set(acme.list_topics(timeout=10).topics)
    globex_topics = set(globex.list_topics(timeout=10).topics)
    assert "orders" in acme_topics and "orders" in globex_topics
    assert "confluent-orders" not in globex_topics or "confluent-orders" in acme_topics
    assert not any(re.match(r"^(acme|globex)\.", t) for t in acme_topics | globex_topics)


def test_wrong_password_is_refused(cluster):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    errors = []
    admin = AdminClient({
        "bootstrap.servers": cluster.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": cluster.username,
        "sasl.password": "wrong",
        "error_cb": errors.append,
        "log_level": 0,
    })
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=3)
    admin.poll(1)  # error callbacks are served from poll
    assert any("Authentication failed" in str(e) or "SASL" in str(e) for e in errors), errors
