"""Helpers shared by the partition log's tests: building batches and reading segments."""

from __future__ import annotations

import os

from brokers.log import Record
from brokers.log import batch as b
from brokers.log import records as rec


def make_records(count: int, start: int = 0, timestamp: int = 1_700_000_000_000,
                 value_bytes: int = 20) -> list[Record]:
    return [Record(key=b"key-%d" % (start + i), value=bytes([65 + i % 26]) * value_bytes,
                   headers=[("h", b"%d" % i)], timestamp=timestamp + i) for i in range(count)]


def make_batch(count: int, start: int = 0, codec: int = 0, **kwargs) -> bytearray:
    return rec.build_batch(make_records(count, start, **kwargs), 0, codec)


def all_batches(data: bytes) -> list[tuple[int, int, int, int]]:
    return list(b.iter_batches(memoryview(data)))


def segment_bytes(log) -> list[bytes]:
    out = []
    for segment in log.segments:
        with open(segment.log_path, "rb") as file:
            out.append(file.read())
    return out


def log_files(directory) -> list[str]:
    return sorted(os.listdir(directory))
