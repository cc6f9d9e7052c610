"""Records, subscribers and frames for the live feed's unit tests (no broker, no socket)."""

import asyncio
from typing import Any

import orjson

from brokers.api.wire import FetchedRecord
from brokers.live import protocol
from brokers.live.outbox import Outbox


def record(offset: int, partition: int = 0, key: bytes | None = None,
           value: bytes | None = None) -> FetchedRecord:
    value = b'{"n": %d}' % offset if value is None else value
    return FetchedRecord(partition, offset, 1_700_000_000_000 + offset, 1, key, value, [])


class Owner:
    """A subscription as the outbox sees it: an id, and the prefix of its frames."""

    def __init__(self, sub_id: Any):
        self.id = sub_id
        self.prefix = protocol.records_frame_prefix(sub_id)


def body(offset: int, partition: int = 0) -> bytes:
    return orjson.dumps({"partition": partition, "offset": offset})


def push(outbox: Outbox, owner: Owner, partition: int, *offsets: int) -> None:
    """Records pushed one at a time, as a key-filtered subscriber pushes them."""
    for offset in offsets:
        outbox.push_records(owner, partition, offset, offset, body(offset, partition), 1)


def drain(outbox: Outbox, limit: int = 256) -> list[dict]:
    """The frames one drain of the outbox sends, as JSON."""
    return [orjson.loads(text) for text in asyncio.run(outbox.take(limit))]


def offsets_in(frame: dict) -> list[tuple[int, int]]:
    return [(r["partition"], r["offset"]) for r in frame["records"]]
