"""A websocket's bounded queue of frames, which skips a slow client ahead instead of waiting.

Records queue per subscription into batches, and each drain sends a subscription's batch as
one ``records`` frame: a record pushed while the socket is busy joins the subscription's open
batch (up to ``frame_records`` records and ``frame_bytes`` bytes; then a new one opens), so a
busy socket sends fewer, larger frames and a quiet one sends each record at once. A frame
about a subscription (skipped, error, unsubscribed) closes its open batch: what is pushed
after it is sent after it, so per partition, records and notices keep their order.

Shared tails hand records to every subscriber without ever waiting (``push_records`` never
blocks): a client that does not keep up fills its outbox, and then its whole record backlog is
dropped and replaced by one ``skipped`` notice per subscription and partition, giving the
offsets it missed. So one slow client never slows the tail, the other clients or the broker.
Control frames (subscribed, error, skipped, unsubscribed) are never dropped.

A consumer group's member (``group_feed``) must not skip: its owner says
``is_skippable = False``, its records are never dropped (it waits for room instead of being
skipped), and ``confirm_sent`` tells it which of its records the socket was handed, which is
what it commits.
"""

import asyncio
from collections import deque
from typing import Any, Protocol

from brokers.live.protocol import MAX_FRAME_BYTES, MAX_FRAME_RECORDS, frame, records_frame


class Owner(Protocol):
    """Whose records a batch holds: a subscription, by identity (an id may be reused)."""

    id: Any  # the subscription id its frames name
    prefix: bytes  # protocol.records_frame_prefix(id)


def _is_skippable(owner: Owner) -> bool:
    return getattr(owner, "is_skippable", True)


class _Batch:
    """Records of one subscription queued for one ``records`` frame."""

    __slots__ = ("chunks", "count", "nbytes", "owner", "spans")

    def __init__(self, owner: Owner):
        self.owner = owner
        self.chunks: list[bytes] = []
        self.count = 0
        self.nbytes = 0
        # partition -> [first offset, last offset] queued here, to account for a skip.
        self.spans: dict[int, list[int]] = {}


class Outbox:
    def __init__(self, max_records: int, max_bytes: int, frame_records: int = MAX_FRAME_RECORDS,
                 frame_bytes: int = MAX_FRAME_BYTES):
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.frame_records = frame_records
        self.frame_bytes = frame_bytes
        self._bytes = 0
        self._record_count = 0
        # Entries: ("frame", text) | ("records", _Batch) | ("skip", (owner, partition)), whose
        # range lives in ``_skips`` until it is sent.
        self._entries: deque[tuple[str, Any]] = deque()
        self._open: dict[Owner, _Batch] = {}  # each subscription's batch still taking records
        self._skips: dict[tuple[Owner, int], list[int]] = {}
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.skipped_records = 0
        # Batches of unskippable owners taken by the last ``take``, for ``confirm_sent``.
        self._taken: list[_Batch] = []

    def push_frame(self, text: str, owner: Owner | None = None) -> None:
        """Queue a frame; one about a subscription (``owner``) goes after its queued records."""
        if owner is not None:
            self._open.pop(owner, None)
        self._entries.append(("frame", text))
        self._ready.set()

    def push_records(self, owner: Owner, partition: int, first_offset: int, last_offset: int,
                     data: bytes, count: int) -> None:
        """Queue ``count`` records (their bodies, comma-joined in ``data``) of one partition."""
        if self._record_count >= self.max_records or self._bytes >= self.max_bytes:
            self._skip_ahead()
        size = len(data) + 1
        batch = self._open.get(owner)
        if batch is None or (batch.count and (
            batch.count + count > self.frame_records or batch.nbytes + size > self.frame_bytes
        )):
            batch = self._open[owner] = _Batch(owner)
            self._entries.append(("records", batch))
        batch.chunks.append(data)
        batch.count += count
        batch.nbytes += size
        span = batch.spans.get(partition)
        if span is None:
            batch.spans[partition] = [first_offset, last_offset]
        else:
            span[1] = last_offset
        self._record_count += count
        self._bytes += size
        if self._record_count >= self.max_records // 2 or self._bytes >= self.max_bytes // 2:
            self._room.clear()
        self._ready.set()

    def _skip_ahead(self) -> None:
        """Drop every queued record, noting per subscription and partition what was dropped."""
        kept: deque[tuple[str, Any]] = deque()
        kept_records = kept_bytes = 0
        for kind, payload in self._entries:
            if kind != "records" or not _is_skippable(payload.owner):
                kept.append((kind, payload))
                if kind == "records":
                    kept_records += payload.count
                    kept_bytes += payload.nbytes
                continue
            self.skipped_records += payload.count
            for partition, (first, last) in payload.spans.items():
                key = (payload.owner, partition)
                span = self._skips.get(key)
                if span is None:
                    self._skips[key] = [first, last]
                    kept.append(("skip", key))
                else:
                    span[0] = min(span[0], first)
                    span[1] = max(span[1], last)
        self._entries = kept
        self._open.clear()
        self._record_count = kept_records
        self._bytes = kept_bytes
        self._update_room()

    def forget(self, owner: Owner) -> None:
        """Drop what is queued for a subscription that ended."""
        self._open.pop(owner, None)
        kept: deque[tuple[str, Any]] = deque()
        for kind, payload in self._entries:
            if kind == "records" and payload.owner is owner:
                self._record_count -= payload.count
                self._bytes -= payload.nbytes
            elif kind == "skip" and payload[0] is owner:
                self._skips.pop(payload, None)
            else:
                kept.append((kind, payload))
        self._entries = kept
        self._update_room()

    def _update_room(self) -> None:
        if self._record_count < self.max_records // 2 and self._bytes < self.max_bytes // 2:
            self._room.set()

    def has_room(self) -> bool:
        """Whether the outbox is under half full (read from any thread: a hint, not a lock)."""
        return self._room.is_set()

    async def wait_for_room(self) -> None:
        """For a subscriber's own catch-up reader: wait until the outbox is under half full.

        Catch-up waits for its client instead of being skipped: it reads at the client's pace.
        """
        await self._room.wait()

    async def take(self, limit: int = 256) -> list[str]:
        """The next frames to send (at least one), oldest first; open batches close here."""
        while not self._entries:
            self._ready.clear()
            await self._ready.wait()
        texts = []
        entries = self._entries
        while entries and len(texts) < limit:
            kind, payload = entries.popleft()
            if kind == "records":
                owner = payload.owner
                if self._open.get(owner) is payload:
                    del self._open[owner]
                self._record_count -= payload.count
                self._bytes -= payload.nbytes
                texts.append(records_frame(owner.prefix, payload.chunks))
                if not _is_skippable(owner):
                    self._taken.append(payload)
            elif kind == "frame":
                texts.append(payload)
            else:
                span = self._skips.pop(payload, None)
                if span is not None:
                    texts.append(frame(
                        "skipped", subscription=payload[0].id, partition=payload[1],
                        from_offset=span[0], to_offset=span[1],
                    ))
        self._update_room()
        return texts

    def confirm_sent(self) -> None:
        """The last ``take``'s frames were written: tell unskippable owners what they held.

        Each gets ``sent(partition, last_offset)`` per partition of each batch, in order.
        """
        taken, self._taken = self._taken, []
        for batch in taken:
            for partition, (_first, last) in batch.spans.items():
                batch.owner.sent(partition, last)
