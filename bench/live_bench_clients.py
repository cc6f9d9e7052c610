"""The live benchmark's websocket clients: many sockets, few processes, the kernel's clock.

``run_clients`` holds one socket per subscription id in one selector loop (one process for a
hundred sockets), keeps every ``records`` frame with two times, and parses them after the run:

- at the socket: the kernel's receive time of the read that completed the frame
  (SO_TIMESTAMPNS). On loopback the kernel stamps a packet as the sender's write enters the
  receive path, so this is when the web process wrote the frame, however late the client gets
  round to reading it: the server's produce-to-websocket latency.
- read: when this loop had the frame unframed and inflated, as a browser's ``onmessage`` would
  be handed it (the previous version of this benchmark read its clock after parsing the JSON).

Why not the websockets library's asyncio client, which this benchmark used before (100 of
them in two processes, each frame awaited by its own task, parsed whole and only then timed):
they took 2.7 µs of CPU per record delivered (2.9 with compression) where the web process took
1.1, on the same two cores, at the very moment the web process writes a batch's frames, and
their queueing counted as server latency. Here the JSON waits until the run is over; while
records arrive a frame costs a read, a few lines of framing, inflate and a count of its
records: 0.6 µs per record (1.2 with compression).
"""

import array
import json
import selectors
import socket
import struct
import time
import zlib

# Linux's SO_TIMESTAMPNS (= SCM_TIMESTAMPNS), which Python's socket module does not export:
# the kernel stamps each received packet (CLOCK_REALTIME, comparable with time.time_ns()) and
# recvmsg() returns the stamp of the last packet it read, so a frame read together with a later
# one gets the later stamp (never an earlier one).
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_STAMP_SPACE = socket.CMSG_SPACE(16)  # struct timespec: two 64-bit fields
_RECORDS_PREFIX = b'{"type":"records"'
# 64 KiB: a batch's frame or several. A larger buffer is a fresh mmap (and its page faults) on
# every read: at 256 KiB the clients spent more time in the kernel than in Python.
_READ_BYTES = 1 << 16


def subscribe_message(topic: str, sub_id: str) -> str:
    return json.dumps({"action": "subscribe", "topic": topic, "id": sub_id})


class StampedSocket:
    """One live-feed websocket read with the kernel's receive time of every read.

    websockets' sans-I/O protocol makes the handshake (so permessage-deflate is negotiated as
    that library, like browsers, offers it) and the client's own frames (masked: subscribe,
    pong); the server's frames are read here, a few lines of RFC 6455 (unmasked; uvicorn never
    fragments) and RFC 7692 (inflate, the context kept across messages), at about a third of
    the library's Python per frame.
    """

    def __init__(self, url: str, deflate: bool):
        from websockets.client import ClientProtocol
        from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
        from websockets.http11 import Response
        from websockets.uri import parse_uri

        uri = parse_uri(url)
        self.protocol = ClientProtocol(
            uri, extensions=enable_client_permessage_deflate(None) if deflate else None,
            max_size=None,
        )
        self.sock = socket.create_connection((uri.host, uri.port))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        events: list = []
        while not events:
            self.protocol.receive_data(self.sock.recv(_READ_BYTES))
            events = self.protocol.events_received()
        if self.protocol.handshake_exc is not None:
            raise self.protocol.handshake_exc
        # The server says nothing before the subscribe message, so nothing follows the answer.
        assert len(events) == 1 and isinstance(events[0], Response), events
        # Any window up to 15 bits inflates what a smaller one deflated.
        self.inflater = zlib.decompressobj(wbits=-15) if self.protocol.extensions else None
        self.buffer = bytearray()
        self.texts: list[bytes] = []  # read during setup and not yet taken
        self.has_kernel_stamps = True
        self.closed = False

    def _flush(self) -> None:
        data = b"".join(self.protocol.data_to_send())
        if data:
            self.sock.sendall(data)

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    def recv_text_blocking(self) -> bytes:
        """The next text frame (during setup, before the selector loop)."""
        while not self.texts:
            self.texts.extend(self._frames(self.sock.recv(_READ_BYTES)))
        return self.texts.pop(0)

    def read(self) -> tuple[list[bytes], int] | None:
        """Text frames completed by one read of the socket, and the kernel's time of that
        read; None once the server closed."""
        data, ancillary, _flags, _address = self.sock.recvmsg(_READ_BYTES, _STAMP_SPACE)
        stamp_ns = 0
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("qq", payload[:16])
                stamp_ns = seconds * 1_000_000_000 + nanoseconds
        if not stamp_ns:
            self.has_kernel_stamps = False
            stamp_ns = time.time_ns()
        if not data:
            return None
        texts = self._frames(data)
        return None if self.closed and not texts else (texts, stamp_ns)

    def _frames(self, data: bytes) -> list[bytes]:
        """The text frames ``data`` completes; answers pings, notes a close."""
        buffer = self.buffer
        buffer += data
        texts, at, end = [], 0, len(buffer)
        while end - at >= 2:
            first, length = buffer[at], buffer[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                start += 2
                length = int.from_bytes(buffer[at + 2:start], "big")
            elif length == 127:
                start += 8
                length = int.from_bytes(buffer[at + 2:start], "big")
            if end - start < length:
                break
            payload = bytes(buffer[start:start + length])
            at = start + length
            assert first & 0x80, "uvicorn does not fragment messages"
            if first & 0x40:  # RSV1: compressed (RFC 7692, section 7.2.2)
                payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
            opcode = first & 0x0F
            if opcode == 0x1:
                texts.append(payload)
            elif opcode == 0x9:  # the server's keepalive ping wants a pong
                self.protocol.send_pong(payload)
                self._flush()
            elif opcode == 0x8:
                self.closed = True
        del buffer[:at]
        return texts


def merge_write(known: tuple[int, int, int] | None, new: tuple[int, int, int]
                ) -> tuple[int, int, int]:
    """(first record's send ns, first socket ns, last socket ns) of one batch, merged."""
    if known is None:
        return new
    return min(known[0], new[0]), min(known[1], new[1]), max(known[2], new[2])


class Tally:
    """What one process's clients got: each records frame with its two times, and skips."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, int, int]] = []  # (frame, at socket ns, read ns)
        self.skipped = 0
        self.frames = 0

    def take(self, text: bytes, socket_ns: int, read_ns: int) -> int:
        """Keep a frame; the records it accounts for (got or skipped). Only a records frame's
        count is read now (a C scan for ``"offset":``), its JSON after the run."""
        self.frames += 1
        if text.startswith(_RECORDS_PREFIX):
            self.records.append((text, socket_ns, read_ns))
            return text.count(b'"offset":')
        import orjson

        frame = orjson.loads(text)
        if frame["type"] == "skipped":
            missed = frame["to_offset"] - frame["from_offset"] + 1
            self.skipped += missed
            return missed
        return 0

    def summary(self) -> dict:
        """Produce-to-websocket ms of every record, at the socket and when read (float32
        arrays as bytes), and per batch (by the first offset of its frames) ``merge_write``'s
        times."""
        import orjson

        at_socket, read = array.array("f"), array.array("f")
        writes: dict[int, tuple[int, int, int]] = {}
        for text, socket_ns, read_ns in self.records:
            records = orjson.loads(text)["records"]
            sent = [record["value"]["t"] for record in records]
            at_socket.extend([(socket_ns - t) / 1e6 for t in sent])
            read.extend([(read_ns - t) / 1e6 for t in sent])
            first_offset = records[0]["offset"]
            writes[first_offset] = merge_write(
                writes.get(first_offset), (min(sent), socket_ns, socket_ns))
        return {"at_socket_ms": at_socket.tobytes(), "read_ms": read.tobytes(),
                "skipped": self.skipped, "frames": self.frames, "writes": writes}


def run_clients(url: str, topic: str, sub_ids: list[str], expected: int, deflate: bool,
                ready, results, timeout_s: float) -> None:
    """A separate process: one socket per id subscribed to ``topic`` from the log end, read
    until each got (or was told it skipped) ``expected`` records; puts its summary."""
    import orjson

    sockets = []
    for sub_id in sub_ids:
        client = StampedSocket(url, deflate)
        client.send_text(subscribe_message(topic, sub_id))
        answer = orjson.loads(client.recv_text_blocking())
        assert answer["type"] == "subscribed", answer
        client.sock.setblocking(False)
        sockets.append(client)
    selector = selectors.DefaultSelector()
    owed = {}
    for client in sockets:
        selector.register(client.sock, selectors.EVENT_READ, client)
        owed[client] = expected
    tally = Tally()
    ready.set()
    started = time.monotonic()
    cpu_started = time.process_time()
    last_arrival = started
    deadline = started + timeout_s
    while owed and time.monotonic() < deadline:
        events = selector.select(5)
        if not events:
            break  # nothing for 5 s: the server sent all it will
        for key, _mask in events:
            client = key.data
            got = client.read()
            if got is None:
                selector.unregister(client.sock)
                owed.pop(client, None)
                continue
            texts, stamp_ns = got
            if texts:
                read_ns = time.time_ns()
                last_arrival = time.monotonic()
                for text in texts:
                    owed[client] -= tally.take(text, stamp_ns, read_ns)
            if owed[client] <= 0:
                selector.unregister(client.sock)
                del owed[client]
    cpu_s = time.process_time() - cpu_started
    for client in sockets:
        client.sock.close()
    results.put({**tally.summary(), "elapsed_s": last_arrival - started, "cpu_s": cpu_s,
                 "has_kernel_stamps": all(client.has_kernel_stamps for client in sockets)})
