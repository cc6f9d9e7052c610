"""REST produce and read against real broker nodes and a real web process (uvicorn).

Records produced over REST are read back with Kafka clients and land where Java's murmur2
partitioner puts their keys; records produced with Kafka clients are read over REST from the
start, an offset, a time, and by long poll; a consumer group's lag is answered; a tenant never
reaches another tenant's topics.
"""

import threading
import time

import httpx
import pytest
from kafka.partitioner.default import murmur2

from tests.integration.cluster import running_cluster
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.slow

PARTITIONS = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("rest-data-plane"), broker_count=2) as cluster:
        cluster.start_web()
        cluster.token = cluster.manage("issue_api_key", "acme", "--create").strip()
        cluster.other_token = cluster.manage("issue_api_key", "globex", "--create").strip()
        yield cluster


@pytest.fixture(scope="module")
def rest(cluster):
    with cluster.rest_client(cluster.token) as client:
        yield client


def create_topic(rest, name: str, partitions: int = PARTITIONS, **configs: str) -> None:
    created = rest.post(
        "/topics",
        json={"name": name, "partition_count": partitions, "configs": configs},
    )
    assert created.status_code == 201, created.text
    # Leaders are placed by the controller; broker nodes learn of them within a metadata poll.
    wait_for(
        lambda: all(p["leader"] for p in rest.get(f"/topics/{name}").json()["partitions"]),
        30, "leaders placed",
    )
    wait_for(lambda: rest.get(f"/topics/{name}/partitions").status_code == 200, 30, "offsets")


def java_partition(key: bytes, partitions: int = PARTITIONS) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def test_rest_produce_lands_where_kafka_clients_put_keys_and_reads_back(cluster, rest):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    create_topic(rest, "orders")
    records = [
        {"key": f"customer-{i % 50}", "value": {"n": i, "pad": "x" * 40},
         "headers": {"source": "rest"}, "timestamp": 1_700_000_000_000 + i}
        for i in range(2000)
    ]
    answer = rest.post("/topics/orders/records", json={"records": records, "acks": "all"})
    assert answer.status_code == 200, answer.text
    results = answer.json()["records"]
    assert len(results) == 2000 and not any("error" in r for r in results)
    for record, result in zip(records, results, strict=True):
        assert result["partition"] == java_partition(record["key"].encode())

    consumer = Consumer({**cluster.kafka_config(cluster.token), "group.id": "check",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition("orders", p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 2000 and time.monotonic() < deadline:
        got.extend(m for m in consumer.consume(1000, timeout=1) if m.error() is None)
    consumer.close()
    assert len(got) == 2000
    by_offset = {
        (r["partition"], r["offset"]): rec for r, rec in zip(results, records, strict=True)
    }
    for message in got:
        sent = by_offset[message.partition(), message.offset()]
        assert message.key() == sent["key"].encode()
        assert message.value() == b'{"n":%d,"pad":"%s"}' % (sent["value"]["n"], b"x" * 40)
        assert message.headers() == [("source", b"rest")]
        assert message.timestamp()[1] == sent["timestamp"]

    # acks=0 answers partitions without offsets; an explicit partition is kept.
    zero = rest.post(
        "/topics/orders/records",
        json={"records": [{"value": "a", "partition": 2}], "acks": 0, "value_format": "string"},
    )
    assert zero.status_code == 200 and zero.json()["records"] == [{"partition": 2, "offset": None}]


def test_kafka_produced_records_read_over_rest(cluster, rest):
    from confluent_kafka import Producer

    create_topic(rest, "events", partitions=1)
    producer = Producer({**cluster.kafka_config(cluster.token), "linger.ms": 5})
    base_ts = 1_700_000_000_000
    for i in range(1200):
        producer.produce(
            "events", key=f"k{i}".encode(), value=b'{"i": %d}' % i if i % 2 else b"\xff\x00raw",
            timestamp=base_ts + i * 10, headers=[("h", b"v")],
        )
    assert producer.flush(30) == 0

    first = rest.get("/topics/events/partitions/0/records", params={"from": "earliest"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert [r["offset"] for r in body["records"]] == list(range(500))
    assert body["next_offset"] == 500
    assert (body["log_start_offset"], body["log_end_offset"]) == (0, 1200)
    raw, parsed = body["records"][0], body["records"][1]
    assert raw["value"] == "/wByYXc=" and raw["value_format"] == "base64"
    assert parsed["value"] == {"i": 1} and "value_format" not in parsed
    assert parsed["key"] == "k1" and parsed["headers"] == [["h", "v"]]
    assert parsed["timestamp"] == base_ts + 10 and parsed["timestamp_type"] == "CreateTime"

    page = rest.get(
        "/topics/events/partitions/0/records",
        params={"offset": 1100, "max_records": 1000, "value_format": "base64"},
    ).json()
    assert [r["offset"] for r in page["records"]] == list(range(1100, 1200))
    assert page["next_offset"] == 1200

    by_time = rest.get(
        "/topics/events/partitions/0/records",
        params={"timestamp": base_ts + 5005, "max_records": 2},
    ).json()
    assert [r["offset"] for r in by_time["records"]] == [501, 502]

    small = rest.get(
        "/topics/events/partitions/0/records", params={"offset": 0, "max_bytes": 1}
    ).json()
    assert len(small["records"]) == 1

    out_of_range = rest.get("/topics/events/partitions/0/records", params={"offset": 5000})
    assert out_of_range.status_code == 416
    assert out_of_range.json()["log_end_offset"] == 1200
    assert "0 to 1200" in out_of_range.json()["detail"]

    partitions = rest.get("/topics/events/partitions").json()
    assert partitions[0]["earliest_offset"] == 0 and partitions[0]["latest_offset"] == 1200

    # At the log end, the read waits for the next record and answers as soon as it comes.
    started = time.monotonic()
    answer: dict = {}

    def long_poll() -> None:
        answer["r"] = rest.get(
            "/topics/events/partitions/0/records", params={"from": "latest", "timeout_ms": 15000}
        )

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.5)  # let the poll reach the log end before the record is produced
    producer.produce("events", value=b'"late"')
    producer.flush(10)
    poller.join(20)
    elapsed = time.monotonic() - started
    assert answer["r"].status_code == 200
    assert [r["value"] for r in answer["r"].json()["records"]] == ["late"]
    assert elapsed < 10

    empty = rest.get(
        "/topics/events/partitions/0/records", params={"from": "latest", "timeout_ms": 200}
    ).json()
    assert empty["records"] == [] and empty["next_offset"] == 1201


def test_group_lag_after_a_kafka_python_consumer_commits(cluster, rest):
    from kafka import KafkaConsumer, TopicPartition

    create_topic(rest, "lagging", partitions=2)
    rest.post(
        "/topics/lagging/records",
        json={"records": [{"value": i, "partition": i % 2} for i in range(100)]},
    )
    username, password = cluster.token.split(".", 1)
    consumer = KafkaConsumer(
        "lagging", group_id="billing", bootstrap_servers=cluster.bootstrap,
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
        sasl_plain_username=username, sasl_plain_password=password,
        enable_auto_commit=False, auto_offset_reset="earliest",
    )
    wait_for(lambda: consumer.poll(timeout_ms=500) or consumer.assignment(), 30, "assignment")
    consumer.commit({
        TopicPartition("lagging", 0): __import__("kafka").OffsetAndMetadata(30, "", -1),
        TopicPartition("lagging", 1): __import__("kafka").OffsetAndMetadata(50, "", -1),
    })
    detail = rest.get("/groups/billing")
    assert detail.status_code == 200, detail.text
    group = detail.json()
    assert group["state"] == "Stable" and len(group["members"]) == 1
    assert group["members"][0]["assignment"] == {"lagging": [0, 1]}
    offsets = {o["partition"]: o for o in group["offsets"]}
    assert (offsets[0]["committed_offset"], offsets[0]["log_end_offset"], offsets[0]["lag"]) == (
        30, 50, 20)
    assert offsets[1]["lag"] == 0
    assert group["lag"] == 20
    listed = rest.get("/groups").json()
    assert [g["group_id"] for g in listed] == ["billing"]
    consumer.close()

    other = httpx.get(
        f"{cluster.base_url}/api/v1/groups/billing",
        headers={"Authorization": f"Bearer {cluster.other_token}"},
    )
    assert other.status_code == 404


def test_tenant_cannot_reach_another_tenants_topic(cluster, rest):
    create_topic(rest, "private", partitions=1)
    with httpx.Client(
        base_url=f"{cluster.base_url}/api/v1",
        headers={"Authorization": f"Bearer {cluster.other_token}"},
    ) as globex:
        produced = globex.post("/topics/private/records", json={"records": [{"value": 1}]})
        assert produced.status_code == 404
        read = globex.get("/topics/private/partitions/0/records", params={"from": "earliest"})
        assert read.status_code == 404
        assert globex.get("/topics/private/partitions").status_code == 404


def test_oversized_requests_and_records(cluster, rest):
    create_topic(rest, "small", partitions=1, **{"max.message.bytes": "2000"})
    too_many = rest.post(
        "/topics/small/records", json={"records": [{"value": 1}] * 10_001}
    )
    assert too_many.status_code == 413
    big = rest.post(
        "/topics/small/records",
        json={"records": [{"value": "x" * 5000}, {"value": "ok"}], "value_format": "string"},
    )
    assert big.status_code == 200, big.text
    first, second = big.json()["records"]
    assert first["error"] == "MESSAGE_TOO_LARGE"
    assert second == {"partition": 0, "offset": 0}
    alone = rest.post("/topics/small/records", json={"records": [{"value": "x" * 5000}]})
    assert alone.status_code == 413
