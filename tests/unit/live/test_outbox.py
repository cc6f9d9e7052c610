"""A socket's outbox: records batched per subscription into bounded frames, in order, and a
slow client skipped ahead with every dropped record accounted for."""

from live_test_support import Owner, body, drain, offsets_in, push

from brokers.live import protocol
from brokers.live.outbox import Outbox


def test_records_queued_between_drains_go_as_one_records_frame_per_subscription():
    outbox = Outbox(max_records=1000, max_bytes=1 << 20)
    a, b = Owner("a"), Owner(7)
    push(outbox, a, 0, 10, 11)
    push(outbox, b, 0, 10)
    push(outbox, a, 1, 3)  # another partition, same subscription: same frame
    push(outbox, b, 0, 11)
    push(outbox, a, 0, 12)

    frames = drain(outbox)

    assert [f["subscription"] for f in frames] == ["a", 7]
    assert offsets_in(frames[0]) == [(0, 10), (0, 11), (1, 3), (0, 12)]
    assert offsets_in(frames[1]) == [(0, 10), (0, 11)]
    assert set(frames[0]) == {"type", "subscription", "records"}
    assert frames[0]["type"] == "records"


def test_after_a_drain_new_records_open_a_new_frame():
    outbox = Outbox(max_records=1000, max_bytes=1 << 20)
    a = Owner("a")
    push(outbox, a, 0, 1, 2)
    first = drain(outbox)
    push(outbox, a, 0, 3)
    second = drain(outbox)
    assert [offsets_in(f) for f in first + second] == [[(0, 1), (0, 2)], [(0, 3)]]


def test_a_frame_holds_at_most_frame_records_records():
    outbox = Outbox(max_records=1000, max_bytes=1 << 20, frame_records=3)
    a = Owner("a")
    push(outbox, a, 0, *range(7))
    frames = drain(outbox)
    assert [len(f["records"]) for f in frames] == [3, 3, 1]
    assert [o for f in frames for _, o in offsets_in(f)] == list(range(7))


def test_a_frame_holds_at_most_frame_bytes_of_records_and_a_larger_record_goes_alone():
    size = len(body(0)) + 1
    outbox = Outbox(max_records=1000, max_bytes=1 << 20, frame_bytes=2 * size)
    a = Owner("a")
    push(outbox, a, 0, 0, 1, 2)
    big = b'{"partition":0,"offset":3,"value":"' + b"x" * (4 * size) + b'"}'
    outbox.push_records(a, 0, 3, 3, big, 1)
    push(outbox, a, 0, 4)
    frames = drain(outbox)
    assert [[o for _, o in offsets_in(f)] for f in frames] == [[0, 1], [2], [3], [4]]


def test_a_shared_run_of_records_joins_the_frame_whole():
    outbox = Outbox(max_records=1000, max_bytes=1 << 20, frame_records=5)
    a = Owner("a")
    run = b",".join(body(o) for o in range(4))
    outbox.push_records(a, 0, 0, 3, run, 4)
    outbox.push_records(a, 0, 4, 7, b",".join(body(o) for o in range(4, 8)), 4)  # 8 > 5
    frames = drain(outbox)
    assert [[o for _, o in offsets_in(f)] for f in frames] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_a_frame_about_a_subscription_goes_after_its_queued_records_and_before_later_ones():
    outbox = Outbox(max_records=1000, max_bytes=1 << 20)
    a, b = Owner("a"), Owner("b")
    push(outbox, a, 0, 1, 2)
    push(outbox, b, 0, 1)
    outbox.push_frame(protocol.frame("skipped", subscription="a", partition=0, from_offset=3,
                                     to_offset=9), a)
    push(outbox, a, 0, 10)
    push(outbox, b, 0, 2)  # b's batch is still open: it takes this one

    frames = drain(outbox)

    assert [(f["type"], f["subscription"]) for f in frames] == [
        ("records", "a"), ("records", "b"), ("skipped", "a"), ("records", "a")
    ]
    assert offsets_in(frames[0]) == [(0, 1), (0, 2)]
    assert offsets_in(frames[1]) == [(0, 1), (0, 2)]
    assert offsets_in(frames[3]) == [(0, 10)]


def test_a_full_outbox_drops_its_records_for_one_skipped_frame_per_subscription_and_partition():
    outbox = Outbox(max_records=4, max_bytes=1 << 20)
    a, b = Owner("a"), Owner("b")
    outbox.push_frame(protocol.frame("subscribed", subscription="a"))
    push(outbox, a, 0, 5, 6)
    push(outbox, a, 1, 20)
    push(outbox, b, 0, 5)
    push(outbox, a, 0, 7)  # full: everything above is dropped first, then this one queues

    frames = drain(outbox)

    assert outbox.skipped_records == 4
    assert frames[0]["type"] == "subscribed"  # control frames are never dropped
    skipped = {(f["subscription"], f["partition"]): (f["from_offset"], f["to_offset"])
               for f in frames if f["type"] == "skipped"}
    assert skipped == {("a", 0): (5, 6), ("a", 1): (20, 20), ("b", 0): (5, 5)}
    assert [offsets_in(f) for f in frames if f["type"] == "records"] == [[(0, 7)]]
    # Skips come before the records after them, per subscription.
    kinds = [(f["type"], f["subscription"]) for f in frames]
    assert kinds.index(("skipped", "a")) < kinds.index(("records", "a"))


def test_skips_of_a_client_that_stays_behind_merge_into_one_range():
    outbox = Outbox(max_records=2, max_bytes=1 << 20)
    a = Owner("a")
    push(outbox, a, 0, 1, 2, 3, 4, 5)  # dropped at 3 (1-2) and at 5 (3-4)
    frames = drain(outbox)
    assert [(f["type"], f.get("from_offset"), f.get("to_offset")) for f in frames] == [
        ("skipped", 1, 4), ("records", None, None)
    ]
    assert offsets_in(frames[1]) == [(0, 5)]


async def _room_after(outbox: Outbox) -> bool:
    import asyncio

    try:
        await asyncio.wait_for(outbox.wait_for_room(), 0.01)
    except TimeoutError:
        return False
    return True


def test_room_for_catch_up_until_half_full_and_again_once_drained():
    import asyncio

    outbox = Outbox(max_records=4, max_bytes=1 << 20)
    a = Owner("a")
    push(outbox, a, 0, 1)
    assert asyncio.run(_room_after(outbox))
    push(outbox, a, 0, 2)
    assert not asyncio.run(_room_after(outbox))
    drain(outbox)
    assert asyncio.run(_room_after(outbox))


def test_forget_drops_one_subscriptions_queue_even_when_its_id_is_reused():
    outbox = Outbox(max_records=3, max_bytes=1 << 20)
    old, new, other = Owner("a"), Owner("a"), Owner("b")
    push(outbox, old, 0, 1, 2)
    push(outbox, other, 0, 1)
    push(outbox, old, 0, 3)  # full: old's 1-2 and other's 1 become skips
    outbox.forget(old)
    push(outbox, new, 0, 0)

    frames = drain(outbox)

    assert [(f["type"], f["subscription"]) for f in frames] == [
        ("skipped", "b"), ("records", "a")
    ]
    assert offsets_in(frames[1]) == [(0, 0)]  # the new subscription's, none of the old one's


class GroupOwner(Owner):
    """A consumer group's member: never skipped, told what was sent."""

    is_skippable = False

    def __init__(self, sub_id):
        super().__init__(sub_id)
        self.sent_offsets: list[tuple[int, int]] = []

    def sent(self, partition: int, last_offset: int) -> None:
        self.sent_offsets.append((partition, last_offset))


def test_a_full_outbox_skips_tail_records_but_never_a_group_members():
    outbox = Outbox(max_records=10, max_bytes=1 << 20)
    tail, member = Owner("t"), GroupOwner("g")
    push(outbox, member, 0, *range(6))
    push(outbox, tail, 1, *range(4))
    assert not outbox.has_room()
    push(outbox, tail, 1, 4, 5)  # over the limit: the tail's backlog goes, the member's stays

    frames = drain(outbox)

    member_offsets = [o for f in frames if f.get("subscription") == "g"
                      for _, o in offsets_in(f)]
    assert member_offsets == list(range(6))
    skipped = [f for f in frames if f["type"] == "skipped"]
    assert [(f["subscription"], f["from_offset"], f["to_offset"]) for f in skipped] == [
        ("t", 0, 3)
    ]
    assert [o for f in frames if f.get("subscription") == "t" and f["type"] == "records"
            for _, o in offsets_in(f)] == [4, 5]
    assert outbox.has_room()


def test_confirm_sent_tells_a_group_member_the_last_offset_sent_per_partition():
    outbox = Outbox(max_records=1000, max_bytes=1 << 20, frame_records=2)
    tail, member = Owner("t"), GroupOwner("g")
    push(outbox, member, 0, 4, 5, 6)
    push(outbox, member, 2, 9)
    push(outbox, tail, 0, 1)
    drain(outbox)
    assert member.sent_offsets == []  # taken, not yet written
    outbox.confirm_sent()
    assert member.sent_offsets == [(0, 5), (0, 6), (2, 9)]
    outbox.confirm_sent()
    assert member.sent_offsets == [(0, 5), (0, 6), (2, 9)]
