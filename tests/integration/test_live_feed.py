"""Live feeds over websockets against real broker nodes and a real web process (uvicorn).

Records produced with a Kafka client reach websocket subscribers exactly once and in offset
order per partition, in batched ``records`` frames of bounded size, from the log end, from an
offset or from the start, filtered by key; bad messages are answered with error frames on a
socket that stays usable; a socket without a key is closed with 4401; a client that stops
reading is skipped ahead while a fast client on the same partitions gets every record; and a
topic deleted while tailed ends its subscriptions (error, then unsubscribed) while the socket's
other subscriptions go on, and the topic made again under its name starts clean.
"""

import asyncio
import os
import socket
import time
from collections import defaultdict

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from brokers.live.protocol import MAX_FRAME_BYTES, MAX_FRAME_RECORDS
from tests.integration.cluster import running_cluster
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.slow

# The web process's outbox per socket: small, so that the slow-client test overflows it soon.
OUTBOX_RECORDS = 5000
OUTBOX_BYTES = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("live-feed"), broker_count=2) as cluster:
        cluster.env["DJAFKA_LIVE_OUTBOX_RECORDS"] = str(OUTBOX_RECORDS)
        cluster.env["DJAFKA_LIVE_OUTBOX_BYTES"] = str(OUTBOX_BYTES)
        cluster.start_web()
        cluster.token = cluster.manage("issue_api_key", "acme", "--create").strip()
        cluster.other_token = cluster.manage("issue_api_key", "globex", "--create").strip()
        yield cluster


@pytest.fixture(scope="module")
def rest(cluster):
    with cluster.rest_client(cluster.token) as client:
        yield client


def create_topic(cluster, rest, name: str, partitions: int) -> None:
    created = rest.post("/topics", json={"name": name, "partition_count": partitions})
    assert created.status_code == 201, created.text
    wait_for(
        lambda: all(p["leader"] for p in rest.get(f"/topics/{name}").json()["partitions"]),
        30, "leaders placed",
    )
    # Every broker node knows the topic before the web tier first asks about it: a librdkafka
    # client that asks too early keeps it unknown for metadata.max.age.ms (30 s here).
    for port in cluster.broker_ports.values():
        wait_for(lambda port=port: cluster.knows_topic(cluster.token, port, name), 30,
                 f"{name} on :{port}")
    wait_for(lambda: rest.get(f"/topics/{name}/partitions").status_code == 200, 60, "offsets")


def produce(
    cluster, topic: str, records: list[tuple[bytes | None, bytes, int | None]],
    records_per_s: float | None = None,
) -> None:
    """Produce (key, value, partition) records with confluent-kafka, as the tenant.

    With ``records_per_s``, paced at about that rate (a steady stream instead of one burst).
    """
    from confluent_kafka import Producer

    producer = Producer({
        **cluster.kafka_config(cluster.token), "linger.ms": 5, "enable.idempotence": True,
    })
    started = time.monotonic()
    for index, (key, value, partition) in enumerate(records):
        if records_per_s and index % 100 == 0:
            time.sleep(max(0.0, started + index / records_per_s - time.monotonic()))
        kwargs = {} if partition is None else {"partition": partition}
        while True:
            try:
                producer.produce(topic, key=key, value=value, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


async def frames_until(ws, done, timeout_s: float = 30) -> list[dict]:
    """Frames received until ``done(frames)`` is true; fails after ``timeout_s``."""
    frames: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while not done(frames):
        try:
            text = await asyncio.wait_for(ws.recv(), max(deadline - time.monotonic(), 0))
        except TimeoutError:
            kinds = defaultdict(int)
            for f in frames:
                kinds[f["type"]] += 1
            raise AssertionError(f"timed out; got {dict(kinds)}; last: {frames[-3:]}") from None
        frames.append(orjson.loads(text))
    return frames


async def subscribe(ws, earlier: list[dict] | None = None, **message) -> dict:
    """Subscribe; the ``subscribed`` frame. Frames that come before it (records of the socket's
    other subscriptions, which may already be catching up) go to ``earlier`` if given."""
    await ws.send(orjson.dumps({"action": "subscribe", **message}).decode())
    frames = await frames_until(ws, lambda f: f and f[-1]["type"] in ("subscribed", "error"))
    assert frames[-1]["type"] == "subscribed", frames[-1]
    if earlier is not None:
        earlier.extend(frames[:-1])
    return frames[-1]


def records_of(frames: list[dict]) -> list[dict]:
    """The records of every ``records`` frame, in order, each with its frame's subscription."""
    return [
        {**record, "subscription": f["subscription"]}
        for f in frames if f["type"] == "records" for record in f["records"]
    ]


def assert_frames_bounded(frames: list[dict]) -> None:
    for f in frames:
        if f["type"] == "records":
            assert 1 <= len(f["records"]) <= MAX_FRAME_RECORDS, len(f["records"])
            if len(f["records"]) > 1:
                # Bytes of records (plus a short envelope); one larger record may go alone.
                # The server's JSON is orjson's compact form, as is this one.
                size = len(orjson.dumps(f))
                assert size <= MAX_FRAME_BYTES + 200, size


def auth(cluster) -> dict:
    return {"additional_headers": {"Authorization": f"Bearer {cluster.token}"}}


def test_produced_records_arrive_exactly_once_in_order_per_partition(cluster, rest):
    create_topic(cluster, rest, "clicks", partitions=3)
    count = 3000

    async def scenario() -> list[dict]:
        # One socket by header, one by query parameter: both subscribe at the log end.
        async with connect(cluster.ws_url, **auth(cluster)) as ws, connect(
            f"{cluster.ws_url}?api_key={cluster.token}"
        ) as ws2:
            subscribed = await subscribe(ws, topic="clicks", id="all")
            assert subscribed["topic"] == "clicks"
            assert [p["partition"] for p in subscribed["partitions"]] == [0, 1, 2]
            await subscribe(ws2, topic="clicks", id=7, partitions=[1])
            records = [(f"user-{i % 40}".encode(), b'{"n": %d}' % i, None) for i in range(count)]
            producing = asyncio.create_task(asyncio.to_thread(produce, cluster, "clicks", records))
            got = await frames_until(ws, lambda f: len(records_of(f)) >= count)
            await producing
            got2 = await frames_until(
                ws2, lambda f: len(records_of(f)) >= sum(r["partition"] == 1 for r in
                                                         records_of(got))
            )
            # Nothing more comes: exactly once.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 1.0)
            return got, got2

    got, got2 = asyncio.run(scenario())
    records = records_of(got)
    assert len(records) == count
    # Batched: a burst of records comes in fewer frames than records, each frame bounded.
    record_frames = [f for f in got if f["type"] == "records"]
    assert len(record_frames) < count
    assert max(len(f["records"]) for f in record_frames) > 1
    assert not [f for f in got if f["type"] == "record"]
    assert_frames_bounded(got)
    assert set(record_frames[0]) == {"type", "subscription", "records"}
    assert set(records[0]) == {
        "subscription", "partition", "offset", "timestamp", "timestamp_type", "key", "value",
        "headers",
    }
    by_partition = defaultdict(list)
    for record in records:
        assert record["subscription"] == "all"
        by_partition[record["partition"]].append(record["offset"])
    for offsets in by_partition.values():
        assert offsets == list(range(len(offsets)))
    assert sorted(r["value"]["n"] for r in records) == list(range(count))
    first = records[0]
    assert first["key"].startswith("user-") and first["headers"] == []
    assert isinstance(first["timestamp"], int)
    assert [r["offset"] for r in records_of(got2)] == by_partition[1]
    assert {r["subscription"] for r in records_of(got2)} == {7}


def test_key_filter_and_resume_from_offset(cluster, rest):
    create_topic(cluster, rest, "orders", partitions=2)
    records = [(f"k{i % 10}".encode(), b'{"i": %d}' % i, i % 2) for i in range(1000)]
    produce(cluster, "orders", records)

    async def scenario():
        async with connect(cluster.ws_url, **auth(cluster)) as ws:
            # A subscription's catch-up may send records before the next one is subscribed.
            earlier: list[dict] = []
            await subscribe(ws, earlier, topic="orders", id="k3", key="k3",
                            **{"from": "earliest"})
            await subscribe(ws, earlier, topic="orders", id="resume", partitions=[0],
                            **{"from": {"offset": 400}})
            await subscribe(ws, earlier, topic="orders", id="late", partitions=[1],
                            **{"from": {"offsets": {"1": 490}}})
            # Catch-up and live records of the same subscriptions: more arrive meanwhile.
            await asyncio.to_thread(produce, cluster, "orders", [
                (b"k3", b'{"i": %d}' % i, i % 2) for i in range(1000, 1010)
            ])
            expected = {"k3": 100 + 10, "resume": 100 + 5, "late": 10 + 5}

            def complete(frames):
                counts = defaultdict(int)
                for f in records_of(earlier + frames):
                    counts[f["subscription"]] += 1
                return counts == expected

            return earlier + await frames_until(ws, complete)

    frames = asyncio.run(scenario())
    k3 = [r for r in records_of(frames) if r["subscription"] == "k3"]
    assert {r["key"] for r in k3} == {"k3"}
    for partition in (0, 1):
        offsets = [r["offset"] for r in k3 if r["partition"] == partition]
        assert offsets == sorted(set(offsets))
    resume = [r["offset"] for r in records_of(frames) if r["subscription"] == "resume"]
    assert resume == list(range(400, 505))
    # Catch-up reads up to 1,000 records a fetch and sends them batched, not one per frame.
    resume_frames = [f for f in frames if f["type"] == "records" and f["subscription"] == "resume"]
    assert len(resume_frames) < len(resume)
    assert_frames_bounded(frames)
    late = [r["offset"] for r in records_of(frames) if r["subscription"] == "late"]
    assert late == list(range(490, 505))


def test_bad_messages_get_error_frames_and_the_socket_stays_usable(cluster, rest):
    create_topic(cluster, rest, "audit", partitions=1)

    async def scenario():
        async with connect(cluster.ws_url, **auth(cluster)) as ws:
            bad = [
                "not json",
                "[1, 2]",
                '{"action": "dance"}',
                '{"action": "subscribe"}',
                '{"action": "subscribe", "topic": "nope", "id": "x"}',
                '{"action": "subscribe", "topic": "audit", "partitions": [5]}',
                '{"action": "subscribe", "topic": "audit", "from": {"offset": 99}}',
                '{"action": "subscribe", "topic": "audit", "from": "yesterday"}',
                '{"action": "unsubscribe", "id": "never"}',
            ]
            errors = []
            for text in bad:
                await ws.send(text)
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                assert frame["type"] == "error", (text, frame)
                errors.append(frame["message"])
            # Another tenant's topic is as unknown as a missing one.
            async with connect(
                cluster.ws_url,
                additional_headers={"Authorization": f"Bearer {cluster.other_token}"},
            ) as other:
                await other.send('{"action": "subscribe", "topic": "audit"}')
                assert orjson.loads(await other.recv())["type"] == "error"
            await subscribe(ws, topic="audit", id="a")
            dup = '{"action": "subscribe", "topic": "audit", "id": "a"}'
            await ws.send(dup)
            assert orjson.loads(await ws.recv())["type"] == "error"
            await asyncio.to_thread(produce, cluster, "audit", [(None, b'"one"', 0)])
            first = await frames_until(ws, lambda f: records_of(f))
            await ws.send('{"action": "unsubscribe", "id": "a"}')
            gone = await frames_until(ws, lambda f: f and f[-1]["type"] == "unsubscribed")
            await asyncio.to_thread(produce, cluster, "audit", [(None, b'"two"', 0)])
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 1.0)
            return errors, first, gone

    errors, first, gone = asyncio.run(scenario())
    assert errors[0] == "Not valid JSON."
    assert "does not exist" in errors[4]
    assert "0 to 0" in errors[5]
    assert "out of range" in errors[6]
    assert records_of(first)[0]["value"] == "one"
    assert gone[-1] == {"type": "unsubscribed", "subscription": "a"}


def test_unauthenticated_sockets_are_closed_with_4401(cluster):
    async def close_code(url: str, **kwargs) -> int:
        async with connect(url, **kwargs) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        return closed.value.rcvd.code

    assert asyncio.run(close_code(cluster.ws_url)) == 4401
    assert asyncio.run(close_code(f"{cluster.ws_url}?api_key=dfk_nope.wrong")) == 4401
    assert asyncio.run(close_code(
        cluster.ws_url, additional_headers={"Authorization": "Bearer dfk_x.y"}
    )) == 4401


class RawSocketClient:
    """A websocket client on a bare socket that reads only when told to.

    Client libraries (websockets included) keep reading the socket in the background whatever
    their queue limits, so a client that truly stops reading is written by hand (RFC 6455).
    """

    def __init__(self, url: str, token: str):
        host_port = url.split("/")[2]
        host, port = host_port.split(":")
        self.sock = socket.create_connection((host, int(port)))
        # A small fixed receive buffer instead of Linux's autotuning (up to tcp_rmem's max).
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        path = "/" + url.split("/", 3)[3]
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        assert len(payload) < 126
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def recv(self) -> dict:
        """The next text frame (a ping, whose pong we never owe in this test, is passed over)."""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(self._read(2), "big")
            elif length == 127:
                length = int.from_bytes(self._read(8), "big")
            payload = self._read(length)
            if first & 0x0F == 1:
                return orjson.loads(payload)

    def close(self) -> None:
        self.sock.close()


def test_a_client_that_stops_reading_is_skipped_and_does_not_hold_up_a_fast_one(cluster, rest):
    create_topic(cluster, rest, "firehose", partitions=2)
    count = 12_000
    value = b'{"pad": "%s", "n": %%d}' % (b"x" * 4000)
    slow = RawSocketClient(cluster.ws_url, cluster.token)
    slow.send('{"action": "subscribe", "topic": "firehose", "id": "slow"}')
    assert slow.recv()["type"] == "subscribed"

    async def scenario():
        async with connect(cluster.ws_url, **auth(cluster)) as fast:
            await subscribe(fast, topic="firehose", id="fast")
            started = time.monotonic()
            # A steady 2,500 records/s (10 MB/s): a reading client keeps up, one that does not
            # read falls behind by more than its outbox and its socket buffers within seconds.
            producing = asyncio.create_task(asyncio.to_thread(
                produce, cluster, "firehose", [(None, value % i, i % 2) for i in range(count)],
                2500,
            ))
            got = await frames_until(fast, lambda f: len(records_of(f)) >= count, 60)
            fast_s = time.monotonic() - started
            await producing
            return got, fast_s

    got, fast_s = asyncio.run(scenario())
    # Now the slow one reads what it has: skipped notices and the newest records.
    slow.sock.settimeout(3)
    slow_frames = []
    try:
        while True:
            slow_frames.append(slow.recv())
    except TimeoutError:
        pass
    slow.close()
    assert len(records_of(got)) == count
    assert not [f for f in got if f["type"] == "skipped"]
    skipped = [f for f in slow_frames if f["type"] == "skipped"]
    assert skipped, f"the slow client was never skipped ahead ({len(slow_frames)} frames)"
    slow_records = records_of(slow_frames)
    missed = sum(f["to_offset"] - f["from_offset"] + 1 for f in skipped)
    # Every record is either delivered or reported skipped, once, per partition.
    assert len(slow_records) + missed == count
    for partition in (0, 1):
        seen = [r["offset"] for r in slow_records if r["partition"] == partition]
        assert seen == sorted(set(seen))
    # The slow client's backlog went out in batches, each within the frame size bound: with
    # 4 KB records, the byte bound is the one that holds.
    slow_batches = [len(f["records"]) for f in slow_frames if f["type"] == "records"]
    assert max(slow_batches) > 1
    assert max(slow_batches) <= MAX_FRAME_BYTES // 4000 + 1
    assert_frames_bounded(slow_frames)
    assert_frames_bounded(got)
    print(f"fast client: {count} records in {fast_s:.2f} s; slow client skipped {missed}")


def test_deleting_a_tailed_topic_ends_its_subscriptions_and_a_new_one_starts_clean(
    cluster, rest
):
    """Deleted over REST and over Kafka's DeleteTopics, each while two sockets tail it."""
    from confluent_kafka.admin import AdminClient

    create_topic(cluster, rest, "doomed", partitions=2)
    create_topic(cluster, rest, "doomed-too", partitions=1)
    create_topic(cluster, rest, "survivor", partitions=1)
    admin = AdminClient(cluster.kafka_config(cluster.token))

    def deleted_over_kafka(topic: str) -> None:
        admin.delete_topics([topic], operation_timeout=30)[topic].result(60)

    def ended(sub_id):
        return lambda f: bool(f) and f[-1] == {"type": "unsubscribed", "subscription": sub_id}

    async def scenario():
        async with connect(cluster.ws_url, **auth(cluster)) as ws, connect(
            cluster.ws_url, **auth(cluster)
        ) as ws2:
            await subscribe(ws, topic="doomed", id="d")
            await subscribe(ws, topic="doomed-too", id="d2", **{"from": "earliest"})
            await subscribe(ws, topic="survivor", id="s")
            await subscribe(ws2, topic="doomed", id="other", partitions=[1])
            await asyncio.to_thread(produce, cluster, "doomed", [
                (None, b'{"gen": 1, "n": %d}' % i, i % 2) for i in range(20)
            ])
            before = await frames_until(ws, lambda f: len(records_of(f)) >= 20)

            # Deleted over REST while both sockets tail it.
            assert rest.delete("/topics/doomed").status_code == 204
            gone = await frames_until(ws, ended("d"))
            gone2 = await frames_until(ws2, ended("other"))

            # Deleted over the Kafka protocol (DeleteTopics), by a Kafka admin client.
            await asyncio.to_thread(deleted_over_kafka, "doomed-too")
            gone_too = await frames_until(ws, ended("d2"))

            # The socket goes on serving its other subscription.
            await asyncio.to_thread(produce, cluster, "survivor", [(None, b'"still here"', 0)])
            survivor = await frames_until(ws, lambda f: records_of(f))

            # The same name again, one partition now: the freed id subscribes to the new topic.
            create_topic(cluster, rest, "doomed", partitions=1)
            await subscribe(ws, topic="doomed", id="d", **{"from": "earliest"})
            latest = await subscribe(ws2, topic="doomed", id="new")
            await asyncio.to_thread(produce, cluster, "doomed", [
                (None, b'{"gen": 2, "n": %d}' % i, 0) for i in range(5)
            ])

            def new_records(frames):
                counts = defaultdict(int)
                for r in records_of(frames):
                    counts[r["subscription"]] += 1
                return counts

            again = await frames_until(ws, lambda f: new_records(f)["d"] >= 5)
            again2 = await frames_until(ws2, lambda f: new_records(f)["new"] >= 5)
            with pytest.raises(TimeoutError):  # and nothing else: no record of the old topic
                await asyncio.wait_for(ws.recv(), 1.0)
            return before, gone, gone2, gone_too, survivor, latest, again, again2

    before, gone, gone2, gone_too, survivor, latest, again, again2 = asyncio.run(scenario())
    assert {r["value"]["gen"] for r in records_of(before)} == {1}
    for frames, sub_id, topic in (
        (gone, "d", "doomed"), (gone2, "other", "doomed"), (gone_too, "d2", "doomed-too")
    ):
        error, unsubscribed = frames[-2:]
        assert error == {
            "type": "error", "subscription": sub_id, "message": f"Topic '{topic}' was deleted."
        }
        assert unsubscribed["type"] == "unsubscribed"
        # Nothing but the records already read came first.
        assert {f["type"] for f in frames[:-2]} <= {"records"}
    assert [r["value"] for r in records_of(survivor)] == ["still here"]
    assert [r["subscription"] for r in records_of(survivor)] == ["s"]
    assert latest["partitions"] == [{"partition": 0, "offset": 0}]
    for frames, sub_id in ((again, "d"), (again2, "new")):
        records = [r for r in records_of(frames) if r["subscription"] == sub_id]
        assert [r["offset"] for r in records] == [0, 1, 2, 3, 4]
        assert [r["value"] for r in records] == [{"gen": 2, "n": n} for n in range(5)]
    # The web process stopped the deleted topics' tails and freed their assignments.
    web_log = cluster.processes["web"].log()
    assert "topic acme/doomed was deleted: stopped its 2 tail(s)" in web_log
    assert "topic acme/doomed-too was deleted: stopped its 1 tail(s)" in web_log
