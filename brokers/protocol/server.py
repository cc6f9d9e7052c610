"""The Kafka listener of a broker node: size-prefixed frames in, handlers in order, responses out.

Kafka's connection rules, followed here:
- A frame is a 4-byte big-endian size and that many bytes. A negative size or one above
  socket.request.max.bytes (100 MiB by default) closes the connection (InvalidReceiveException).
- Requests on one connection are processed one after the other and answered in the order they
  came (the protocol guide's ordering guarantee; Kafka mutes a connection while a request is in
  flight). Clients pipeline: librdkafka keeps up to max.in.flight requests outstanding, so frames
  are read ahead and queued while the current request runs; reading pauses when the queue is
  long and processing pauses while the transport's write buffer is full.
- An unknown API key, an unsupported version (other than ApiVersions), a malformed header or
  body, or anything but ApiVersions/SASL before authentication on a SASL listener closes the
  connection. ApiVersions of an unsupported version is answered with a v0 body carrying
  UNSUPPORTED_VERSION and our versions (KIP-511).
- A handler that raises is logged; the request is answered with the API's error response where
  the handler module defines one, else that connection alone is closed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import struct
from dataclasses import dataclass
from typing import Any, cast

from . import api_versions, codec
from .chunks import EncodedBody, FileSlice, SliceFile
from .context import Connection, RequestContext
from .errors import ErrorCode
from .headers import MalformedRequest, encode_response_header, parse_request_header, peek_api
from .registry import Registry, default_registry
from .sasl_authenticate import PlainAuthenticationFailed, authenticate_plain
from .services import BrokerServices

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 100 * 1024 * 1024  # Kafka's socket.request.max.bytes default

# Before authentication a SASL listener lets through only these (Kafka's SaslServerAuthenticator).
PRE_AUTH_API_KEYS = frozenset({api_versions.API_KEY, 17, 36})

# How long a connection being closed stays open so the client reads its last response.
CLOSE_LINGER_S = 0.1

_SIZE = struct.Struct(">i")
_COPY_BLOCK_BYTES = 1 << 20
# Responses to pipelined requests are gathered into one write (one syscall) up to this size;
# a larger piece (records) is written on its own, without being copied into the gathering.
_GATHER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ListenerSettings:
    host: str = "127.0.0.1"
    port: int = 9092
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    requires_auth: bool = False
    """SASL_PLAINTEXT listener: clients must authenticate with SASL/PLAIN first."""
    max_queued_requests: int = 64
    """Per connection, read ahead this many frames before pausing reading from the socket."""
    max_queued_bytes: int = 64 * 1024 * 1024
    """Per connection, or this many bytes of whole frames (Kafka: queued.max.request.bytes)."""


class KafkaServer:
    """One listener. `await start()`, then `address` is where it listens; `await stop()`."""

    def __init__(
        self,
        services: BrokerServices,
        registry: Registry | None = None,
        settings: ListenerSettings | None = None,
    ) -> None:
        self.services = services
        self.registry = registry if registry is not None else default_registry()
        self.settings = settings or ListenerSettings()
        self._server: asyncio.Server | None = None
        self._connections: set[_KafkaConnection] = set()
        self.is_sendfile_available = True
        """Cleared on the first FileSlice if the event loop has no sendfile (uvloop)."""

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _KafkaConnection(self),
            self.settings.host,
            self.settings.port,
            reuse_address=True,
        )

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None, "start() first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def serve_forever(self) -> None:
        assert self._server is not None, "start() first"
        await self._server.serve_forever()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close("broker stopping", linger_s=0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> KafkaServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


class _KafkaConnection(asyncio.Protocol):
    """One client connection: frames in through data_received, one worker task answers them."""

    def __init__(self, server: KafkaServer) -> None:
        self.server = server
        self.settings = server.settings
        self.transport: asyncio.Transport | None = None
        self.connection: Connection | None = None
        self._buffer = bytearray()  # the start of a frame not yet whole
        self._wanted_bytes = 0  # how long _buffer must grow before its first frame is whole
        self._frames: collections.deque[bytes] = collections.deque()
        self._queued_bytes = 0
        self._unsent: list[bytes | bytearray | memoryview] = []
        self._unsent_bytes = 0
        self._frames_ready = asyncio.Event()
        self._writable: asyncio.Future[None] | None = None
        self._is_reading_paused = False
        self._is_closing = False
        self._peer_is_done = False
        self._worker: asyncio.Task[None] | None = None

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.connection = Connection(
            peer=f"{peer[0]}:{peer[1]}" if peer else "?",
            requires_auth=self.settings.requires_auth,
        )
        self.server._connections.add(self)
        self._worker = asyncio.get_running_loop().create_task(self._answer_requests())

    def data_received(self, data: bytes) -> None:
        if self._is_closing:
            return  # discarded: see close()
        if self._buffer:
            # A frame spread over several reads (a Produce of a few hundred KB arrives in
            # 256 KB reads): append in place, amortised, rather than concatenating the whole
            # buffer again on every read (quadratic in the frame's size).
            self._buffer += data
            if len(self._buffer) < self._wanted_bytes:
                return  # the frame is still not whole: no need to look at it again
            source: bytes | bytearray = self._buffer
        else:
            source = data  # fast path: frames are sliced from `data` with one copy each
        view = memoryview(source)
        start = 0
        end_of_data = len(source)
        try:
            while end_of_data - start >= 4:
                (size,) = _SIZE.unpack_from(source, start)
                if size < 0 or size > self.settings.max_request_bytes:
                    self.close(f"frame size {size} outside 0..{self.settings.max_request_bytes}")
                    return
                end = start + 4 + size
                if end > end_of_data:
                    self._wanted_bytes = end - start
                    break
                self._frames.append(bytes(view[start + 4 : end]))  # one copy, into bytes
                self._queued_bytes += size
                start = end
            rest = view[start:] if start < end_of_data else None
            self._buffer = bytearray(rest) if rest is not None else bytearray()
        finally:
            view.release()  # a bytearray with an exported view cannot be resized
        if start >= end_of_data or end_of_data - start < 4:
            self._wanted_bytes = 0
        if self._frames:
            self._frames_ready.set()
            if (
                len(self._frames) >= self.settings.max_queued_requests
                or self._queued_bytes >= self.settings.max_queued_bytes
            ) and self.transport is not None:
                self._is_reading_paused = True
                self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self._is_closing and self.transport is not None:
            self.transport.close()  # the client is gone: no need to linger
            return True
        # The client is done sending; answer what it sent, then close (close() flushes).
        self._peer_is_done = True
        self._frames_ready.set()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._is_closing = True
        self.server._connections.discard(self)
        if self._worker is not None:
            self._worker.cancel()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)  # the worker is cancelled anyway

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # the worker

    def close(self, reason: str, linger_s: float = CLOSE_LINGER_S) -> None:
        """Stop answering, then close the socket after `linger_s`, discarding input meanwhile.

        Kafka delays closing after a failed authentication (connection.failed.authentication.
        delay.ms, 100 ms) so the client reads the error first. The delay matters for more than
        auth: kafka-python drops data that arrives in the same read as the FIN, and closing
        with unread input makes the kernel send RST, which discards the client's unread bytes.
        """
        if self._is_closing:
            return
        self._is_closing = True
        peer = self.connection.peer if self.connection else "?"
        log.info("closing Kafka connection from %s: %s", peer, reason)
        transport = self.transport
        if transport is None:
            return
        self._flush()
        self._frames.clear()
        if self._is_reading_paused:
            transport.resume_reading()  # keep draining input, so closing sends FIN, not RST
        if linger_s > 0:
            asyncio.get_running_loop().call_later(linger_s, transport.close)
        else:
            transport.close()  # flushes what was written, then FIN

    async def _answer_requests(self) -> None:
        try:
            while not self._is_closing:
                if not self._frames:
                    if self._peer_is_done:
                        self.close("client closed its side", linger_s=0)
                        return
                    self._frames_ready.clear()
                    await self._frames_ready.wait()
                    continue
                frame = self._frames.popleft()
                self._queued_bytes -= len(frame)
                if self._is_reading_paused and self._may_resume_reading():
                    self._is_reading_paused = False
                    assert self.transport is not None
                    self.transport.resume_reading()
                await self._answer(frame)
                if not self._frames or self._unsent_bytes >= _GATHER_BYTES:
                    self._flush()
                if self._writable is not None:
                    await self._writable
        except (asyncio.CancelledError, ConnectionError):
            pass
        except Exception:
            log.exception("Kafka connection worker failed")
            self.close("internal error")

    def _may_resume_reading(self) -> bool:
        settings = self.settings
        return (
            len(self._frames) <= settings.max_queued_requests // 2
            and self._queued_bytes <= settings.max_queued_bytes // 2
        )

    async def _answer(self, frame: bytes) -> None:
        connection = self.connection
        assert connection is not None
        if connection.is_legacy_sasl and not connection.is_authenticated:
            await self._authenticate_legacy_token(frame)
            return
        try:
            api_key, api_version, correlation_id = peek_api(frame)
        except MalformedRequest as exc:
            self.close(str(exc))
            return
        handler = self.server.registry.get(api_key)
        if handler is None:
            self.close(f"unknown API key {api_key}")
            return
        if not connection.may_send_any_request and api_key not in PRE_AUTH_API_KEYS:
            self.close(f"{handler.name} before SASL authentication")
            return
        if not handler.supports(api_version):
            if api_key == api_versions.API_KEY:
                body = api_versions.build_response(
                    0, self.server.registry, ErrorCode.unsupported_version
                )
                self._write_frame(correlation_id, False, codec.encode(body))
                return
            self.close(f"unsupported {handler.name} version {api_version}")
            return
        try:
            header = parse_request_header(frame, codec.is_flexible_request(api_key, api_version))
            request = codec.decode_request(api_key, api_version, frame, header.body_offset)
        except Exception as exc:
            self.close(f"malformed {handler.name} v{api_version} request: {exc!r}")
            return
        connection.client_id = header.client_id
        context = RequestContext(
            services=self.server.services,
            registry=self.server.registry,
            connection=connection,
            api_key=api_key,
            api_version=api_version,
            correlation_id=correlation_id,
            client_id=header.client_id,
        )
        response_cls = codec.response_type(api_key, api_version)
        is_flexible_header = codec.uses_flexible_response_header(response_cls)
        try:
            response = await handler.handle(context, request)
            body = self._encode_body(response, response_cls)
        except Exception:
            log.exception(
                "%s v%d handler failed (client %r at %s)",
                handler.name,
                api_version,
                header.client_id,
                connection.peer,
            )
            if handler.error_response is None:
                self.close(f"{handler.name} handler failed")
                return
            try:
                response = handler.error_response(
                    api_version, request, ErrorCode.unknown_server_error
                )
                body = self._encode_body(response, response_cls)
            except Exception:
                log.exception("%s error response failed", handler.name)
                self.close(f"{handler.name} handler failed")
                return
        if isinstance(body, EncodedBody):
            await self._write_chunks(correlation_id, is_flexible_header, body)
        elif body is not None:
            self._write_frame(correlation_id, is_flexible_header, body)
        if connection.close_after_response:
            self.close(f"{handler.name} asked to close")

    @staticmethod
    def _encode_body(response: Any, response_cls: type[Any]) -> bytes | EncodedBody | None:
        if response is None or isinstance(response, EncodedBody):
            return response
        if type(response) is not response_cls:
            raise TypeError(f"handler returned {type(response)!r}, expected {response_cls!r}")
        return codec.encode(response)

    def _write_frame(self, correlation_id: int, is_flexible_header: bool, body: bytes) -> None:
        header = encode_response_header(correlation_id, is_flexible_header)
        self._write(b"".join((_SIZE.pack(len(header) + len(body)), header, body)))

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes behind earlier responses; the worker flushes when it runs out of work."""
        if len(data) >= _GATHER_BYTES:
            self._flush()
            assert self.transport is not None
            self.transport.write(data)
            return
        self._unsent.append(data)
        self._unsent_bytes += len(data)

    def _flush(self) -> None:
        if self._unsent and self.transport is not None:
            self.transport.write(b"".join(self._unsent))
        self._unsent.clear()
        self._unsent_bytes = 0

    async def _write_chunks(
        self, correlation_id: int, is_flexible_header: bool, body: EncodedBody
    ) -> None:
        """Header bytes, then each chunk: bytes by write, FileSlices by sendfile, in order."""
        header = encode_response_header(correlation_id, is_flexible_header)
        self._write(_SIZE.pack(len(header) + body.size) + header)
        for chunk in body.chunks:
            if not isinstance(chunk, FileSlice):
                self._write(chunk)
                continue
            self._flush()
            try:
                await self._send_file_slice(chunk)
            except (OSError, EOFError) as exc:
                # The frame is half written; the only way out is to drop the connection.
                self.close(f"sendfile of a records slice failed: {exc!r}")
                return

    async def _send_file_slice(self, piece: FileSlice) -> None:
        transport = self.transport
        assert transport is not None
        if self.server.is_sendfile_available:
            loop = asyncio.get_running_loop()
            try:
                sent = await loop.sendfile(
                    transport, SliceFile(piece.fd), piece.offset, piece.length
                )
            except NotImplementedError:
                self.server.is_sendfile_available = False  # uvloop: copy below
            else:
                if sent != piece.length:
                    raise EOFError(f"sent {sent} of {piece.length} bytes of a segment slice")
                return
        offset, remaining = piece.offset, piece.length
        while remaining:
            data = os.pread(piece.fd, min(remaining, _COPY_BLOCK_BYTES), offset)
            if not data:
                raise EOFError(f"segment slice ended {remaining} bytes early")
            transport.write(data)
            offset += len(data)
            remaining -= len(data)
            if self._writable is not None:
                await self._writable

    async def _authenticate_legacy_token(self, frame: bytes) -> None:
        """SaslHandshake v0 flow: the frame is a bare PLAIN message, the reply an empty token."""
        connection = self.connection
        assert connection is not None and self.transport is not None
        try:
            await authenticate_plain(self.server.services, connection, frame)
        except PlainAuthenticationFailed as exc:
            self.close(f"legacy SASL/PLAIN failed: {exc}")
            return
        connection.is_legacy_sasl = False
        self._write(_SIZE.pack(0))
