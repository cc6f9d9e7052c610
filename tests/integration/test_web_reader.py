"""The web tier's reads (brokers/api/kafka_reader.py) against real broker node processes.

Fetch and ListOffsets through WebClient, logged in with a tenant's API key: records from an
offset with their keys, values, headers and timestamps, a batch that begins before the offset
trimmed; earliest, latest and a time; a long poll that wakes on a produce and does not hold up
other reads; offsets outside the log; batches confluent-kafka compressed with every codec;
max_records and max_bytes; a restarted leader; an unknown topic; a topic made again under its
name; and the awaitable fetch the live feed uses.
"""

import asyncio
import threading
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from brokers.api.kafka_client import KafkaClientError
from brokers.api.kafka_reader import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    TIMESTAMP_CREATE_TIME,
    OffsetOutOfRangeError,
    StartAt,
)
from tests.integration.conftest import wait_for
from tests.integration.web_client_support import create_topic, keyed_cluster, record, web_client

pytestmark = pytest.mark.slow

T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with keyed_cluster(tmp_path_factory.mktemp("web-reader")) as cluster:
        yield cluster


@pytest.fixture
def client(cluster):
    with web_client(cluster) as client:
        yield client


def produce(client, topic: str, records: list, partition_count: int = 1,
            max_batch_bytes: int = 1 << 20) -> None:
    results = client.produce("acme", topic, records, partition_count, 1, max_batch_bytes, 30)
    assert [r.error for r in results] == [None] * len(records)


def read(client, topic: str, start: StartAt, partition: int = 0, max_records: int = 10_000,
         max_bytes: int = 1 << 24, wait_s: float = 0, timeout_s: float = 10):
    return client.fetch("acme", topic, partition, start, max_records, max_bytes, wait_s,
                        timeout_s)


def test_reads_records_from_an_offset_with_all_their_fields(cluster, client):
    create_topic(cluster, "reads", 1)
    # One produce request is one batch: reading from offset 10 starts inside it.
    produce(client, "reads", [
        record(b"k%d" % i, b"v%d" % i, headers=[("n", b"%d" % i), ("none", None)],
               timestamp_ms=T0 + i)
        for i in range(100)
    ] + [record(None, None, timestamp_ms=T0 + 100)])

    got = read(client, "reads", StartAt(offset=10))

    assert [r.offset for r in got.records] == list(range(10, 101))
    first, last = got.records[0], got.records[-1]
    assert (first.partition, first.key, first.value, first.headers) == (
        0, b"k10", b"v10", [("n", b"10"), ("none", None)]
    )
    assert (first.timestamp_ms, first.timestamp_type) == (T0 + 10, TIMESTAMP_CREATE_TIME)
    assert (last.key, last.value, last.headers) == (None, None, None)
    assert (got.next_offset, got.log_start_offset, got.log_end_offset) == (101, 0, 101)


def test_earliest_latest_and_a_time(cluster, client):
    create_topic(cluster, "positions", 1)
    produce(client, "positions", [record(None, b"%d" % i, timestamp_ms=T0 + 10 * i)
                                  for i in range(30)])

    earliest = read(client, "positions", StartAt(position="earliest"), max_records=5)
    assert [r.offset for r in earliest.records] == [0, 1, 2, 3, 4]
    assert earliest.next_offset == 5
    latest = read(client, "positions", StartAt(position="latest"))
    assert (latest.records, latest.next_offset, latest.log_end_offset) == ([], 30, 30)
    # The first record at or after the time; none after it: the log end, as Kafka's consumers.
    at = read(client, "positions", StartAt(timestamp_ms=T0 + 105))
    assert at.records[0].offset == 11 and at.records[0].timestamp_ms == T0 + 110
    after = read(client, "positions", StartAt(timestamp_ms=T0 + 10_000))
    assert (after.records, after.next_offset) == ([], 30)

    offsets = {t: client.list_offsets("acme", {"positions": [0]}, t, 10)["positions", 0]
               for t in (EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, T0 + 105, T0 + 10_000)}
    assert offsets == {EARLIEST_TIMESTAMP: 0, LATEST_TIMESTAMP: 30, T0 + 105: 11,
                       T0 + 10_000: -1}
    assert client.watermarks("acme", "positions", [0], 10) == {0: (0, 30)}


def test_list_offsets_and_watermarks_of_many_partitions_over_both_nodes(cluster, client):
    create_topic(cluster, "spread", 4)
    produce(client, "spread", [record(None, b"x", partition=p) for p in range(4)
                               for _ in range(p + 1)], partition_count=4)
    ends = client.list_offsets("acme", {"spread": [0, 1, 2, 3], "positions": [0]},
                               LATEST_TIMESTAMP, 10)
    assert ends == {("spread", 0): 1, ("spread", 1): 2, ("spread", 2): 3, ("spread", 3): 4,
                    ("positions", 0): 30}
    assert client.watermarks("acme", "spread", [3, 1], 10) == {3: (0, 4), 1: (0, 2)}


def test_a_long_poll_at_the_log_end_wakes_on_a_produce(cluster, client):
    create_topic(cluster, "waits", 1)
    produce(client, "waits", [record(None, b"before")])
    answered = {}

    def long_poll() -> None:
        answered["result"] = read(client, "waits", StartAt(offset=1), wait_s=60)

    poll = threading.Thread(target=long_poll)
    poll.start()
    time.sleep(0.5)  # lets the Fetch reach the leader and park there (nothing says it has)
    assert poll.is_alive()  # waiting: nothing to read yet
    produce(client, "waits", [record(None, b"wake up")])
    poll.join(60)
    # Woken by the record (a poll that ran out its wait would have answered none).
    result = answered["result"]
    assert [(r.offset, r.value) for r in result.records] == [(1, b"wake up")]
    # Nothing arrives: after the wait, an empty answer at the same position.
    empty = read(client, "waits", StartAt(offset=2), wait_s=0.5)
    assert (empty.records, empty.next_offset) == ([], 2)


def test_a_parked_long_poll_does_not_hold_up_other_reads_of_its_leader(cluster, client):
    create_topic(cluster, "parked", 1)
    produce(client, "parked", [record(None, b"%d" % i) for i in range(3)])
    poll = threading.Thread(target=read, args=(client, "parked", StartAt(offset=3)),
                            kwargs={"wait_s": 30})
    poll.start()
    time.sleep(0.5)  # lets the Fetch reach the leader and park there (nothing says it has)
    got = read(client, "parked", StartAt(offset=0))
    ends = client.list_offsets("acme", {"parked": [0]}, LATEST_TIMESTAMP, 10)
    assert len(got.records) == 3 and ends == {("parked", 0): 3}
    # Answered while the parked poll still waits: not queued behind it on one connection.
    assert poll.is_alive()
    poll.join(40)


def test_an_offset_outside_the_log_is_out_of_range_with_the_log_s_range(cluster, client):
    create_topic(cluster, "retained", 1, **{"segment.bytes": "20000", "retention.ms": "1000"})
    # Batches well under segment.bytes, so the log rolls into several segments.
    for _ in range(30):
        produce(client, "retained", [record(None, b"x" * 200)] * 10)
    time.sleep(1.5)  # every closed segment is now older than retention.ms
    leader = AdminClient(cluster.kafka_config(cluster.token)).list_topics(
        "retained", timeout=5).topics["retained"].partitions[0].leader
    cluster.manage(
        "shell", "--no-imports", "-c",
        f"from brokers import tasks; tasks.send_to_broker(tasks.run_log_maintenance, {leader})",
    )
    wait_for(lambda: client.watermarks("acme", "retained", [0], 10)[0][0] > 0, 20,
             "log start moved")
    log_start, log_end = client.watermarks("acme", "retained", [0], 10)[0]
    assert log_end == 300

    for offset in (0, log_start - 1, log_end + 1):
        with pytest.raises(OffsetOutOfRangeError) as out:
            read(client, "retained", StartAt(offset=offset))
        assert (out.value.error, out.value.offset) == ("OFFSET_OUT_OF_RANGE", offset)
        assert (out.value.log_start_offset, out.value.log_end_offset) == (log_start, log_end)
    # Both ends are in range; earliest starts at the log start offset.
    assert read(client, "retained", StartAt(offset=log_end)).records == []
    earliest = read(client, "retained", StartAt(position="earliest"), max_records=1)
    assert earliest.records[0].offset == log_start
    assert (earliest.log_start_offset, earliest.log_end_offset) == (log_start, log_end)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_batches_compressed_by_confluent_kafka_read_back(cluster, client, codec):
    topic = f"packed-{codec}"
    create_topic(cluster, topic, 1)
    producer = Producer({**cluster.kafka_config(cluster.token), "compression.type": codec,
                         "linger.ms": 50})
    for i in range(500):
        producer.produce(topic, key=b"k%d" % (i % 7), value=b"value %d " % i * 10,
                         headers=[("i", b"%d" % i)], partition=0)
    assert producer.flush(30) == 0

    got = read(client, topic, StartAt(position="earliest"))

    assert [r.offset for r in got.records] == list(range(500))
    assert [r.value for r in got.records] == [b"value %d " % i * 10 for i in range(500)]
    assert [r.key for r in got.records] == [b"k%d" % (i % 7) for i in range(500)]
    assert [r.headers for r in got.records] == [[("i", b"%d" % i)] for i in range(500)]
    # Compressed, the answer's few batches carry every record at once; from the middle of
    # one, the records before the offset are left out.
    middle = read(client, topic, StartAt(offset=250), max_records=3)
    assert [r.offset for r in middle.records] == [250, 251, 252]


def test_max_records_and_max_bytes(cluster, client):
    create_topic(cluster, "limits", 1)
    for batch in range(20):  # 20 batches of 5 records, each 4 key and 100 value bytes
        produce(client, "limits", [record(b"k%03d" % (5 * batch + i), b"v" * 100)
                                   for i in range(5)])

    assert [r.offset for r in read(client, "limits", StartAt(offset=0),
                                   max_records=7).records] == list(range(7))
    # The record that reaches max_bytes is the last one; at least one always comes.
    assert len(read(client, "limits", StartAt(offset=2), max_bytes=250).records) == 3
    assert len(read(client, "limits", StartAt(offset=2), max_bytes=1).records) == 1
    # 1,500 key and value bytes are more than one Fetch of 1,500 bytes of batches carries.
    got = read(client, "limits", StartAt(offset=0), max_bytes=1500)
    assert [r.offset for r in got.records] == list(range(15))
    assert got.next_offset == 15
    everything = read(client, "limits", StartAt(offset=0))
    assert len(everything.records) == 100 and everything.next_offset == 100


def test_a_restarted_leader_is_found_again(cluster, client):
    create_topic(cluster, "restarts", 2)
    produce(client, "restarts", [record(None, b"%d" % i, partition=i % 2) for i in range(10)],
            partition_count=2)
    assert len(read(client, "restarts", StartAt(offset=0)).records) == 5
    for broker_id in (1, 2):
        cluster.processes[f"broker{broker_id}"].stop()
        cluster.start_broker(broker_id)
    # Its pooled and shared connections are dead: it reconnects and retries until the timeout.
    for partition in (0, 1):
        got = read(client, "restarts", StartAt(offset=0), partition=partition, timeout_s=60)
        assert [r.value for r in got.records] == [b"%d" % i for i in range(partition, 10, 2)]
    assert client.watermarks("acme", "restarts", [0, 1], 60) == {0: (0, 5), 1: (0, 5)}


def test_an_unknown_topic_is_unknown_topic_or_partition_after_the_timeout(cluster, client):
    with pytest.raises(KafkaClientError) as unknown:
        read(client, "no-such-topic", StartAt(offset=0), timeout_s=1)
    assert unknown.value.error == "UNKNOWN_TOPIC_OR_PARTITION"
    with pytest.raises(KafkaClientError) as unknown:
        client.list_offsets("acme", {"no-such-topic": [0]}, LATEST_TIMESTAMP, 1)
    assert unknown.value.error == "UNKNOWN_TOPIC_OR_PARTITION"


def test_a_topic_made_again_under_its_name_reads_as_the_new_one(cluster, client):
    create_topic(cluster, "reborn", 1)
    produce(client, "reborn", [record(None, b"old %d" % i) for i in range(5)])
    assert len(read(client, "reborn", StartAt(offset=0)).records) == 5
    admin = AdminClient(cluster.kafka_config(cluster.token))
    # Deleted, then made again with another partition count (the operation timeout waits
    # until the controller has removed it).
    admin.delete_topics(["reborn"], operation_timeout=30)["reborn"].result(60)
    create_topic(cluster, "reborn", 2)
    produce(client, "reborn", [record(None, b"new", partition=1)], partition_count=2)

    assert read(client, "reborn", StartAt(position="earliest")).records == []
    got = read(client, "reborn", StartAt(position="earliest"), partition=1)
    assert [(r.offset, r.value) for r in got.records] == [(0, b"new")]
    assert (got.log_start_offset, got.log_end_offset) == (0, 1)


def test_the_awaitable_fetch_holds_no_thread_and_can_be_cancelled(cluster, client):
    create_topic(cluster, "awaited", 1)
    produce(client, "awaited", [record(None, b"%d" % i) for i in range(3)])

    async def scenario() -> list[int]:
        parked = asyncio.create_task(client.fetch_async(
            "acme", "awaited", 0, StartAt(offset=3), 100, 1 << 20, 30, 10))
        await asyncio.sleep(0.3)
        parked.cancel()  # a closed websocket's catch-up: the Fetch's connection is dropped
        with pytest.raises(asyncio.CancelledError):
            await parked
        got = await client.fetch_async("acme", "awaited", 0, StartAt(offset=1), 100, 1 << 20,
                                       0, 10)
        return [r.offset for r in got.records]

    assert asyncio.run(scenario()) == [1, 2]
    # The cancelled long poll left nothing behind that holds up the next reads.
    assert [r.offset for r in read(client, "awaited", StartAt(offset=0)).records] == [0, 1, 2]
