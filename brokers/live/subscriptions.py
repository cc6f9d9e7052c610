"""One subscription of a websocket: its partitions' positions, its catch-up, its key filter.

Each partition has a cursor: the next offset this subscriber is owed. Starting at the log end
("latest") it is live at once: it takes records from the shared tail. Starting earlier (an
offset, a time, the earliest offset) it first reads on its own (``wire.fetch_async``, batches
of up to ``CATCH_UP_RECORDS``), waiting for its client to drain, until its cursor reaches the tail's
position; then it joins the tail. Both steps run on the event loop and compare offsets, so
every record is sent once and in offset order per partition: tail records below the cursor are
ignored, and a subscriber joins only when no record lies between it and the tail.

When its topic is deleted, a started subscription sends what it has queued, then an ``error``
frame saying so and ``unsubscribed``, and ends; the socket's other subscriptions go on.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from brokers.api import wire
from brokers.live import protocol
from brokers.live.outbox import Outbox
from brokers.live.record_bodies import SharedRecords
from brokers.live.sync import run_blocking
from brokers.live.tails import PartitionTail, TailRegistry, TopicDeleted

log = logging.getLogger(__name__)

CATCH_UP_RECORDS = 1000
CATCH_UP_BYTES = 4 * 1024 * 1024
RETRY_S = 1.0


class Cursor:
    __slots__ = ("is_live", "next_offset", "tail")

    def __init__(self, tail: PartitionTail):
        self.tail = tail
        self.next_offset = -1
        self.is_live = False


class Subscription:
    def __init__(self, tenant: str, request: protocol.Subscribe, topic_id: uuid.UUID,
                 outbox: Outbox, tails: TailRegistry,
                 on_deleted: Callable[["Subscription"], None]):
        self.tenant = tenant
        self.request = request
        self.id = request.id
        self.topic_id = topic_id
        self.on_deleted = on_deleted
        self.outbox = outbox
        self.tails = tails
        self.cursors: dict[int, Cursor] = {}
        self.prefix = protocol.records_frame_prefix(request.id)
        self._formats = (request.key_format, request.value_format)
        self._catch_ups: list[asyncio.Task] = []
        self.started = False
        self.closed = False

    # --- Start and stop ------------------------------------------------------------------

    async def start(self, partitions: list[int]) -> dict[int, int]:
        """Join the partitions' tails and position every cursor; the start offset by partition.

        Raises wire.WireError (or ProtocolError for an offset out of range or a topic deleted
        meanwhile) after undoing.
        """
        topic = self.request.topic
        try:
            for partition in partitions:
                tail = await self.tails.join(self.tenant, topic, self.topic_id, partition, self)
                self.cursors[partition] = Cursor(tail)
            starts = await self._start_offsets(partitions)
            if self.closed:  # the topic was deleted meanwhile (``topic_deleted``)
                raise TopicDeleted(topic)
        except TopicDeleted as exc:
            self.close()
            raise protocol.ProtocolError(str(exc), self.id) from None
        except BaseException:
            self.close()
            raise
        self.started = True
        for partition, offset in starts.items():
            cursor = self.cursors[partition]
            cursor.next_offset = offset
            if offset >= cursor.tail.next_offset:
                cursor.is_live = True
        return starts

    def catch_up(self) -> None:
        """Start reading, on its own, each partition that starts behind its tail."""
        for partition, cursor in self.cursors.items():
            if not cursor.is_live:
                self._catch_ups.append(asyncio.create_task(self._catch_up(partition, cursor)))

    async def _start_offsets(self, partitions: list[int]) -> dict[int, int]:
        start, topic = self.request.start, self.request.topic
        if start.position == "latest":
            # The tail's own position: a latest subscriber goes live with no catch-up.
            return {p: self.cursors[p].tail.next_offset for p in partitions}
        if start.position == "earliest":
            found = await run_blocking(
                wire.list_offsets, self.tenant, {topic: partitions}, wire.EARLIEST_TIMESTAMP
            )
            return {p: found[topic, p] for p in partitions}
        if start.timestamp_ms is not None:
            found = await run_blocking(
                wire.list_offsets, self.tenant, {topic: partitions}, start.timestamp_ms
            )
            # No record at or after the time: start at the log end, as Kafka's consumers do.
            return {
                p: found[topic, p] if found[topic, p] >= 0 else self.cursors[p].tail.next_offset
                for p in partitions
            }
        wanted = {p: start.offset for p in partitions} if start.offsets is None else {
            p: start.offsets.get(p, None) for p in partitions
        }
        marks = await run_blocking(wire.watermarks, self.tenant, topic, partitions)
        starts = {}
        for partition, offset in wanted.items():
            log_start, log_end = marks[partition]
            if offset is None:
                offset = max(log_end, self.cursors[partition].tail.next_offset)
            elif not log_start <= offset <= log_end:
                raise protocol.ProtocolError(
                    f"Offset {offset} is out of range for partition {partition}: it has "
                    f"offsets {log_start} to {log_end} (the log end offset).",
                    self.id,
                )
            starts[partition] = offset
        return starts

    def close(self, forget: bool = True) -> None:
        """Stop reading; with ``forget``, drop the records queued and not yet sent too."""
        self.closed = True
        for task in self._catch_ups:
            task.cancel()
        for cursor in self.cursors.values():
            self.tails.leave(cursor.tail, self)
        if forget:
            self.outbox.forget(self)

    def topic_deleted(self, topic: str) -> None:
        """The topic is gone: end, after the records queued, with an error and unsubscribed."""
        if self.closed:
            return
        self.close(forget=False)
        if not self.started:
            return  # ``start`` is under way: it answers the subscribe with the error
        self.outbox.push_frame(protocol.frame(
            "error", subscription=self.id, message=f"Topic '{topic}' was deleted."
        ), self)
        self.outbox.push_frame(protocol.frame("unsubscribed", subscription=self.id), self)
        self.on_deleted(self)

    # --- Records ---------------------------------------------------------------------------

    def offer(self, partition: int, shared: SharedRecords) -> None:
        """Records from the shared tail, in offset order; taken only once this cursor is live."""
        cursor = self.cursors.get(partition)
        if cursor is None or not cursor.is_live:
            return
        self._emit(partition, cursor, shared)

    def tail_error(self, partition: int, message: str) -> None:
        self.outbox.push_frame(protocol.frame(
            "error", subscription=self.id, partition=partition, message=message
        ), self)

    def _skipped(self, partition: int, from_offset: int, to_offset: int) -> None:
        self.outbox.push_frame(protocol.frame(
            "skipped", subscription=self.id, partition=partition,
            from_offset=from_offset, to_offset=to_offset,
        ), self)

    def _emit(self, partition: int, cursor: Cursor, shared: SharedRecords) -> None:
        records = shared.records
        if not records or records[-1].offset < cursor.next_offset:
            return
        formatted = shared.formatted(*self._formats)
        first, last = records[0].offset, records[-1].offset
        if (self.request.key is None and first >= cursor.next_offset
                and last - first + 1 == len(records)):
            # All of them, and no gap among them: the shared runs, whole.
            if first > cursor.next_offset and cursor.is_live:
                # The tail jumped (its offset fell out of the log): say what is missing.
                self._skipped(partition, cursor.next_offset, first - 1)
            push = self.outbox.push_records
            for run in formatted.runs():
                push(self, partition, run.first_offset, run.last_offset, run.data, run.count)
            cursor.next_offset = last + 1
            return
        key = self.request.key
        bodies = formatted.bodies()
        push = self.outbox.push_records
        for index, record in enumerate(records):
            offset = record.offset
            if offset < cursor.next_offset:
                continue
            if offset > cursor.next_offset and cursor.is_live:
                self._skipped(partition, cursor.next_offset, offset - 1)
            cursor.next_offset = offset + 1
            if key is not None and record.key != key:
                continue
            push(self, partition, offset, offset, bodies[index], 1)

    async def _catch_up(self, partition: int, cursor: Cursor) -> None:
        topic = self.request.topic
        while not self.closed:
            if cursor.next_offset >= cursor.tail.next_offset:
                cursor.is_live = True
                return
            await self.outbox.wait_for_room()
            try:
                # Awaited on the web client's loop: a catch-up holds no worker thread.
                fetched = await wire.fetch_async(
                    self.tenant, topic, partition,
                    wire.StartAt(offset=cursor.next_offset), CATCH_UP_RECORDS, CATCH_UP_BYTES, 0,
                )
            except wire.OffsetOutOfRange as exc:
                # Retention removed the records ahead of this reader: say so and go on.
                self._skipped(partition, cursor.next_offset, exc.log_start_offset - 1)
                cursor.next_offset = exc.log_start_offset
                continue
            except wire.WireError as exc:
                if exc.error == "UNKNOWN_TOPIC_OR_PARTITION":
                    # Most likely deleted: the tails' watcher finds out and ends this.
                    self.tails.look_soon()
                else:
                    self.tail_error(partition, f"{exc.error}: {exc.message}")
                await asyncio.sleep(RETRY_S)
                continue
            if self.closed or cursor.is_live:
                return
            self._emit(partition, cursor, SharedRecords(fetched.records))
            if not fetched.records and fetched.log_end_offset <= cursor.next_offset:
                # Nothing more to read: the tail is at most a long poll ahead; join it.
                cursor.next_offset = max(cursor.next_offset, fetched.log_end_offset)
                cursor.is_live = cursor.next_offset >= cursor.tail.next_offset
                if not cursor.is_live:
                    await asyncio.sleep(0.01)


def describe(subscription: Subscription, starts: dict[int, int]) -> dict[str, Any]:
    """The ``subscribed`` frame's fields."""
    request = subscription.request
    return {
        "subscription": request.id,
        "topic": request.topic,
        "partitions": [{"partition": p, "offset": o} for p, o in sorted(starts.items())],
        "key_format": request.key_format,
        "value_format": request.value_format,
    }
