"""Response bodies as chunks: in-memory bytes written as they are, file slices by sendfile."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FileSlice:
    """`length` bytes of the open file `fd` from `offset`: a segment's batches, sent with sendfile.

    The fd stays owned by whoever opened it (the log manager); the server neither closes it nor
    moves its file position (it uses `os.sendfile` with an explicit offset). `owner` is kept
    referenced until the response is written: the log's Segment, whose fd stays open while
    something holds it, even if retention deletes the segment meanwhile.
    """

    fd: int
    offset: int
    length: int
    owner: object = None

    def __len__(self) -> int:
        return self.length

    def read(self) -> bytes:
        """The slice's bytes, for tests and for transports that cannot sendfile."""
        data = os.pread(self.fd, self.length, self.offset)
        if len(data) != self.length:
            raise EOFError(f"file slice shrank: wanted {self.length} bytes, read {len(data)}")
        return data


Chunk = bytes | bytearray | memoryview | FileSlice


@dataclass(frozen=True, slots=True)
class EncodedBody:
    """A response body already encoded, as a handler may return it instead of a response object.

    The server writes the frame size and the response header, then each chunk in order: bytes
    with `transport.write`, a FileSlice with sendfile (as Kafka serves Fetch from the page
    cache: FileRecords.writeTo).
    """

    chunks: Sequence[Chunk]

    @property
    def size(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    def to_bytes(self) -> bytes:
        return b"".join(
            chunk.read() if isinstance(chunk, FileSlice) else chunk for chunk in self.chunks
        )


class SliceFile:
    """The least of a file object that loop.sendfile needs, reading with pread from `fd`.

    asyncio's sendfile moves the descriptor's file position (os.lseek) when done; the log
    manager must therefore read segments only with positional reads (os.pread), as Kafka's
    FileChannel reads do.
    """

    mode = "rb"

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._position = 0

    def fileno(self) -> int:
        return self._fd

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET:
            raise OSError("only absolute seeks")
        self._position = offset
        return offset

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        data = os.pread(self._fd, len(view), self._position)
        view[: len(data)] = data
        self._position += len(data)
        return len(data)
