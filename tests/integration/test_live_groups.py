"""Websocket subscriptions as members of consumer groups, against real broker nodes and uvicorn.

Two sockets in one group split a topic's partitions and together get every record once; when
one closes, the other is assigned everything and gets the rest, none lost and none again
(the closing socket committed what it was sent); a Kafka client shares a group with a socket;
a new member starts after what an unsubscribed socket was sent; a client that stops reading is
waited for, never skipped (while a tail subscription on its socket is); and bad group messages
get error frames on a socket that stays usable.
"""

import asyncio
import threading
import time
from collections import defaultdict

import orjson
import pytest
from websockets.asyncio.client import connect

from tests.integration.cluster import running_cluster
from tests.integration.test_live_feed import (
    RawSocketClient,
    auth,
    create_topic,
    frames_until,
    produce,
    records_of,
    subscribe,
)

pytestmark = pytest.mark.slow

# Small, so that a client that stops reading fills its outbox at once.
OUTBOX_RECORDS = 400
OUTBOX_BYTES = 1024 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("live-groups"), broker_count=2) as cluster:
        cluster.env["DJAFKA_LIVE_OUTBOX_RECORDS"] = str(OUTBOX_RECORDS)
        cluster.env["DJAFKA_LIVE_OUTBOX_BYTES"] = str(OUTBOX_BYTES)
        cluster.start_web()
        cluster.token = cluster.manage("issue_api_key", "acme", "--create").strip()
        yield cluster


@pytest.fixture(scope="module")
def rest(cluster):
    with cluster.rest_client(cluster.token) as client:
        yield client


def join(ws, topic: str, group: str, sub_id: str, start: str = "earliest"):
    return subscribe(ws, topic=topic, group=group, id=sub_id, **{"from": start})


class Assignments:
    """Each socket's partitions as its latest ``assigned``/``revoked`` frame says."""

    def __init__(self):
        self.held: dict[str, set[int]] = {}

    def see(self, name: str, frames: list[dict]) -> None:
        for f in frames:
            if f["type"] == "assigned":
                self.held[name] = set(f["partitions"])
            elif f["type"] == "revoked":
                self.held[name] = set()


async def read_for(ws, seconds: float) -> list[dict]:
    """Every frame that comes within ``seconds``."""
    frames = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(orjson.loads(await asyncio.wait_for(ws.recv(), left)))
        except TimeoutError:
            break
    return frames


async def until_assigned(sockets: dict, wanted, timeout_s: float = 40) -> dict[str, list[dict]]:
    """Read every socket until ``wanted(assignments)``; the frames each got meanwhile."""
    seen = Assignments()
    frames: dict[str, list[dict]] = defaultdict(list)
    deadline = time.monotonic() + timeout_s
    while not wanted(seen.held):
        assert time.monotonic() < deadline, f"assignments: {seen.held}"
        for name, ws in sockets.items():
            got = await read_for(ws, 0.2)
            seen.see(name, got)
            frames[name].extend(got)
    return frames


def split(held: dict[str, set[int]], names, partitions: set[int]) -> bool:
    sets = [held.get(n, set()) for n in names]
    return all(sets) and set().union(*sets) == partitions and sum(map(len, sets)) == len(
        partitions
    )


def assert_in_order(records: list[dict]) -> None:
    by_partition = defaultdict(list)
    for r in records:
        by_partition[r["partition"]].append(r["offset"])
    for offsets in by_partition.values():
        assert offsets == sorted(set(offsets))


def test_two_sockets_split_a_group_and_the_survivor_gets_the_rest_after_a_close(cluster, rest):
    create_topic(cluster, rest, "orders", partitions=4)
    first_batch, second_batch = 2000, 1000

    async def scenario():
        async with connect(cluster.ws_url, **auth(cluster)) as a:
            b = await connect(cluster.ws_url, **auth(cluster))
            subscribed = await join(a, "orders", "workers", "g1")
            assert subscribed["group"] == "workers"
            await join(b, "orders", "workers", "g1")
            sockets = {"a": a, "b": b}
            await until_assigned(sockets, lambda h: split(h, "ab", {0, 1, 2, 3}))
            await asyncio.to_thread(produce, cluster, "orders", [
                (None, b'{"n": %d}' % i, i % 4) for i in range(first_batch)
            ])
            got = {"a": [], "b": []}
            deadline = time.monotonic() + 30
            while sum(len(records_of(f)) for f in got.values()) < first_batch:
                assert time.monotonic() < deadline
                for name, ws in sockets.items():
                    got[name].extend(await read_for(ws, 0.1))
            held = Assignments()
            for name, frames in got.items():
                held.see(name, frames)
            assert held.held == {}, "a rebalance while both were members"
            # a goes away; b is assigned everything and gets the rest, from a's commits on.
            await a.close()
            after = await until_assigned({"b": b}, lambda h: h.get("b") == {0, 1, 2, 3})
            await asyncio.to_thread(produce, cluster, "orders", [
                (None, b'{"n": %d}' % i, i % 4) for i in range(first_batch, first_batch
                                                                 + second_batch)
            ])
            rest_frames = after["b"] + await frames_until(
                b, lambda f: len(records_of(f)) >= second_batch
            )
            rest_frames += await read_for(b, 2.0)  # and nothing again
            await b.close()
            return got, rest_frames

    got, rest_frames = asyncio.run(scenario())
    first_a, first_b = records_of(got["a"]), records_of(got["b"])
    assert first_a and first_b
    # Split: each partition went to one socket only; together, each record exactly once.
    assert not {r["partition"] for r in first_a} & {r["partition"] for r in first_b}
    keys = [(r["partition"], r["offset"]) for r in first_a + first_b]
    assert len(keys) == len(set(keys)) == first_batch
    assert sorted(r["value"]["n"] for r in first_a + first_b) == list(range(first_batch))
    assert set(first_a[0]) == {
        "subscription", "partition", "offset", "timestamp", "timestamp_type", "key", "value",
        "headers",
    }
    assert_in_order(first_a)
    assert_in_order(first_b)
    # After a closed: b gets every later record, and none of a's again (a committed them).
    later = records_of(rest_frames)
    assert sorted(r["value"]["n"] for r in later) == list(
        range(first_batch, first_batch + second_batch)
    )
    assert_in_order(later)
    assert not [f for f in rest_frames if f["type"] in ("skipped", "error")]


def test_a_kafka_client_and_a_socket_share_a_group(cluster, rest):
    from confluent_kafka import Consumer

    create_topic(cluster, rest, "mixed", partitions=4)
    kafka = Consumer({
        **cluster.kafka_config(cluster.token), "group.id": "mixers",
        "auto.offset.reset": "earliest",
    })
    kafka_records: list[tuple[int, int]] = []
    # The Kafka client's partitions, as its rebalance callbacks say (asking its assignment
    # from another thread while it polls can block).
    kafka_held: set[int] = set()
    stop = threading.Event()

    def on_assign(consumer, partitions):
        kafka_held.update(tp.partition for tp in partitions)

    def on_revoke(consumer, partitions):
        kafka_held.difference_update(tp.partition for tp in partitions)

    def poll_kafka():
        while not stop.is_set():
            message = kafka.poll(0.1)
            if message is not None and message.error() is None:
                kafka_records.append((message.partition(), message.offset()))
        kafka.close()

    kafka.subscribe(["mixed"], on_assign=on_assign, on_revoke=on_revoke)
    poller = threading.Thread(target=poll_kafka, daemon=True)
    poller.start()
    count = 800

    async def scenario():
        async with connect(cluster.ws_url, **auth(cluster)) as ws:
            await join(ws, "mixed", "mixers", "m")
            # The Kafka client and the socket each hold part of the topic.
            frames = (await until_assigned(
                {"ws": ws}, lambda h: h.get("ws") and len(h["ws"]) < 4
            ))["ws"]
            held = Assignments()
            held.see("ws", frames)
            mine = held.held["ws"]
            wait_until = time.monotonic() + 30
            while kafka_held != {0, 1, 2, 3} - mine:
                assert time.monotonic() < wait_until, (mine, kafka_held)
                await asyncio.sleep(0.1)
            await asyncio.to_thread(produce, cluster, "mixed", [
                (None, b"%d" % i, i % 4) for i in range(count)
            ])
            frames += await frames_until(
                ws, lambda f: len(records_of(f)) >= count * len(mine) // 4
            )
            return mine, frames

    try:
        mine, frames = asyncio.run(scenario())
        wait_until = time.monotonic() + 30
        while len(kafka_records) < count * (4 - len(mine)) // 4:
            assert time.monotonic() < wait_until, len(kafka_records)
            time.sleep(0.1)
    finally:
        stop.set()
        poller.join(10)
    socket_keys = {(r["partition"], r["offset"]) for r in records_of(frames)}
    assert {p for p, _ in socket_keys} == mine
    assert {p for p, _ in kafka_records}.isdisjoint(mine)
    assert len(socket_keys) + len(set(kafka_records)) == count


def test_a_new_member_starts_after_what_an_unsubscribed_socket_was_sent(cluster, rest):
    from confluent_kafka import Consumer, TopicPartition

    create_topic(cluster, rest, "ledger", partitions=2)
    sent = 300

    async def scenario():
        async with connect(cluster.ws_url, **auth(cluster)) as ws:
            await join(ws, "ledger", "auditors", "l")
            await until_assigned({"ws": ws}, lambda h: h.get("ws") == {0, 1})
            await asyncio.to_thread(produce, cluster, "ledger", [
                (None, b"%d" % i, i % 2) for i in range(sent)
            ])
            first = await frames_until(ws, lambda f: len(records_of(f)) >= sent)
            await ws.send('{"action": "unsubscribe", "id": "l"}')
            await frames_until(ws, lambda f: f and f[-1]["type"] == "unsubscribed")
            # The same socket can join again later: the id is free, the group resumes.
            await asyncio.to_thread(produce, cluster, "ledger", [
                (None, b"%d" % i, i % 2) for i in range(sent, sent + 50)
            ])
            # Unsubscribing left the group and committed: the next member starts after them.
            await join(ws, "ledger", "auditors", "l")
            second = await frames_until(ws, lambda f: len(records_of(f)) >= 50, 20)
            second += await read_for(ws, 2.0)
            return first, second

    first, second = asyncio.run(scenario())
    assert len(records_of(first)) == sent
    assert sorted(r["value"] for r in records_of(second)) == list(range(sent, sent + 50))
    # And the group's committed offsets are the log end (read as a Kafka client would).
    reader = Consumer({**cluster.kafka_config(cluster.token), "group.id": "auditors"})
    try:
        deadline = time.monotonic() + 20
        while True:  # the second member commits on its next auto-commit (or when it leaves)
            committed = reader.committed(
                [TopicPartition("ledger", 0), TopicPartition("ledger", 1)], timeout=10
            )
            if sum(tp.offset for tp in committed) == sent + 50:
                break
            assert time.monotonic() < deadline, committed
            time.sleep(0.5)
    finally:
        reader.close()


def test_deleting_the_topic_ends_a_group_subscription(cluster, rest):
    create_topic(cluster, rest, "short-lived", partitions=1)
    create_topic(cluster, rest, "long-lived", partitions=1)

    async def scenario():
        async with connect(cluster.ws_url, **auth(cluster)) as ws:
            await join(ws, "short-lived", "mourners", "gone")
            await join(ws, "long-lived", "mourners", "kept")
            await until_assigned({"ws": ws}, lambda h: h.get("ws") == {0})
            assert rest.delete("/topics/short-lived").status_code == 204
            ended = await frames_until(
                ws, lambda f: bool(f) and f[-1] == {"type": "unsubscribed", "subscription": "gone"}
            )
            # The socket's other group subscription goes on.
            await asyncio.to_thread(produce, cluster, "long-lived", [(None, b'"on"', 0)])
            after = await frames_until(ws, lambda f: records_of(f))
            return ended, after

    ended, after = asyncio.run(scenario())
    errors = [f for f in ended if f["type"] == "error" and f.get("subscription") == "gone"]
    assert errors and errors[-1]["message"] == "Topic 'short-lived' was deleted."
    assert [r["value"] for r in records_of(after)] == ["on"]


def test_a_group_member_that_stops_reading_is_waited_for_never_skipped(cluster, rest):
    create_topic(cluster, rest, "bulk", partitions=1)
    count = 3000
    value = b'{"pad": "%s", "n": %%d}' % (b"x" * 4000)  # 12 MB: far over the 1 MiB outbox
    slow = RawSocketClient(cluster.ws_url, cluster.token)
    slow.send('{"action":"subscribe","id":"s","topic":"bulk","group":"bulkers","from":"earliest"}')
    assert slow.recv()["type"] == "subscribed"
    assert slow.recv() == {"type": "assigned", "subscription": "s", "partitions": [0]}
    # A tail subscription on the same socket fills the outbox too: it is skipped, the member not.
    slow.send('{"action":"subscribe","id":"t","topic":"bulk"}')
    assert slow.recv()["type"] == "subscribed"
    produce(cluster, "bulk", [(None, value % i, 0) for i in range(count)])
    time.sleep(2)  # not reading: the server must wait for this client
    slow.sock.settimeout(10)
    frames = []
    while len([r for r in records_of(frames) if r["subscription"] == "s"]) < count:
        frames.append(slow.recv())
    slow.close()
    assert [f for f in frames if f["type"] == "skipped" and f["subscription"] == "t"]
    assert not [f for f in frames if f["type"] == "error"
                or (f.get("subscription") == "s" and f["type"] == "skipped")]
    member = [r["offset"] for r in records_of(frames) if r["subscription"] == "s"]
    assert member == list(range(count))


def test_bad_group_messages_get_error_frames_and_the_socket_stays_usable(cluster, rest):
    create_topic(cluster, rest, "queue", partitions=1)

    async def scenario():
        async with connect(cluster.ws_url, **auth(cluster)) as ws:
            bad = [
                '{"action": "subscribe", "topic": "queue", "group": "w", "partitions": [0]}',
                '{"action": "subscribe", "topic": "queue", "group": "w", "key": "k"}',
                '{"action": "subscribe", "topic": "queue", "group": "w", "from": {"offset": 0}}',
                '{"action": "subscribe", "topic": "queue", "group": "w",'
                ' "from": {"timestamp": 0}}',
                '{"action": "subscribe", "topic": "queue", "group": 7}',
                '{"action": "subscribe", "topic": "nope", "group": "w"}',
            ]
            errors = []
            for text in bad:
                await ws.send(text)
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                assert frame["type"] == "error", (text, frame)
                errors.append(frame["message"])
            await join(ws, "queue", "w", "q")
            dup = '{"action": "subscribe", "topic": "queue", "group": "w", "id": "q"}'
            await ws.send(dup)
            frames = await frames_until(ws, lambda f: any(x["type"] == "error" for x in f))
            await until_assigned({"ws": ws}, lambda h: h.get("ws") == {0})
            await asyncio.to_thread(produce, cluster, "queue", [(None, b'"one"', 0)])
            frames += await frames_until(ws, lambda f: records_of(f))
            return errors, frames

    errors, frames = asyncio.run(scenario())
    assert "cannot choose 'partitions'" in errors[0]
    assert "cannot choose 'key'" in errors[1]
    assert "committed offsets" in errors[2] and "committed offsets" in errors[3]
    assert "Give 'group' as a group id" in errors[4]
    assert "does not exist" in errors[5]
    assert [r["value"] for r in records_of(frames)] == ["one"]
