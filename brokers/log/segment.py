"""One segment: a ``.log`` file of whole batches with its ``.index`` and ``.timeindex``.

Threading: one writer appends; readers run beside it. ``size`` (the end of the last whole
batch) is published only after the bytes are written, and readers never look past the
``size`` they read, so they never see a half-written batch.
"""

from __future__ import annotations

import mmap
import os
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from brokers.log import batch as b
from brokers.log.errors import CorruptRecordException
from brokers.log.index import OffsetIndex, TimeIndex

_SCAN_CHUNK = 64 * 1024
# Batches above this are scanned one header pread each: a 64 KB chunk would hold at most four
# headers, and copying it costs more than the preads it saves.
_SMALL_BATCH_BYTES = _SCAN_CHUNK // 4
_HEADER_PREFIX = 43  # baseOffset .. maxTimestamp: all a scan needs
_IOV_MAX = 512  # pieces per pwritev call (Linux allows 1024)


def file_name(base_offset: int, suffix: str) -> str:
    """Kafka's segment file name: the base offset in 20 digits."""
    return f"{base_offset:020d}{suffix}"


class Segment:
    """A segment's files and what the log keeps in memory about them."""

    def __init__(self, directory: str, base_offset: int, *, index_interval_bytes: int,
                 max_index_bytes: int, created_ms: int, suffix: str = ""):
        self.directory = directory
        self.base_offset = base_offset
        self.index_interval_bytes = index_interval_bytes
        self.log_path = os.path.join(directory, file_name(base_offset, ".log" + suffix))
        self.offset_index = OffsetIndex(
            os.path.join(directory, file_name(base_offset, ".index" + suffix)),
            base_offset, max_index_bytes)
        self.time_index = TimeIndex(
            os.path.join(directory, file_name(base_offset, ".timeindex" + suffix)),
            base_offset, max_index_bytes)
        self.fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT, 0o644)
        # The fd outlives deletion while a FileSlice still holds this segment (sendfile).
        self._closer = weakref.finalize(self, os.close, self.fd)
        self.size = 0
        self.next_offset = base_offset
        self.max_timestamp = b.NO_TIMESTAMP
        self.offset_of_max_timestamp = base_offset
        self.rolling_timestamp: int | None = None  # first batch's max timestamp (segment.ms)
        self.created_ms = created_ms
        self._bytes_since_index_entry = 0

    def __repr__(self) -> str:
        return f"Segment({self.base_offset}, size={self.size}, next={self.next_offset})"

    @property
    def is_empty(self) -> bool:
        return self.size == 0

    @property
    def largest_timestamp(self) -> int:
        """The retention clock: the largest record timestamp, else the file's mtime."""
        if self.max_timestamp >= 0:
            return self.max_timestamp
        return int(os.stat(self.log_path).st_mtime * 1000)

    # --- writing (the one writer thread) -------------------------------------------------

    def append(self, pieces: Sequence[bytes | memoryview], batches: Sequence[tuple[int, int, int]]
               ) -> None:
        """Write ``pieces`` at the end; ``batches`` is (size, last offset, max timestamp) each."""
        position = self.size
        for start in range(0, len(pieces), _IOV_MAX):
            group = pieces[start : start + _IOV_MAX]
            total = sum(len(p) for p in group)
            written = os.pwritev(self.fd, group, position)
            while written < total:  # a short write: finish it before publishing anything
                rest = b"".join(bytes(p) for p in group)[written:]
                written += os.pwrite(self.fd, rest, position + written)
            position += total
        position = self.size
        for size, last_offset, max_timestamp in batches:
            self._track(position, size, last_offset, max_timestamp)
            position += size
        self.size = position  # publish: readers may now see these batches

    def _track(self, position: int, size: int, last_offset: int, max_timestamp: int) -> None:
        if self.rolling_timestamp is None:
            self.rolling_timestamp = max_timestamp
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self.offset_of_max_timestamp = last_offset
        # Kafka's LogSegment.append: index a batch once enough bytes passed since the last.
        if self._bytes_since_index_entry > self.index_interval_bytes:
            self.offset_index.append(last_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self._bytes_since_index_entry = 0
        self._bytes_since_index_entry += size
        self.next_offset = last_offset + 1

    @property
    def is_index_full(self) -> bool:
        return self.offset_index.is_full or self.time_index.is_full

    def flush(self) -> None:
        """fsync the log and write out the indexes."""
        os.fsync(self.fd)
        self.offset_index.flush()
        self.time_index.flush()

    def on_become_inactive(self) -> None:
        """At roll: the time index's last entry is the segment's max timestamp; fsync all."""
        self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        os.fsync(self.fd)
        self.offset_index.flush(fsync=True)
        self.time_index.flush(fsync=True)

    def truncate_to(self, offset: int) -> int | None:
        """Drop the batches holding ``offset`` and after; the first dropped base offset."""
        position = self.find_position(offset)
        if position is None:
            return None
        first_dropped = next(self.iter_headers(position))[2]
        self.size = position
        os.ftruncate(self.fd, position)
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        self._rescan_tail()
        return first_dropped

    def close(self) -> None:
        if self._closer.alive:
            self.offset_index.flush()
            self.time_index.flush()
            self._closer()

    def release(self) -> None:
        """Flush the indexes; leave the fd to the finalizer, which closes it once nothing holds
        this segment.

        What the log calls when it closes or deletes itself: a fetch response may still be
        sending from this segment (a protocol FileSlice owns it until sendfile is done), and
        closing the fd under it would let the number be reused by another file, whose bytes
        sendfile would then send.
        """
        if self._closer.alive:
            self.offset_index.flush()
            self.time_index.flush()

    def delete(self) -> None:
        """Remove the files; an open FileSlice keeps reading the unlinked file."""
        for path in (self.log_path, self.offset_index.path, self.time_index.path):
            if os.path.exists(path):
                os.remove(path)

    def rename_suffix(self, old: str, new: str) -> None:
        """Rename the three files from ``...old`` to ``...new`` (a swap step)."""
        for owner in (self.offset_index, self.time_index, self):  # the .log last
            path = owner.log_path if owner is self else owner.path
            target = path[: len(path) - len(old)] + new if old else path + new
            os.replace(path, target)
            if owner is self:
                self.log_path = target
            else:
                owner.path = target

    # --- reading (any thread) -------------------------------------------------------------

    def iter_headers(self, position: int, end: int | None = None
                     ) -> Iterator[tuple[int, int, int, int, int]]:
        """(position, size, base offset, last offset, max timestamp) of each batch from here."""
        return self._scan_headers(position, self.size if end is None else end, False)

    def iter_producer_headers(self, position: int = 0, end: int | None = None
                              ) -> Iterator[tuple[int, int, int, int, int, int]]:
        """(base offset, last offset, max timestamp, producer id, producer epoch, base
        sequence) of each batch from here: what producer state is rebuilt from."""
        return self._scan_headers(position, self.size if end is None else end, True)

    def _scan_headers(self, position: int, end: int, is_producer_scan: bool) -> Iterator[Any]:
        """The loop of both header iterators (one generator: a nested one costs ~15%).

        The first pread takes just the header bytes needed (a fetch of large batches may need
        only one header); after a small batch, 64 KB chunks follow, one pread serving many
        headers; after a large one, a chunk at the next batch would hold its header and then
        bytes nobody looks at, so again only the header is read.
        """
        need = b.HEADER_BYTES if is_producer_scan else _HEADER_PREFIX
        chunk = b""
        chunk_start = position
        read_size = need
        while end - position >= b.HEADER_BYTES:
            at = position - chunk_start
            if at + need > len(chunk):
                chunk = os.pread(self.fd, min(read_size, end - position), position)
                chunk_start, at = position, 0
                if len(chunk) < need:
                    return
            base, length = b.OFFSET_LENGTH.unpack_from(chunk, at)
            size = length + b.LOG_OVERHEAD
            if position + size > end or size < b.HEADER_BYTES:
                return
            if is_producer_scan:
                (_, _, _, _, _, _, last_delta, _, max_ts, producer_id, producer_epoch,
                 base_sequence, _) = b.HEADER.unpack_from(chunk, at)
                yield (base, base + last_delta, max_ts, producer_id, producer_epoch,
                       base_sequence)
            else:
                (last_delta,) = b.LAST_OFFSET_DELTA.unpack_from(
                    chunk, at + b.POS_LAST_OFFSET_DELTA)
                (max_ts,) = b.INT64.unpack_from(chunk, at + b.POS_MAX_TIMESTAMP)
                yield position, size, base, base + last_delta, max_ts
            read_size = need if size > _SMALL_BATCH_BYTES else _SCAN_CHUNK
            position += size

    def find_position(self, offset: int, end: int | None = None) -> int | None:
        """Position of the first batch whose last offset >= ``offset`` (None when none)."""
        _, start = self.offset_index.lookup(offset)
        for position, _, _, last, _ in self.iter_headers(start, end):
            if last >= offset:
                return position
        return None

    def read_span(self, offset: int, max_bytes: int, max_offset: int | None,
                  min_one_batch: bool = True) -> tuple[int, int, int, int] | None:
        """(position, length, first base offset, last offset) of whole batches for a fetch.

        Starts at the batch holding ``offset``; stops before a batch at or past
        ``max_offset`` and before ``max_bytes``, yet gives one whole batch even past
        ``max_bytes`` when ``min_one_batch`` (KIP-74).
        """
        end = self.size
        start = self.find_position(offset, end)
        if start is None:
            return None
        length = 0
        first = last = -1
        for _, size, base, last_offset, _ in self.iter_headers(start, end):
            if max_offset is not None and base >= max_offset:
                break
            if length + size > max_bytes and (length or not min_one_batch):
                break
            if first < 0:
                first = base
            length += size
            last = last_offset
        if not length:
            return None
        return start, length, first, last

    def read_bytes(self, position: int, length: int) -> bytes:
        return os.pread(self.fd, length, position)

    # --- loading and recovery (before readers exist) --------------------------------------

    def recover(self) -> int:
        """Re-check every batch (length, magic, CRC, offsets); cut at the first bad one.

        Rebuilds both indexes. Returns the number of bytes cut off.
        """
        file_size = os.fstat(self.fd).st_size
        self.offset_index.reset()
        self.time_index.reset()
        self._reset_state()
        valid = 0
        if file_size:
            with mmap.mmap(self.fd, file_size, access=mmap.ACCESS_READ) as mapped:
                view = memoryview(mapped)
                try:
                    expected = self.base_offset
                    while valid < file_size:
                        try:
                            size, base, last, max_ts = b.is_valid_batch(view, valid, file_size)
                        except CorruptRecordException:
                            break
                        if base < expected:
                            break  # offsets must increase
                        self._track(valid, size, last, max_ts)
                        expected = last + 1
                        valid += size
                finally:
                    view.release()
        self.size = valid
        if valid < file_size:
            os.ftruncate(self.fd, valid)
        self.offset_index.flush()
        self.time_index.flush()
        return file_size - valid

    def load(self) -> bool:
        """Load a segment below the recovery point: trust the batches, check the indexes.

        Returns False when an index was missing or insane and so was rebuilt.
        """
        self.size = os.fstat(self.fd).st_size
        if not self.offset_index.load(self.size):
            self.recover()
            return False
        self._rescan_tail()  # the time index is still empty here
        if not self.time_index.load(self.next_offset - 1):
            self.recover()
            return False
        timestamp, offset = self.time_index.last_entry
        if timestamp > self.max_timestamp:
            self.max_timestamp, self.offset_of_max_timestamp = timestamp, offset
        return True

    def _reset_state(self) -> None:
        self.next_offset = self.base_offset
        self.max_timestamp = b.NO_TIMESTAMP
        self.offset_of_max_timestamp = self.base_offset
        self.rolling_timestamp = None
        self._bytes_since_index_entry = 0

    def _rescan_tail(self) -> None:
        """Find next offset and max timestamp by scanning from the last offset index entry."""
        last_entry_offset, start = self.offset_index.last_entry
        self.next_offset = self.base_offset
        if start:
            self.next_offset = last_entry_offset + 1
        time_ts, time_offset = self.time_index.last_entry
        self.max_timestamp, self.offset_of_max_timestamp = time_ts, time_offset
        self._bytes_since_index_entry = 0
        first = True
        for position, size, _, last, max_ts in self.iter_headers(start, self.size):
            if position == 0:
                self.rolling_timestamp = max_ts
            if not first or not start:
                self._bytes_since_index_entry += size
            first = False
            self.next_offset = last + 1
            if max_ts > self.max_timestamp:
                self.max_timestamp, self.offset_of_max_timestamp = max_ts, last
        if self.rolling_timestamp is None and self.size:
            first_header = next(self.iter_headers(0, self.size), None)
            if first_header is not None:
                self.rolling_timestamp = first_header[4]
