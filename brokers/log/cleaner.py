"""Log compaction (``cleanup.policy=compact``): keep the latest record per key.

One pass (Kafka's LogCleaner, simplified to one segment in, one segment out):

1. The cleanable range is the closed segments, up to the first one younger than
   ``min.compaction.lag.ms``; the active segment is never compacted.
2. An offset map records the latest offset of every key in that range.
3. Each segment is rewritten into ``<base>.log.cleaned`` keeping a record when it is the
   latest for its key, dropping tombstones (null value) whose timestamp is older than
   ``delete.retention.ms``. A batch whose records all stay is copied byte for byte; otherwise
   its kept records are copied byte for byte into a batch with the same base offset, base
   timestamp and codec, so every record keeps its offset (gaps appear; Kafka's v2 rule).
   Control batches and records without a key stay as they are.
4. The output is fsynced, renamed ``.swap``, then swapped in by rename under the log's
   lock; recovery completes a ``.swap`` left by a crash and deletes a ``.cleaned``.

The offset map holds every distinct key of the cleanable range in memory (Kafka bounds it
with ``log.cleaner.dedupe.buffer.size`` and cleans in several passes).
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from brokers.log import batch as b
from brokers.log.records import records_body, scan_record_keys
from brokers.log.segment import Segment

if TYPE_CHECKING:
    from brokers.log.partition import PartitionLog


@dataclass
class CleanerStats:
    """What one compaction pass did."""

    segments_cleaned: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    records_read: int = 0
    records_removed: int = 0
    elapsed_s: float = 0.0


def cleanable_segments(log: PartitionLog, now_ms: int) -> list[Segment]:
    """Closed segments old enough to compact (``min.compaction.lag.ms``)."""
    lag = log.config.min_compaction_lag_ms
    out = []
    for segment in log.segments[:-1]:
        if lag > 0 and segment.max_timestamp > now_ms - lag:
            break
        out.append(segment)
    return out


def _iter_segment_batches(segment: Segment) -> Iterator[tuple[memoryview, int]]:
    """(batch view, attributes) of each batch; the view is valid only until the next one."""
    size = segment.size
    if not size:
        return
    with mmap.mmap(segment.fd, size, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            for position, length, _, _ in b.iter_batches(view, 0, size):
                batch = view[position : position + length]
                attributes = int.from_bytes(batch[b.POS_ATTRIBUTES : b.POS_ATTRIBUTES + 2],
                                            "big", signed=True)
                yield batch, attributes
                batch.release()
        finally:
            view.release()


def build_offset_map(segments: list[Segment], stats: CleanerStats) -> dict[bytes, int]:
    """key → its latest offset across ``segments``."""
    latest: dict[bytes, int] = {}
    for segment in segments:
        for batch, attributes in _iter_segment_batches(segment):
            if attributes & b.CONTROL_BIT:
                continue
            base = b.INT64.unpack_from(batch, 0)[0]
            count = int.from_bytes(batch[b.POS_RECORDS_COUNT : b.HEADER_BYTES], "big")
            records = scan_record_keys(records_body(batch), count)
            stats.records_read += len(records)
            for _, _, offset_delta, _, key, _ in records:
                if key is not None:
                    latest[key] = base + offset_delta
    return latest


def _filter_batch(batch: memoryview, attributes: int, latest: dict[bytes, int],
                  tombstone_horizon_ms: int, stats: CleanerStats) -> bytes | memoryview | None:
    """The batch with only its kept records: itself, a rebuilt batch, or None."""
    (base, _, epoch, _, _, _, _, base_ts, max_ts, producer_id, producer_epoch, base_sequence,
     count) = b.HEADER.unpack_from(batch, 0)
    body = records_body(batch)
    is_log_append_time = bool(attributes & b.TIMESTAMP_TYPE_BIT)
    kept = []
    for start, end, offset_delta, ts_delta, key, is_tombstone in scan_record_keys(body, count):
        offset = base + offset_delta
        timestamp = max_ts if is_log_append_time else base_ts + ts_delta
        if key is not None and latest.get(key, offset) != offset:
            continue  # a later record has this key
        if key is not None and is_tombstone and timestamp < tombstone_horizon_ms:
            continue  # a tombstone past delete.retention.ms
        kept.append((start, end, offset_delta, timestamp))
    stats.records_removed += count - len(kept)
    if len(kept) == count:
        return batch
    if not kept:
        return None
    new_body = b"".join(body[start:end] for start, end, _, _ in kept)
    new_max_ts = max_ts if is_log_append_time else max(t for _, _, _, t in kept)
    return b.assemble_batch(new_body, len(kept), base, attributes & b.COMPRESSION_MASK,
                            base_ts, new_max_ts, kept[-1][2], attributes=attributes,
                            leader_epoch=epoch, producer_id=producer_id,
                            producer_epoch=producer_epoch, base_sequence=base_sequence)


def clean_segment(log: PartitionLog, segment: Segment, latest: dict[bytes, int],
                  tombstone_horizon_ms: int, stats: CleanerStats) -> Segment | None:
    """Write the compacted copy of ``segment`` as ``.swap`` files; None if nothing changes."""
    cleaned = log._new_segment(segment.base_offset, suffix=".cleaned")
    changed = False
    try:
        for batch, attributes in _iter_segment_batches(segment):
            stats.bytes_read += len(batch)
            if attributes & b.CONTROL_BIT:
                out: bytes | memoryview | None = batch
            else:
                out = _filter_batch(batch, attributes, latest, tombstone_horizon_ms, stats)
            if out is not batch:
                changed = True
            if out is None:
                continue
            base, length = b.OFFSET_LENGTH.unpack_from(out, 0)
            last = base + b.LAST_OFFSET_DELTA.unpack_from(out, b.POS_LAST_OFFSET_DELTA)[0]
            max_ts = b.INT64.unpack_from(out, b.POS_MAX_TIMESTAMP)[0]
            cleaned.append([out], [(length + b.LOG_OVERHEAD, last, max_ts)])
        if not changed:
            cleaned.close()
            cleaned.delete()
            return None
        cleaned.next_offset = max(cleaned.next_offset, segment.next_offset)
        cleaned.on_become_inactive()
        cleaned.rename_suffix(".cleaned", ".swap")
        stats.bytes_written += cleaned.size
        return cleaned
    except BaseException:
        cleaned.close()
        cleaned.delete()
        raise


def compact_log(log: PartitionLog, now_ms: int) -> CleanerStats:
    """One compaction pass over ``log``; returns what it did."""
    started = time.perf_counter()
    stats = CleanerStats()
    if not log.config.is_compacted:
        return stats
    with log._compaction_lock:
        segments = cleanable_segments(log, now_ms)
        latest = build_offset_map(segments, stats)
        horizon = now_ms - log.config.delete_retention_ms
        for segment in segments:
            cleaned = clean_segment(log, segment, latest, horizon, stats)
            if cleaned is not None:
                _swap_in(log, segment, cleaned)
                stats.segments_cleaned += 1
    stats.elapsed_s = time.perf_counter() - started
    return stats


def _swap_in(log: PartitionLog, old: Segment, cleaned: Segment) -> None:
    """Replace ``old`` by ``cleaned`` (rename over its files); readers of ``old`` go on."""
    with log._lock:
        current = list(log.segments)
        if old not in current:  # retention or truncation took it meanwhile
            cleaned.close()
            cleaned.delete()
            return
        # Indexes first, the .log last: a crash between leaves .swap files recovery completes.
        cleaned.rename_suffix(".swap", "")
        current[current.index(old)] = cleaned
        log._set_segments(current)
