"""One subscription of a websocket: its partitions' positions, its catch-up, its key filter.

Each partition has a cursor: the next offset this subscriber is owed. Starting at the log end
("latest") it is live at once: it takes records from the shared tail. Starting earlier (an
offset, a time, the earliest offset) it first reads on its own (``wire.fetch``, batches of up
to ``CATCH_UP_RECORDS``), waiting for its client to drain, until its cursor reaches the tail's
position; then it joins the tail. Both steps run on the event loop and compare offsets, so
every record is sent once and in offset order per partition: tail records below the cursor are
ignored, and a subscriber joins only when no record lies between it and the tail.
"""

import asyncio
import logging
from typing import Any

import orjson

from brokers.api import wire
from brokers.api.record_format import record_answer
from brokers.live import protocol
from brokers.live.outbox import Outbox
from brokers.live.sync import run_blocking
from brokers.live.tails import PartitionTail, TailRegistry

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
    def __init__(self, tenant: str, request: protocol.Subscribe, outbox: Outbox,
                 tails: TailRegistry):
        self.tenant = tenant
        self.request = request
        self.id = request.id
        self.outbox = outbox
        self.tails = tails
        self.cursors: dict[int, Cursor] = {}
        self.prefix = protocol.record_frame_prefix(request.id)
        self._formats = (request.key_format, request.value_format)
        self._catch_ups: list[asyncio.Task] = []
        self.closed = False

    # --- Start and stop ------------------------------------------------------------------

    async def start(self, partitions: list[int]) -> dict[int, int]:
        """Join the partitions' tails and position every cursor; the start offset by partition.

        Raises wire.WireError (or ProtocolError for an offset out of range) after undoing.
        """
        try:
            for partition in partitions:
                tail = await self.tails.join(self.tenant, self.request.topic, partition, self)
                self.cursors[partition] = Cursor(tail)
            starts = await self._start_offsets(partitions)
        except BaseException:
            self.close()
            raise
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

    def close(self) -> None:
        self.closed = True
        for task in self._catch_ups:
            task.cancel()
        for cursor in self.cursors.values():
            self.tails.leave(cursor.tail, self)
        self.outbox.forget(self.id)

    # --- Records ---------------------------------------------------------------------------

    def offer(self, partition: int, records: list[wire.FetchedRecord], bodies: dict) -> None:
        """Records from the shared tail, in offset order; taken only once this cursor is live."""
        cursor = self.cursors.get(partition)
        if cursor is None or not cursor.is_live:
            return
        self._emit(partition, cursor, records, bodies)

    def tail_error(self, partition: int, message: str) -> None:
        self.outbox.push_frame(protocol.frame(
            "error", subscription=self.id, partition=partition, message=message
        ))

    def _emit(self, partition: int, cursor: Cursor, records: list[wire.FetchedRecord],
              bodies: dict) -> None:
        key = self.request.key
        push = self.outbox.push_record
        for index, record in enumerate(records):
            offset = record.offset
            if offset < cursor.next_offset:
                continue
            if offset > cursor.next_offset and cursor.is_live:
                # The tail jumped (its offset fell out of the log): say what is missing.
                self.outbox.push_frame(protocol.frame(
                    "skipped", subscription=self.id, partition=partition,
                    from_offset=cursor.next_offset, to_offset=offset - 1,
                ))
            cursor.next_offset = offset + 1
            if key is not None and record.key != key:
                continue
            body_key = (self._formats, index)
            body = bodies.get(body_key)
            if body is None:
                body = bodies[body_key] = _record_body(record, *self._formats)
            push(self.id, partition, offset, protocol.record_frame(self.prefix, body))

    async def _catch_up(self, partition: int, cursor: Cursor) -> None:
        topic = self.request.topic
        while not self.closed:
            if cursor.next_offset >= cursor.tail.next_offset:
                cursor.is_live = True
                return
            await self.outbox.wait_for_room()
            try:
                fetched = await run_blocking(
                    wire.fetch, self.tenant, topic, partition,
                    wire.StartAt(offset=cursor.next_offset), CATCH_UP_RECORDS, CATCH_UP_BYTES, 0,
                )
            except wire.OffsetOutOfRange as exc:
                # Retention removed the records ahead of this reader: say so and go on.
                self.outbox.push_frame(protocol.frame(
                    "skipped", subscription=self.id, partition=partition,
                    from_offset=cursor.next_offset, to_offset=exc.log_start_offset - 1,
                ))
                cursor.next_offset = exc.log_start_offset
                continue
            except wire.WireError as exc:
                self.tail_error(partition, f"{exc.error}: {exc.message}")
                await asyncio.sleep(RETRY_S)
                continue
            if self.closed or cursor.is_live:
                return
            self._emit(partition, cursor, fetched.records, {})
            if not fetched.records and fetched.log_end_offset <= cursor.next_offset:
                # Nothing more to read: the tail is at most a long poll ahead; join it.
                cursor.next_offset = max(cursor.next_offset, fetched.log_end_offset)
                cursor.is_live = cursor.next_offset >= cursor.tail.next_offset
                if not cursor.is_live:
                    await asyncio.sleep(0.01)


def _record_body(record: wire.FetchedRecord, key_format: str, value_format: str) -> bytes:
    return orjson.dumps(record_answer(record, key_format, value_format))


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
