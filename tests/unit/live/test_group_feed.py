"""A group subscription's member thread, over a fake consumer: it pauses while its socket's
outbox is full (never skipped), hands records in order, stores what was sent, and commits and
leaves on close."""

import asyncio
import threading
import time
from collections import deque

import orjson
from confluent_kafka import TopicPartition
from live_test_support import offsets_in

from brokers.live import group_feed, protocol
from brokers.live.outbox import Outbox


class FakeMessage:
    def __init__(self, partition: int, offset: int):
        self._partition, self._offset = partition, offset

    def partition(self): return self._partition
    def offset(self): return self._offset
    def timestamp(self): return (1, 1_764_060_000_000)
    def key(self): return None
    def value(self): return b"%d" % self._offset
    def headers(self): return None
    def error(self): return None


class FakeConsumer:
    """A subscribed consumer holding one partition, handing at most ``per_call`` messages."""

    def __init__(self, count: int, per_call: int = 3):
        self.queue = deque(FakeMessage(0, o) for o in range(count))
        self.per_call = per_call
        self.assigned: list[TopicPartition] = []
        self.is_paused = False
        self.max_paused_left = 0
        self.stored: list[tuple[int, int]] = []
        self.commits = 0
        self.is_closed = False
        self.lock = threading.Lock()

    def subscribe(self, topics, on_assign, on_revoke):
        self.on_assign, self.on_revoke = on_assign, on_revoke
        self.to_assign = [TopicPartition(topics[0], 0)]

    def consume(self, n, timeout=0):
        if self.to_assign:
            self.assigned, self.to_assign = self.to_assign, None
            self.on_assign(self, self.assigned)
        taken = []
        while self.queue and not self.is_paused and len(taken) < min(n, self.per_call):
            taken.append(self.queue.popleft())
        if not taken:
            time.sleep(min(timeout, 0.01))
        return taken

    def poll(self, timeout):
        taken = self.consume(1, timeout)
        return taken[0] if taken else None

    def assignment(self): return list(self.assigned)
    def pause(self, tps): self.is_paused = True
    def resume(self, tps): self.is_paused = False

    def store_offsets(self, offsets):
        self.stored.extend((tp.partition, tp.offset) for tp in offsets)

    def commit(self, asynchronous=True):
        self.commits += 1

    def close(self):
        self.on_revoke(self, self.assigned)
        self.is_closed = True


def patch(monkeypatch, consumer: FakeConsumer) -> None:
    async def run_blocking(func, *args, **kwargs):
        return await asyncio.to_thread(func, *args, **kwargs)

    monkeypatch.setattr(group_feed, "run_blocking", run_blocking)
    monkeypatch.setattr(group_feed, "consumer_config", lambda tenant, request: {})
    monkeypatch.setattr(group_feed, "new_consumer", lambda config: consumer)


async def wait_until(condition, timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


def test_a_member_pauses_while_its_outbox_is_full_and_hands_every_record_in_order(monkeypatch):
    consumer = FakeConsumer(count=60)
    patch(monkeypatch, consumer)
    request = protocol.parse_message(
        '{"action": "subscribe", "id": "g", "topic": "t", "group": "w", "from": "earliest"}'
    )

    async def scenario():
        outbox = Outbox(max_records=10, max_bytes=1 << 20)
        feed = group_feed.GroupSubscription("acme", request, outbox, lambda s: None)
        await feed.start()
        await wait_until(lambda: consumer.is_paused)
        await asyncio.sleep(0.2)  # paused, it takes no more
        queued_while_paused = outbox._record_count
        left_while_paused = len(consumer.queue)
        frames = []
        while len([r for f in frames if f["type"] == "records" for r in f["records"]]) < 60:
            frames += [orjson.loads(t) for t in await outbox.take()]
            outbox.confirm_sent()
            await asyncio.sleep(0.01)
        await wait_until(lambda: consumer.stored and consumer.stored[-1] == (0, 60))
        feed.close()
        feed._thread.join(5)
        return frames, queued_while_paused, left_while_paused

    frames, queued, left = asyncio.run(scenario())
    assert 5 <= queued <= 5 + consumer.per_call  # stops at half full, within one batch
    assert left > 0
    assert frames[0] == {"type": "assigned", "subscription": "g", "partitions": [0]}
    assert [o for f in frames if f["type"] == "records" for _, o in offsets_in(f)] == list(
        range(60)
    )
    assert not [f for f in frames if f["type"] == "skipped"]
    assert consumer.is_closed and consumer.commits >= 1


def test_records_queued_and_unsent_at_close_are_dropped_and_not_stored(monkeypatch):
    consumer = FakeConsumer(count=6, per_call=6)
    patch(monkeypatch, consumer)
    request = protocol.parse_message('{"action": "subscribe", "id": "g", "topic": "t", '
                                     '"group": "w"}')

    async def scenario():
        outbox = Outbox(max_records=1000, max_bytes=1 << 20)
        feed = group_feed.GroupSubscription("acme", request, outbox, lambda s: None)
        await feed.start()
        await wait_until(lambda: outbox._record_count == 6)
        feed.close()
        feed._thread.join(5)
        return outbox._record_count

    assert asyncio.run(scenario()) == 0
    assert consumer.stored == []
    assert consumer.is_closed
