"""A subscription takes the shared tail's records from its cursor on: batched, once, in order,
with a skipped frame for a gap; and ends cleanly when its topic is deleted."""

import uuid

from live_test_support import drain, offsets_in, record

from brokers.live import protocol
from brokers.live.outbox import Outbox
from brokers.live.record_bodies import SharedRecords
from brokers.live.subscriptions import Cursor, Subscription


class FakeTail:
    def __init__(self, next_offset: int):
        self.next_offset = next_offset


class FakeTails:
    """The registry as a subscription uses it: leave() and look_soon() are recorded."""

    def __init__(self):
        self.left: list = []
        self.looks = 0

    def leave(self, tail, listener) -> None:
        self.left.append(tail)

    def look_soon(self) -> None:
        self.looks += 1


def subscription(outbox: Outbox, partitions=(0,), ended=None, **message) -> Subscription:
    request = protocol.parse_message(
        protocol.frame("subscribe", **{"topic": "orders", "id": "s", **message})
        .replace('"type":"subscribe"', '"action":"subscribe"')
    )
    sub = Subscription("acme", request, uuid.uuid4(), outbox, FakeTails(),
                       (ended if ended is not None else []).append)
    for partition in partitions:
        cursor = sub.cursors[partition] = Cursor(FakeTail(5))
        cursor.next_offset, cursor.is_live = 5, True
    sub.started = True
    return sub


def outbox() -> Outbox:
    return Outbox(max_records=10_000, max_bytes=1 << 24)


def test_a_live_subscriber_gets_a_tail_batch_as_one_records_frame():
    box = outbox()
    sub = subscription(box)
    sub.offer(0, SharedRecords([record(o) for o in range(5, 10)]))
    frames = drain(box)
    assert len(frames) == 1
    assert offsets_in(frames[0]) == [(0, o) for o in range(5, 10)]
    assert frames[0]["records"][0]["value"] == {"n": 5}
    assert sub.cursors[0].next_offset == 10


def test_records_below_the_cursor_are_not_sent_again():
    box = outbox()
    sub = subscription(box)
    sub.offer(0, SharedRecords([record(o) for o in range(2, 8)]))
    sub.offer(0, SharedRecords([record(o) for o in range(3, 6)]))
    assert [offsets_in(f) for f in drain(box)] == [[(0, o) for o in range(5, 8)]]


def test_a_gap_before_the_tail_batch_is_reported_skipped_before_the_records():
    box = outbox()
    sub = subscription(box)
    sub.offer(0, SharedRecords([record(8), record(9)]))
    frames = drain(box)
    assert frames[0] == {"type": "skipped", "subscription": "s", "partition": 0,
                         "from_offset": 5, "to_offset": 7}
    assert offsets_in(frames[1]) == [(0, 8), (0, 9)]


def test_a_cursor_not_yet_live_takes_nothing_from_the_tail():
    box = outbox()
    sub = subscription(box)
    sub.cursors[0].is_live = False
    sub.offer(0, SharedRecords([record(5)]))
    assert box._entries == type(box._entries)()


def test_a_key_filter_keeps_only_that_key_and_moves_the_cursor_past_the_others():
    box = outbox()
    sub = subscription(box, key="k1")
    sub.offer(0, SharedRecords([record(o, key=b"k%d" % (o % 2)) for o in range(5, 11)]))
    frames = drain(box)
    assert [offsets_in(f) for f in frames] == [[(0, 5), (0, 7), (0, 9)]]
    assert sub.cursors[0].next_offset == 11


def test_subscribers_in_the_same_formats_share_the_records_formatted_once():
    box = outbox()
    first, second = subscription(box), subscription(box, id="t")
    shared = SharedRecords([record(5), record(6)])
    first.offer(0, shared)
    second.offer(0, shared)
    frames = drain(box)
    assert [f["subscription"] for f in frames] == ["s", "t"]
    assert frames[0]["records"] == frames[1]["records"]
    assert len(shared._formatted) == 1


def test_a_deleted_topic_ends_a_started_subscription_after_its_queued_records():
    box, ended = outbox(), []
    sub = subscription(box, partitions=(0, 1), ended=ended)
    sub.offer(0, SharedRecords([record(5)]))
    sub.topic_deleted("orders")
    frames = drain(box)
    assert [f["type"] for f in frames] == ["records", "error", "unsubscribed"]
    assert frames[1] == {"type": "error", "subscription": "s",
                         "message": "Topic 'orders' was deleted."}
    assert frames[2] == {"type": "unsubscribed", "subscription": "s"}
    assert ended == [sub]
    assert sub.closed and len(sub.tails.left) == 2  # it left both partitions' tails


def test_a_deleted_topic_ends_a_subscription_still_starting_without_frames():
    box, ended = outbox(), []
    sub = subscription(box, ended=ended)
    sub.started = False
    sub.topic_deleted("orders")
    assert sub.closed and ended == []
    assert box._entries == type(box._entries)()  # start() answers the subscribe instead
