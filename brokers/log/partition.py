"""PartitionLog: one replica's whole log (a folder of segments): append, read, retention.

Threading model: one writer thread calls the mutating methods (append_*, roll, flush,
delete_old_segments, compact's swap, truncate_*, close); they also take ``_lock``, so a
retention or compaction task may run on another thread. Any number of reader threads or
coroutines call read, read_records, offset_for_timestamp and the offsets without a lock: the
writer publishes a batch (segment size, then log end offset) only after its bytes are written,
and replaces the segment list as a whole, so a reader sees either the old or the new state and
never a half-written batch. Reads racing with truncate_to are the caller's to prevent (a
follower truncates before it serves fetches again).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from brokers.log import batch as b
from brokers.log import checkpoint, compression, records, recovery, retention
from brokers.log.config import LogConfig
from brokers.log.errors import (
    InvalidRecordException,
    KafkaStorageException,
    OffsetOutOfRangeException,
    RecordBatchTooLargeException,
)
from brokers.log.producer_state import BatchMetadata, ProducerStateManager
from brokers.log.segment import Segment

if TYPE_CHECKING:
    from brokers.log.cleaner import CleanerStats

_INT32_MAX = 2**31 - 1
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class AppendInfo:
    """What the log assigned to an append (Kafka's LogAppendInfo)."""

    base_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 unless the topic uses LogAppendTime
    log_start_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    records_count: int
    valid_bytes: int
    is_duplicate: bool = False
    """A retried batch of an idempotent producer: nothing was written, the offsets are its
    first copy's (Kafka answers such a retry with success and those offsets)."""


@dataclass(frozen=True, slots=True)
class FileSlice:
    """Whole batches lying in one segment file, ready for ``os.sendfile(sock, fd, ...)``.

    ``segment`` keeps the file open even if retention deletes it meanwhile.
    """

    segment: Segment | None
    position: int = 0
    length: int = 0
    first_offset: int = -1
    last_offset: int = -1

    @property
    def path(self) -> str | None:
        return self.segment.log_path if self.segment else None

    @property
    def fd(self) -> int:
        if self.segment is None:
            raise ValueError("an empty slice has no file")
        return self.segment.fd

    def read_bytes(self) -> bytes:
        """The slice's bytes (for callers that cannot sendfile)."""
        if not self.length or self.segment is None:
            return b""
        return self.segment.read_bytes(self.position, self.length)


class TimestampOffset(NamedTuple):
    """ListOffsets' answer: the first record at or after a timestamp."""

    timestamp: int
    offset: int


def parse_folder_name(directory: str) -> tuple[str, int]:
    """``<topic>-<partition>`` → (topic, partition)."""
    name = os.path.basename(os.path.normpath(directory))
    topic, _, partition = name.rpartition("-")
    if not topic or not partition.isdigit():
        raise ValueError(f"a replica folder is named <topic>-<partition>, not {name!r}")
    return topic, int(partition)


class PartitionLog:
    """A partition replica's log: a folder ``<topic>-<partition>`` of segments."""

    def __init__(self, directory: str | os.PathLike[str], config: LogConfig | None = None,
                 *, clock: Callable[[], int] = _wall_clock_ms):
        self.directory = os.fspath(directory)
        self.topic, self.partition = parse_folder_name(self.directory)
        self.config = config or LogConfig()
        self._clock = clock
        self._lock = threading.RLock()
        self._compaction_lock = threading.Lock()
        os.makedirs(self.directory, exist_ok=True)
        recovery_point = self._read_checkpoint(checkpoint.RECOVERY_POINT) or 0
        segments, self.recovered_bytes = recovery.load_segments(
            self.directory, recovery_point, self._new_segment)
        if not segments:
            segments = [self._new_segment(0)]
        self._set_segments(segments)
        self._log_end_offset = segments[-1].next_offset
        start = self._read_checkpoint(checkpoint.LOG_START_OFFSET) or 0
        self._log_start_offset = min(max(start, segments[0].base_offset), self._log_end_offset)
        self._recovery_point = min(recovery_point, self._log_end_offset)
        self._unflushed_messages = 0
        self._last_flush_ms = clock()
        self._write_checkpoint(checkpoint.RECOVERY_POINT, self._recovery_point)
        self._producer_state = ProducerStateManager()
        self.producer_state_headers_read = self._producer_state.load(
            self._segments, self._log_start_offset, clock())

    # --- state -----------------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._log_end_offset

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def segments(self) -> tuple[Segment, ...]:
        return self._segments

    @property
    def producer_state(self) -> ProducerStateManager:
        """Idempotent producers' epochs and last batches (the writer's, under its lock)."""
        return self._producer_state

    @property
    def size_in_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    def _set_segments(self, segments: Iterable[Segment]) -> None:
        # One assignment publishes both: readers take (segments, bases) together.
        segments = tuple(segments)
        self._view = (segments, [s.base_offset for s in segments])

    @property
    def _segments(self) -> tuple[Segment, ...]:
        return self._view[0]

    def _new_segment(self, base_offset: int, suffix: str = "") -> Segment:
        return Segment(self.directory, base_offset,
                       index_interval_bytes=self.config.index_interval_bytes,
                       max_index_bytes=self.config.segment_index_bytes,
                       created_ms=self._clock(), suffix=suffix)

    def _read_checkpoint(self, name: str) -> int | None:
        return checkpoint.read_checkpoint(self.directory, name)

    def _write_checkpoint(self, name: str, offset: int) -> None:
        checkpoint.write_checkpoint(self.directory, name, self.topic, self.partition, offset)

    # --- append (the writer) ---------------------------------------------------------------

    def append_batch(self, data: bytes | bytearray | memoryview, leader_epoch: int
                     ) -> AppendInfo:
        """Append the batches in ``data`` as the leader: validate, assign offsets, write.

        Only headers are touched: baseOffset and partitionLeaderEpoch (outside the CRC), and
        for LogAppendTime the timestamp-type bit and maxTimestamp (then the CRC is redone).
        Batches of an idempotent producer (producer id >= 0) are checked against its state
        (brokers.log.producer_state): a retried batch is not written again and the answer is its
        first copy's offsets (``is_duplicate``); a sequence gap raises
        OutOfOrderSequenceException, a fenced epoch InvalidProducerEpochException.
        """
        view = memoryview(data).cast("B")
        batches = b.validate_batches(view, self.config.max_message_bytes)
        if len(view) > self.config.segment_bytes:
            raise RecordBatchTooLargeException(
                f"{len(view)} bytes of records exceed segment.bytes {self.config.segment_bytes}")
        with self._lock:
            now = self._clock()
            log_append_time = now if self.config.is_log_append_time else -1
            offset = first = self._log_end_offset
            pieces: list[Any] = []
            tracked = []
            count = 0
            producers = None
            for info in batches:
                last = offset + info.last_offset_delta
                max_timestamp = now if log_append_time >= 0 else info.max_timestamp
                if info.producer_id >= 0:
                    if producers is None:
                        producers = self._producer_state.begin_append()
                    duplicate = producers.check(
                        info.producer_id, info.producer_epoch, info.base_sequence,
                        info.last_offset_delta, offset, max_timestamp)
                    if duplicate is not None:  # Kafka: the whole append answers the duplicate
                        return self._duplicate_info(duplicate, log_append_time >= 0)
                pieces += b.rewrite_for_append(view, info, offset, leader_epoch, log_append_time)
                tracked.append((info.size, last, max_timestamp))
                count += info.records_count
                offset = last + 1
            appended = self._write(pieces, tracked, first, count, len(view), log_append_time)
            if producers is not None:
                self._producer_state.commit(producers)
            return appended

    def _duplicate_info(self, duplicate: BatchMetadata, is_log_append_time: bool) -> AppendInfo:
        return AppendInfo(
            duplicate.first_offset, duplicate.last_offset,
            duplicate.max_timestamp if is_log_append_time else -1, self._log_start_offset,
            duplicate.max_timestamp, duplicate.last_offset, 0, 0, is_duplicate=True)

    def append_as_follower(self, data: bytes | bytearray | memoryview) -> AppendInfo:
        """Append batches fetched from the leader as they are (offsets and epochs kept)."""
        view = memoryview(data).cast("B")
        batches = b.validate_batches(view, max(self.config.max_message_bytes, len(view)))
        with self._lock:
            first = b.INT64.unpack_from(view, 0)[0]
            expected = self._log_end_offset
            tracked = []
            count = 0
            replicated = []
            for info in batches:
                base = b.INT64.unpack_from(view, info.position)[0]
                if base < expected:
                    raise InvalidRecordException(
                        f"offset {base} is below the log end offset {expected}")
                expected = base + info.last_offset_delta + 1
                tracked.append((info.size, expected - 1, info.max_timestamp))
                count += info.records_count
                if info.producer_id >= 0:
                    replicated.append((info.producer_id, info.producer_epoch,
                                       info.base_sequence, base, expected - 1,
                                       info.max_timestamp))
            appended = self._write([view], tracked, first, count, len(view), -1)
            for producer in replicated:  # the leader checked them; a follower only records
                self._producer_state.replay(*producer)
            return appended

    def append_records(self, batch_records: Iterable[Any], leader_epoch: int,
                       compression_type: str = "none") -> AppendInfo:
        """Build ONE batch from records (key, value, headers, timestamp) and append it."""
        codec = compression.CODEC_IDS[compression_type]
        data = records.build_batch(batch_records, 0, codec, now_ms=self._clock())
        return self.append_batch(data, leader_epoch)

    def _write(self, pieces: list[Any], tracked: list[tuple[int, int, int]], first: int,
               count: int, size: int, log_append_time: int) -> AppendInfo:
        last = tracked[-1][1]
        max_ts = max(t[2] for t in tracked)
        try:
            segment = self._maybe_roll(size, max_ts, last)
            segment.append(pieces, tracked)
        except OSError as exc:  # nothing was published; Kafka takes the log offline here
            raise KafkaStorageException(f"cannot write {self.directory}: {exc}") from exc
        self._log_end_offset = last + 1  # publish after the bytes and the segment size
        self._unflushed_messages += count
        now = self._clock()
        if (self._unflushed_messages >= self.config.flush_messages
                or now - self._last_flush_ms >= self.config.flush_ms):
            self.flush()
        offset_of_max = next(t[1] for t in tracked if t[2] == max_ts)
        return AppendInfo(first, last, log_append_time, self._log_start_offset, max_ts,
                          offset_of_max, count, size)

    def _maybe_roll(self, size: int, max_timestamp: int, last_offset: int) -> Segment:
        """Kafka's shouldRoll: segment.bytes, segment.ms, a full index, offset overflow."""
        active = self._segments[-1]
        if active.is_empty:
            return active
        config = self.config
        if active.rolling_timestamp is not None and active.rolling_timestamp >= 0:
            waited = max_timestamp - active.rolling_timestamp
        else:
            waited = self._clock() - active.created_ms
        if (active.size + size > config.segment_bytes or waited > config.segment_ms
                or active.is_index_full or last_offset - active.base_offset > _INT32_MAX):
            return self.roll()
        return active

    def roll(self) -> Segment:
        """Close the active segment (fsync) and start a new one at the log end offset."""
        with self._lock:
            active = self._segments[-1]
            if active.is_empty:
                return active
            active.on_become_inactive()
            segment = self._new_segment(self._log_end_offset)
            self._set_segments((*self._segments, segment))
            self._recovery_point = segment.base_offset
            self._write_checkpoint(checkpoint.RECOVERY_POINT, self._recovery_point)
            return segment

    def flush(self) -> None:
        """fsync the active segment and move the recovery point to the log end offset."""
        with self._lock:
            end = self._log_end_offset
            self._segments[-1].flush()  # closed segments were fsynced when they rolled
            self._recovery_point = end
            self._write_checkpoint(checkpoint.RECOVERY_POINT, end)
            self._unflushed_messages = 0
            self._last_flush_ms = self._clock()

    def close(self) -> None:
        """Flush everything and let the files go (a clean shutdown: no recovery next open).

        Each segment's fd closes when nothing holds the segment any more: at once, unless a
        fetch response is still sending from it.
        """
        with self._lock:
            self.flush()
            self._write_checkpoint(checkpoint.LOG_START_OFFSET, self._log_start_offset)
            for segment in self._segments:
                segment.release()  # fds close when no in-flight fetch holds them

    def update_config(self, config: LogConfig) -> None:
        """Apply changed topic configs (the next append, roll or retention run obeys them)."""
        with self._lock:
            self.config = config

    def delete(self) -> None:
        """Remove the replica: close every file and delete the folder."""
        with self._lock:
            for segment in self._segments:
                segment.release()  # an in-flight fetch keeps reading the unlinked file
            shutil.rmtree(self.directory, ignore_errors=True)

    # --- read (any thread) -----------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, max_offset: int | None = None,
             min_one_batch: bool = True) -> FileSlice:
        """Whole batches from the one holding ``offset``, for a fetch (KIP-74 semantics).

        ``max_offset`` (the high watermark) bounds what is visible; ``min_one_batch`` gives
        the first batch even when it is larger than ``max_bytes`` (Kafka does so for the first
        partition of a fetch response). Raises OffsetOutOfRangeException below the log start
        offset or past the log end offset.
        """
        segments, bases = self._view
        end = self._log_end_offset
        if offset < self._log_start_offset or offset > end:
            raise OffsetOutOfRangeException(
                f"offset {offset} is outside [{self._log_start_offset}, {end}]")
        i = max(bisect_right(bases, offset) - 1, 0)
        for segment in segments[i:]:
            if max_offset is not None and segment.base_offset >= max_offset:
                break
            span = segment.read_span(offset, max_bytes, max_offset, min_one_batch)
            if span is not None:
                return FileSlice(segment, *span)
            if not min_one_batch and segment.next_offset > offset:
                break  # the next batch is there but larger than max_bytes
        return FileSlice(None)

    def read_records(self, offset: int, max_records: int = 500, max_bytes: int = 1 << 20,
                     max_offset: int | None = None, *, include_control: bool = False
                     ) -> list[records.Record]:
        """Decoded records from ``offset`` on (decompressed), for REST, live feeds, streams."""
        out: list[records.Record] = []
        upper = self._log_end_offset if max_offset is None else max_offset
        while len(out) < max_records and offset < upper:
            piece = self.read(offset, max_bytes, upper)
            if not piece.length:
                break
            data = memoryview(piece.read_bytes())
            for position, size, _, last in b.iter_batches(data):
                for record in records.decode_batch(data[position : position + size]):
                    if offset <= record.offset < upper and (include_control or
                                                            not record.is_control):
                        out.append(record)
                        if len(out) >= max_records:
                            return out
                offset = max(offset, last + 1)
        return out

    def offset_for_timestamp(self, timestamp_ms: int) -> TimestampOffset | None:
        """The first record whose timestamp >= ``timestamp_ms`` (ListOffsets); None if none.

        -1 (latest) answers the log end offset and -2 (earliest) the log start offset.
        """
        if timestamp_ms == LATEST_TIMESTAMP:
            return TimestampOffset(-1, self._log_end_offset)
        if timestamp_ms == EARLIEST_TIMESTAMP:
            return TimestampOffset(-1, self._log_start_offset)
        start_offset = self._log_start_offset
        for segment in self._segments:
            if segment.max_timestamp < timestamp_ms or segment.next_offset <= start_offset:
                continue
            from_offset = max(segment.time_index.lookup_before(timestamp_ms), start_offset)
            position = segment.find_position(from_offset)
            if position is None:
                continue
            for pos, size, _, _, max_ts in segment.iter_headers(position):
                if max_ts < timestamp_ms:
                    continue
                for record in records.decode_batch(segment.read_bytes(pos, size)):
                    if record.timestamp >= timestamp_ms and record.offset >= start_offset:
                        return TimestampOffset(record.timestamp, record.offset)
        return None

    # --- retention, compaction, truncation (the writer or a maintenance task) --------------

    def delete_old_segments(self, now_ms: int | None = None) -> int:
        """Delete closed segments past retention.ms / retention.bytes / the log start offset.

        Returns how many segments went; moves and checkpoints the log start offset.
        """
        with self._lock:
            now = self._clock() if now_ms is None else now_ms
            self._producer_state.remove_expired(now)
            segments = self._segments
            count = retention.deletable_prefix(segments, self.config, now,
                                               self._log_start_offset)
            if not count:
                return 0
            kept = segments[count:]
            self._log_start_offset = max(self._log_start_offset, kept[0].base_offset)
            self._write_checkpoint(checkpoint.LOG_START_OFFSET, self._log_start_offset)
            self._set_segments(kept)
            self._producer_state.remove_before(self._log_start_offset)
            for segment in segments[:count]:
                segment.delete()
            return count

    def increment_log_start_offset(self, offset: int) -> None:
        """DeleteRecords: records below ``offset`` become unreadable; segments go later."""
        with self._lock:
            if offset > self._log_end_offset:
                raise OffsetOutOfRangeException(f"{offset} is past the log end offset")
            if offset > self._log_start_offset:
                self._log_start_offset = offset
                self._write_checkpoint(checkpoint.LOG_START_OFFSET, offset)
                self._producer_state.remove_before(offset)

    def compact(self, now_ms: int | None = None) -> CleanerStats:
        """One compaction pass over the closed segments (see brokers.log.cleaner)."""
        from brokers.log.cleaner import compact_log

        return compact_log(self, self._clock() if now_ms is None else now_ms)

    def truncate_to(self, offset: int) -> None:
        """Drop every record at and after ``offset`` (a follower's truncation)."""
        with self._lock:
            if offset >= self._log_end_offset:
                return
            if offset < self._log_start_offset or offset <= self._segments[0].base_offset:
                self.truncate_fully_and_start_at(offset)
                return
            segments = list(self._segments)
            while segments[-1].base_offset >= offset:
                dropped = segments.pop()
                dropped.delete()
            active = segments[-1]
            cut_base = active.truncate_to(offset)
            self._set_segments(segments)
            self._log_end_offset = min(offset, cut_base) if cut_base is not None else offset
            active.next_offset = self._log_end_offset
            self._after_truncation()
            # The dropped batches may have been a producer's newest: rebuild from what is left.
            self._producer_state.load(self._segments, self._log_start_offset, self._clock())

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Delete every segment; the log restarts empty at ``offset``."""
        with self._lock:
            for segment in self._segments:
                segment.delete()
            self._set_segments([self._new_segment(offset)])
            self._log_end_offset = self._log_start_offset = offset
            self._write_checkpoint(checkpoint.LOG_START_OFFSET, offset)
            self._after_truncation()
            self._producer_state.clear()

    def _after_truncation(self) -> None:
        self._recovery_point = min(self._recovery_point, self._log_end_offset)
        self._write_checkpoint(checkpoint.RECOVERY_POINT, self._recovery_point)

    def __repr__(self) -> str:
        return (f"PartitionLog({self.directory!r}, start={self._log_start_offset}, "
                f"end={self._log_end_offset}, segments={len(self._segments)})")
