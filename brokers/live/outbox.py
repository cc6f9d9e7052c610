"""A websocket's bounded queue of frames, which skips a slow client ahead instead of waiting.

Shared tails hand records to every subscriber without ever waiting (``push_record`` never
blocks): a client that does not keep up fills its outbox, and then its whole record backlog is
dropped and replaced by one ``skipped`` notice per subscription and partition, giving the
offsets it missed. So one slow client never slows the tail, the other clients or the broker.
Control frames (subscribed, error, skipped) are never dropped.
"""

import asyncio
from collections import deque
from typing import Any

from brokers.live.protocol import frame


class Outbox:
    def __init__(self, max_records: int, max_bytes: int):
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._bytes = 0
        # Entries: ("frame", text) | ("record", (sub_id, partition, offset, text)) |
        # ("skip", (sub_id, partition)), whose range lives in ``_skips`` until it is sent.
        self._entries: deque[tuple[str, Any]] = deque()
        self._record_count = 0
        self._skips: dict[tuple[Any, int], list[int]] = {}
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.skipped_records = 0

    def push_frame(self, text: str) -> None:
        self._entries.append(("frame", text))
        self._ready.set()

    def push_record(self, sub_id: Any, partition: int, offset: int, text: str) -> None:
        if self._record_count >= self.max_records or self._bytes >= self.max_bytes:
            self._skip_ahead()
        self._entries.append(("record", (sub_id, partition, offset, text)))
        self._record_count += 1
        self._bytes += len(text)
        if self._record_count >= self.max_records // 2 or self._bytes >= self.max_bytes // 2:
            self._room.clear()
        self._ready.set()

    def _skip_ahead(self) -> None:
        """Drop every queued record, noting per subscription and partition what was dropped."""
        kept: deque[tuple[str, Any]] = deque()
        for kind, payload in self._entries:
            if kind != "record":
                kept.append((kind, payload))
                continue
            sub_id, partition, offset, _ = payload
            self.skipped_records += 1
            span = self._skips.get((sub_id, partition))
            if span is None:
                self._skips[sub_id, partition] = [offset, offset]
                kept.append(("skip", (sub_id, partition)))
            else:
                span[0] = min(span[0], offset)
                span[1] = max(span[1], offset)
        self._entries = kept
        self._record_count = 0
        self._bytes = 0
        self._room.set()

    def forget(self, sub_id: Any) -> None:
        """Drop what is queued for a subscription that ended."""
        kept: deque[tuple[str, Any]] = deque()
        for kind, payload in self._entries:
            if kind in ("record", "skip") and payload[0] == sub_id:
                if kind == "record":
                    self._record_count -= 1
                    self._bytes -= len(payload[3])
                else:
                    self._skips.pop(payload, None)
                continue
            kept.append((kind, payload))
        self._entries = kept
        self._update_room()

    def _update_room(self) -> None:
        if self._record_count < self.max_records // 2 and self._bytes < self.max_bytes // 2:
            self._room.set()

    async def wait_for_room(self) -> None:
        """For a subscriber's own catch-up reader: wait until the outbox is under half full.

        Catch-up waits for its client instead of being skipped: it reads at the client's pace.
        """
        await self._room.wait()

    async def take(self, limit: int = 256) -> list[str]:
        """The next frames to send (at least one), oldest first."""
        while not self._entries:
            self._ready.clear()
            await self._ready.wait()
        texts = []
        entries = self._entries
        while entries and len(texts) < limit:
            kind, payload = entries.popleft()
            if kind == "record":
                self._record_count -= 1
                self._bytes -= len(payload[3])
                texts.append(payload[3])
            elif kind == "frame":
                texts.append(payload)
            else:
                span = self._skips.pop(payload, None)
                if span is not None:
                    texts.append(frame(
                        "skipped", subscription=payload[0], partition=payload[1],
                        from_offset=span[0], to_offset=span[1],
                    ))
        self._update_room()
        return texts
