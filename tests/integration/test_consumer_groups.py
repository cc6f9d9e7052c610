"""A consumer group of real Kafka clients through joins, a clean leave, a kill and a full restart.

For kafka-python, aiokafka and confluent-kafka in turn, against one cluster of two broker
nodes: a 6-partition topic with 30,000 keyed records is consumed by a group whose members are
separate processes (tests/integration/group_member.py). Two members start, a third joins, the
first leaves cleanly (close → LeaveGroup), the second is SIGKILLed (its session of 6 s expires)
and the survivor finishes the topic. Every record must have been consumed exactly once, and no
partition by two members at once. Then every member stops, every broker node restarts, 3,000
more records arrive, and a fresh set of members of the same group reads only those: the group
resumed from the offsets committed to the database.

Exactly once here means: a member counts a record only once the synchronous commit covering it
succeeded, commits after every batch and in its revoke callback, and is killed only when it has
nothing processed-but-uncommitted (it reports "idle" after a commit and stops polling first).
That is the honest form of the check: across a crash Kafka promises at-least-once, so a member
killed between processing and committing would rightly see its records again elsewhere.
"""

import json
import signal
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import pytest

from tests.integration.cluster import ROOT, running_cluster
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.slow

RECORDS = 30_000
MORE_RECORDS = 3_000
PARTITIONS = 6
BROKERS = 2
CLIENTS = ["kafka-python", "aiokafka", "confluent-kafka"]
PHASE_RECORDS = 500
"""What each member must have committed in the new generation before the next change."""
MEMBER = ROOT / "tests" / "integration" / "group_member.py"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("groups"), broker_count=BROKERS) as cluster:
        token = cluster.manage("issue_api_key", "acme", "--create").strip()
        cluster.username, cluster.password = token.split(".", 1)
        yield cluster


def confluent_config(cluster) -> dict:
    return {
        "bootstrap.servers": cluster.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": cluster.username,
        "sasl.password": cluster.password,
    }


def kafka_python_config(cluster) -> dict:
    return {
        "bootstrap_servers": cluster.bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": cluster.username,
        "sasl_plain_password": cluster.password,
    }


def create_topic(cluster, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(confluent_config(cluster))
    for future in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS)]).values():
        future.result(timeout=30)


def produce(cluster, topic: str, numbers: range) -> set[tuple[int, int]]:
    """Keyed records; the (partition, offset) of each, from its delivery report."""
    from confluent_kafka import Producer

    delivered, errors = set(), []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered.add((msg.partition(), msg.offset()))

    producer = Producer(
        {**confluent_config(cluster), "acks": 1, "linger.ms": 5, "partitioner": "murmur2_random"}
    )
    for i in numbers:
        producer.produce(
            topic,
            key=f"key-{i % 997}".encode(),
            value=f"value-{i}".encode(),
            on_delivery=on_delivery,
        )
        producer.poll(0)
    assert producer.flush(60) == 0
    assert errors == []
    assert len(delivered) == len(numbers)
    return delivered


class Member:
    """One member process and what it reported."""

    def __init__(self, cluster, client: str, topic: str, group: str, name: str, paced: bool):
        self.name = name
        self.events_path = Path(cluster.var_dir) / f"{name}.events"
        config = {
            "client": client,
            "topic": topic,
            "group": group,
            "name": name,
            "paced": paced,
            "events": str(self.events_path),
            "sasl_kafka_python": kafka_python_config(cluster),
            "sasl_confluent": confluent_config(cluster),
        }
        self.process = cluster.spawn(name, [sys.executable, str(MEMBER), json.dumps(config)])
        self.killed_at: float | None = None

    def events(self) -> list[dict]:
        if self.process.popen.poll() not in (None, 0, -signal.SIGKILL):
            raise AssertionError(f"{self.name} exited:\n{self.process.log()[-4000:]}")
        if not self.events_path.exists():
            return []
        lines = self.events_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def epochs(self) -> list[dict]:
        return [e for e in self.events() if e["e"] == "assigned"]

    def signal(self, sig: int) -> None:
        self.process.popen.send_signal(sig)

    def leave(self) -> None:
        assert self.process.stop(signal.SIGTERM, timeout_s=30) == 0, self.process.log()[-4000:]
        assert any(e["e"] == "closed" for e in self.events()), self.name

    def kill(self) -> None:
        self.killed_at = time.monotonic()
        self.process.stop(signal.SIGKILL)

    def consumed_in_epoch_after(self, t: float, at_least: int = 1) -> bool:
        """It got partitions in a rebalance after ``t`` and committed records there."""
        events = self.events()
        later = {
            e["epoch"] for e in events if e["e"] == "assigned" and e["t"] > t and e["partitions"]
        }
        done = sum(
            len(e["records"]) for e in events if e["e"] == "consumed" and e["epoch"] in later
        )
        return done >= at_least


def consumed(members: list[Member]) -> list[tuple[int, int]]:
    return [
        tuple(record)
        for member in members
        for event in member.events()
        if event["e"] == "consumed"
        for record in event["records"]
    ]


def check_exactly_once(members: list[Member], produced: set[tuple[int, int]]) -> None:
    records = consumed(members)
    twice = [record for record, n in Counter(records).items() if n > 1]
    assert twice == [], f"{len(twice)} records consumed more than once, e.g. {twice[:5]}"
    assert set(records) == produced, (
        f"missing {sorted(produced - set(records))[:5]}, unexpected "
        f"{sorted(set(records) - produced)[:5]}"
    )


def check_one_holder_at_a_time(members: list[Member]) -> None:
    """Each record was read by a member holding its partition in that epoch, and no two
    members' holdings of a partition overlap in time (eager rebalancing: the old holder's
    revoke, leave or death comes before the next holder's assignment). Where the client shows
    its generation, one generation's assignments are also disjoint."""
    holdings = defaultdict(list)  # partition → [(start, end, member)]
    by_generation = defaultdict(list)  # generation → [(member, partitions)]
    for member in members:
        events = member.events()
        assert not [e for e in events if e["e"] == "stray"], f"{member.name} read a stray record"
        ends = {e["epoch"]: e["t"] for e in events if e["e"] == "revoked"}
        closing = next((e["t"] for e in events if e["e"] == "closing"), None)
        final_end = closing if closing is not None else member.killed_at
        assert final_end is not None, f"{member.name} neither closed nor was killed"
        epochs = {e["epoch"]: e for e in events if e["e"] == "assigned"}
        for number, epoch in epochs.items():
            end = min(ends.get(number, final_end), final_end)
            for partition in epoch["partitions"]:
                holdings[partition].append((epoch["t"], end, member.name))
            if epoch["gen"] is not None:
                by_generation[epoch["gen"]].append((member.name, set(epoch["partitions"])))
        for event in events:
            if event["e"] == "consumed":
                held = set(epochs[event["epoch"]]["partitions"])
                assert {p for p, _ in event["records"]} <= held, (member.name, event["epoch"])
    for partition, spans in holdings.items():
        spans.sort()
        for (_, end, holder), (start, _, successor) in pairwise(spans):
            assert start >= end, (
                f"partition {partition}: {successor} got it at {start:.3f} while {holder} "
                f"held it until {end:.3f}"
            )
    for generation, assignments in by_generation.items():
        taken = [p for _, partitions in assignments for p in partitions]
        assert len(taken) == len(set(taken)), f"generation {generation}: {assignments}"


@pytest.mark.parametrize("client", CLIENTS)
def test_group_consumes_every_record_once_across_join_leave_kill_and_restart(cluster, client):
    topic, group = f"{client}-payments", f"{client}-billing"
    began = time.monotonic()

    def step(what: str) -> None:
        print(f"{client}: {what} at {time.monotonic() - began:.1f}s")

    create_topic(cluster, topic)
    produced = produce(cluster, topic, range(RECORDS))

    def start(name: str, paced: bool = True) -> Member:
        return Member(cluster, client, topic, group, f"{client}-{name}", paced)

    step(f"{RECORDS} records produced")
    # Two members start (paced, so that the group is still busy while its membership changes).
    started = time.monotonic()
    first, second = start("first"), start("second")
    wait_for(
        lambda: all(m.consumed_in_epoch_after(started, PHASE_RECORDS) for m in (first, second)),
        60,
        "two members consuming",
    )

    step("two members consumed")
    # A third joins: everyone rebalances and all three consume.
    joined = time.monotonic()
    third = start("third")
    members = [first, second, third]
    wait_for(
        lambda: all(m.consumed_in_epoch_after(joined, PHASE_RECORDS) for m in members),
        60,
        "three members consuming after a join",
    )

    step("three members consumed after the join")
    # The first leaves cleanly: the other two take its partitions at once.
    left = time.monotonic()
    first.leave()
    wait_for(
        lambda: all(m.consumed_in_epoch_after(left, PHASE_RECORDS) for m in (second, third)),
        60,
        "two members consuming after a leave",
    )

    step("two members consumed after the leave")
    # The second is killed with nothing processed-but-uncommitted; once its session expires,
    # the third takes every partition and finishes the topic at full speed.
    second.signal(signal.SIGUSR1)
    wait_for(lambda: any(e["e"] == "idle" for e in second.events()), 30, "second idle")
    held_by_second = set(second.epochs()[-1]["partitions"])
    second.kill()
    wait_for(
        lambda: any(
            e["t"] > second.killed_at and len(e["partitions"]) == PARTITIONS for e in third.epochs()
        ),
        30,
        "the survivor holding every partition",
    )
    step(f"the survivor took over after the kill, {len(consumed(members))} records consumed")
    third.signal(signal.SIGUSR2)
    wait_for(lambda: len(consumed(members)) >= RECORDS, 90, "the topic consumed")
    third.leave()
    step("the topic consumed")

    check_exactly_once(members, produced)
    check_one_holder_at_a_time(members)
    takeover = {e["epoch"] for e in third.epochs() if e["t"] > second.killed_at}
    taken_over = {
        p
        for e in third.events()
        if e["e"] == "consumed" and e["epoch"] in takeover
        for p, _ in e["records"]
    }
    assert held_by_second & taken_over, "the killed member's partitions had nothing left"

    # All restart: members are gone; every broker node stops, then starts again.
    # (In parallel: each takes a few seconds of Celery worker shutdown or startup.)
    broker_ids = range(1, BROKERS + 1)
    with ThreadPoolExecutor(BROKERS) as pool:
        list(pool.map(lambda broker_id: cluster.processes[f"broker{broker_id}"].stop(), broker_ids))
        assert all(cluster.processes[f"broker{b}"].popen.poll() is not None for b in broker_ids)
        list(pool.map(cluster.start_broker, broker_ids))
    step("broker nodes restarted")
    more = produce(cluster, topic, range(RECORDS, RECORDS + MORE_RECORDS))
    ends = {p: max(o for q, o in produced if q == p) + 1 for p in range(PARTITIONS)}
    assert all(offset >= ends[p] for p, offset in more)

    restarted = [start("after-restart-1", paced=False), start("after-restart-2", paced=False)]
    wait_for(lambda: len(consumed(restarted)) >= MORE_RECORDS, 90, "the new records consumed")
    for member in restarted:
        member.leave()
    step(f"{MORE_RECORDS} new records consumed after the restart")
    check_exactly_once(restarted, more)
    check_one_holder_at_a_time(restarted)
