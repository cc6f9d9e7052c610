"""REST members of consumer groups: input checks, tenancy, polls, commits, expiry; Kafka faked."""

import time
from collections import deque

import pytest
from confluent_kafka import TopicPartition

from brokers import services
from brokers.api import rest_members
from brokers.api.rest_members import MemberConfig, MemberRegistry, PolledRecord
from brokers.api.wire import FetchedRecord

pytestmark = pytest.mark.django_db


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes):
        self._args = (topic, partition, offset, value)

    def error(self):
        return None

    def topic(self):
        return self._args[0]

    def partition(self):
        return self._args[1]

    def offset(self):
        return self._args[2]

    def value(self):
        return self._args[3]

    def key(self):
        return b"k"

    def timestamp(self):
        return 1, 1_700_000_000_000

    def headers(self):
        return None


class FakeConsumer:
    """A subscribed consumer: hands out queued messages, owns ``assigned``, records commits."""

    def __init__(self, config: dict):
        self.config = config
        self.queue: deque[FakeMessage] = deque()
        self.assigned: list[tuple[str, int]] = []
        self.commits: list[list[tuple[str, int, int]]] = []
        self.closed = False
        self.on_revoke = None

    def subscribe(self, topics, on_revoke=None):
        self.topics = topics
        self.on_revoke = on_revoke

    def poll(self, timeout=None):
        return self.queue.popleft() if self.queue else None

    def consume(self, num_messages=1, timeout=None):
        taken = []
        while self.queue and len(taken) < num_messages:
            taken.append(self.queue.popleft())
        return taken

    def assignment(self):
        return [TopicPartition(t, p) for t, p in self.assigned]

    def memberid(self):
        return "rdkafka-1"

    def commit(self, offsets=None, asynchronous=True):
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])
        return offsets

    def close(self):
        self.closed = True


@pytest.fixture
def consumers(monkeypatch, settings):
    """Members get FakeConsumers (listed here); no keeper thread runs."""
    settings.DJAFKA_KAFKA_BOOTSTRAP = "127.0.0.1:1"
    made: list[FakeConsumer] = []

    def factory(config):
        made.append(FakeConsumer(config))
        return made[-1]

    monkeypatch.setattr(rest_members, "new_consumer", factory)
    monkeypatch.setattr(MemberRegistry, "_start_keeper", lambda self: None)
    yield made
    rest_members.registry.close_all()


@pytest.fixture
def orders(tenant):
    return services.create_topic(tenant, name="orders", partition_count=2)


def join(api, body: dict, group: str = "billing"):
    return api.post(f"/api/v1/groups/{group}/members", body, format="json")


def test_join_subscribes_a_group_consumer_as_the_tenant(api, orders, consumers):
    answer = join(api, {"topics": ["orders"], "session_timeout_ms": 6000,
                        "auto_offset_reset": "earliest"})
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["member_id"].startswith("rest-") and len(body["member_id"]) > 30
    assert body["kafka_member_id"] == "rdkafka-1" and body["value_format"] == "json"
    (consumer,) = consumers
    assert consumer.topics == ["orders"]
    assert consumer.config["group.id"] == "billing"
    assert consumer.config["session.timeout.ms"] == 6000
    assert consumer.config["auto.offset.reset"] == "earliest"
    assert consumer.config["enable.auto.commit"] is False
    other = join(api, {"topics": ["orders"]}).json()["member_id"]
    assert other != body["member_id"]


@pytest.mark.parametrize("topics", [[], "orders", None, ["orders", "orders"]])
def test_bad_topics_list_is_400(api, orders, consumers, topics):
    answer = join(api, {"topics": topics})
    assert answer.status_code == 400
    assert "topics" in answer.json()
    assert consumers == []


@pytest.mark.parametrize("session_timeout_ms", [5999, 300_001, -1])
def test_session_timeout_out_of_range_is_400(api, orders, consumers, session_timeout_ms):
    answer = join(api, {"topics": ["orders"], "session_timeout_ms": session_timeout_ms})
    assert answer.status_code == 400
    assert "session_timeout_ms" in answer.json()


def test_unknown_or_other_tenants_topic_is_404(api, other_api, orders, consumers):
    assert join(api, {"topics": ["orders", "nope"]}).status_code == 404
    assert join(other_api, {"topics": ["orders"]}).status_code == 404
    assert consumers == []


def test_reserved_group_id_is_400(api, orders, consumers):
    assert join(api, {"topics": ["orders"]}, group="__djafka_rest_reader").status_code == 400


def test_unknown_member_is_404_everywhere(api, orders, consumers):
    base = "/api/v1/groups/billing/members/rest-nobody"
    assert api.get(base).status_code == 404
    assert api.get(f"{base}/records").status_code == 404
    assert api.post(f"{base}/offsets", {}, format="json").status_code == 404
    assert api.get(f"{base}/assignment").status_code == 404
    assert api.delete(base).status_code == 404


def test_another_tenants_member_is_404(api, other_api, orders, consumers):
    member = join(api, {"topics": ["orders"]}).json()["member_id"]
    base = f"/api/v1/groups/billing/members/{member}"
    assert other_api.get(base).status_code == 404
    assert other_api.get(f"{base}/records").status_code == 404
    assert other_api.post(f"{base}/offsets", {}, format="json").status_code == 404
    assert other_api.get(f"{base}/assignment").status_code == 404
    assert other_api.delete(base).status_code == 404
    assert not consumers[0].closed
    # The same id under another group of the same tenant is not the member either.
    assert api.get(f"/api/v1/groups/other/members/{member}").status_code == 404
    assert api.get(base).status_code == 200


def test_poll_answers_records_and_commit_takes_the_last_polled(api, orders, consumers):
    member = join(api, {"topics": ["orders"], "value_format": "string"}).json()["member_id"]
    consumer = consumers[0]
    consumer.assigned = [("orders", 0), ("orders", 1)]
    consumer.queue.extend(FakeMessage("orders", i % 2, i // 2, b"v%d" % i) for i in range(5))
    base = f"/api/v1/groups/billing/members/{member}"

    answer = api.get(f"{base}/records", {"timeout_ms": 0, "max_records": 3})
    assert answer.status_code == 200, answer.content
    records = answer.json()["records"]
    assert [(r["topic"], r["partition"], r["offset"], r["value"]) for r in records] == [
        ("orders", 0, 0, "v0"), ("orders", 1, 0, "v1"), ("orders", 0, 1, "v2")]
    assert records[0]["key"] == "k" and records[0]["timestamp_type"] == "CreateTime"

    committed = api.post(f"{base}/offsets", format="json")
    assert committed.status_code == 200, committed.content
    assert committed.json()["offsets"] == [
        {"topic": "orders", "partition": 0, "offset": 2},
        {"topic": "orders", "partition": 1, "offset": 1},
    ]
    explicit = api.post(
        f"{base}/offsets", {"offsets": [{"topic": "orders", "partition": 1, "offset": 7}]},
        format="json",
    )
    assert explicit.status_code == 200
    assert consumer.commits[-1] == [("orders", 1, 7)]
    assert api.get(f"{base}/assignment").json()["assignment"] == {"orders": [0, 1]}


def test_bad_poll_and_commit_input_is_400_or_404(api, orders, consumers, settings):
    member = join(api, {"topics": ["orders"]}).json()["member_id"]
    base = f"/api/v1/groups/billing/members/{member}"
    too_long = settings.DJAFKA_REST_MAX_POLL_TIMEOUT_MS + 1
    assert api.get(f"{base}/records", {"timeout_ms": too_long}).status_code == 400
    assert api.get(f"{base}/records", {"max_records": 0}).status_code == 400
    for offset, partition in ((-1, 0), (1 << 63, 0), (1, 1 << 31)):  # Kafka's int64 and int32
        bad = {"offsets": [{"topic": "orders", "partition": partition, "offset": offset}]}
        assert api.post(f"{base}/offsets", bad, format="json").status_code == 400
    beyond = {"offsets": [{"topic": "orders", "partition": 2, "offset": 1}]}
    assert api.post(f"{base}/offsets", beyond, format="json").status_code == 404
    unknown = {"offsets": [{"topic": "nope", "partition": 0, "offset": 1}]}
    assert api.post(f"{base}/offsets", unknown, format="json").status_code == 404


def test_leave_closes_the_consumer(api, orders, consumers):
    member = join(api, {"topics": ["orders"]}).json()["member_id"]
    base = f"/api/v1/groups/billing/members/{member}"
    assert api.delete(base).status_code == 204
    assert consumers[0].closed
    assert api.get(f"{base}/records").status_code == 404


def test_member_not_polled_past_its_session_is_closed_by_the_keeper(api, orders, consumers):
    polled = join(api, {"topics": ["orders"], "session_timeout_ms": 6000}).json()["member_id"]
    silent = join(api, {"topics": ["orders"], "session_timeout_ms": 6000}).json()["member_id"]
    registry = rest_members.registry
    member = registry.get("acme", "billing", polled)
    member.last_seen += 5  # polled 5 s after the other
    registry.keep_once(registry.get("acme", "billing", silent).last_seen + 6.5)
    # The keeper closes an expired member on a thread of its own (LeaveGroup takes a while).
    deadline = time.monotonic() + 5
    while not consumers[1].closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert consumers[1].closed and not consumers[0].closed
    assert api.get(f"/api/v1/groups/billing/members/{silent}/assignment").status_code == 404
    assert api.get(f"/api/v1/groups/billing/members/{polled}/assignment").status_code == 200


def test_too_many_members_is_429(api, orders, consumers, settings):
    settings.DJAFKA_REST_MAX_MEMBERS_PER_TENANT = 1
    assert join(api, {"topics": ["orders"]}).status_code == 201
    assert join(api, {"topics": ["orders"]}).status_code == 429


def test_revoked_partitions_lose_held_records_and_positions():
    consumer = FakeConsumer({})
    config = MemberConfig(["orders"], 6000, "earliest", "string", "json")
    member = rest_members.RestMember("rest-x", "acme", "billing", config, consumer)
    consumer.queue.extend(FakeMessage("orders", p, 0, b"1") for p in (0, 1))
    member.poll(max_records=10, max_bytes=1 << 20, timeout_ms=0)
    assert member.positions == {("orders", 0): 1, ("orders", 1): 1}
    member.held.extend(
        PolledRecord("orders", FetchedRecord(p, 1, 0, 1, None, b"2", None)) for p in (0, 1)
    )
    member.on_revoke(consumer, [TopicPartition("orders", 1)])
    assert member.positions == {("orders", 0): 1}
    assert [p.record.partition for p in member.held] == [0]
