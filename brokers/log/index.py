"""A segment's sparse indexes, in Kafka's file formats.

``.index``: 8-byte entries, relative offset (int32) → file position (int32).
``.timeindex``: 12-byte entries, timestamp (int64) → relative offset (int32).

Entries live in memory (lists, searched with bisect) and reach the file on ``flush``; the files
are exactly their entries (Kafka preallocates and trims on close; the bytes once trimmed are
the same). Indexes are never trusted blindly: recovery rebuilds one that is missing or insane.
"""

from __future__ import annotations

import os
import struct
from abc import ABC, abstractmethod
from bisect import bisect_left, bisect_right

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")


class _Index(ABC):
    """Shared file handling: append buffered entries, rewrite on truncate."""

    entry: struct.Struct

    def __init__(self, path: str, base_offset: int, max_index_bytes: int):
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max(1, max_index_bytes // self.entry.size)
        self._keys: list[int] = []
        self._values: list[int] = []
        self._pending = bytearray()

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def is_full(self) -> bool:
        return len(self._keys) >= self.max_entries

    def flush(self, fsync: bool = False) -> None:
        """Write buffered entries to the file (and fsync it when asked)."""
        if self._pending or fsync or not os.path.exists(self.path):
            with open(self.path, "ab") as file:
                file.write(self._pending)
                if fsync:
                    file.flush()
                    os.fsync(file.fileno())
            self._pending.clear()

    def _read_file(self) -> list[tuple[int, ...]] | None:
        try:
            with open(self.path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return None
        if len(data) % self.entry.size:
            return None
        return list(self.entry.iter_unpack(data))

    def _rewrite(self) -> None:
        self._pending.clear()
        data = bytearray()
        for key, value in zip(self._keys, self._values, strict=True):
            data += self._pack(key, value)
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as file:
            file.write(data)
        os.replace(tmp, self.path)

    @abstractmethod
    def _pack(self, key: int, value: int) -> bytes:
        """One entry as it lies in the file."""

    def reset(self) -> None:
        """Forget every entry (before a rebuild)."""
        self._keys.clear()
        self._values.clear()
        self._rewrite()

    def delete(self) -> None:
        if os.path.exists(self.path):
            os.remove(self.path)


class OffsetIndex(_Index):
    """Offset → position of the batch whose last offset is that offset (sparse)."""

    entry = _OFFSET_ENTRY

    def _pack(self, key: int, value: int) -> bytes:
        return _OFFSET_ENTRY.pack(key - self.base_offset, value)

    def append(self, offset: int, position: int) -> None:
        """Add an entry; offsets and positions only grow."""
        self._keys.append(offset)
        self._values.append(position)
        self._pending += _OFFSET_ENTRY.pack(offset - self.base_offset, position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the last entry at or before ``offset``; else the start."""
        i = bisect_right(self._keys, offset)
        if i == 0:
            return self.base_offset, 0
        return self._keys[i - 1], self._values[i - 1]

    def position_at_or_before(self, position: int) -> int:
        """The largest indexed position <= ``position`` (0 when none)."""
        i = bisect_right(self._values, position)
        return self._values[i - 1] if i else 0

    @property
    def last_entry(self) -> tuple[int, int]:
        if not self._keys:
            return self.base_offset, 0
        return self._keys[-1], self._values[-1]

    def load(self, file_size: int) -> bool:
        """Read the file; False when it is missing or insane (then it must be rebuilt)."""
        rows = self._read_file()
        if rows is None:
            return False
        last_offset, last_position = -1, -1
        for relative, position in rows:
            if relative <= last_offset or position <= last_position or position >= file_size:
                return False
            last_offset, last_position = relative, position
        self._keys = [self.base_offset + r for r, _ in rows]
        self._values = [p for _, p in rows]
        return True

    def truncate_to(self, offset: int) -> None:
        """Drop entries for ``offset`` and above."""
        i = bisect_left(self._keys, offset)
        if i < len(self._keys):
            del self._keys[i:], self._values[i:]
            self._rewrite()


class TimeIndex(_Index):
    """Largest timestamp so far → the offset of the batch that holds it (sparse)."""

    entry = _TIME_ENTRY

    def _pack(self, key: int, value: int) -> bytes:
        return _TIME_ENTRY.pack(key, value - self.base_offset)

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Add an entry when ``timestamp`` is larger than the last one (Kafka's rule)."""
        if self._keys and timestamp <= self._keys[-1]:
            return
        if timestamp < 0:
            return
        self._keys.append(timestamp)
        self._values.append(offset)
        self._pending += _TIME_ENTRY.pack(timestamp, offset - self.base_offset)

    def lookup_before(self, timestamp: int) -> int:
        """An offset at or before the first record whose timestamp >= ``timestamp``.

        Every record up to an entry's offset has a timestamp <= the entry's, so the last entry
        strictly below ``timestamp`` is a safe place to start scanning.
        """
        i = bisect_left(self._keys, timestamp)
        return self._values[i - 1] if i else self.base_offset

    @property
    def last_entry(self) -> tuple[int, int]:
        if not self._keys:
            return -1, self.base_offset
        return self._keys[-1], self._values[-1]

    def load(self, last_offset: int) -> bool:
        """Read the file; False when it is missing or insane."""
        rows = self._read_file()
        if rows is None:
            return False
        last_ts, previous = -1, -1
        for timestamp, relative in rows:
            offset = self.base_offset + relative
            if timestamp <= last_ts or offset < previous or offset > last_offset:
                return False
            last_ts, previous = timestamp, offset
        self._keys = [t for t, _ in rows]
        self._values = [self.base_offset + r for _, r in rows]
        return True

    def truncate_to(self, offset: int) -> None:
        """Drop entries for ``offset`` and above."""
        keep = bisect_left(self._values, offset)
        if keep < len(self._keys):
            del self._keys[keep:], self._values[keep:]
            self._rewrite()
