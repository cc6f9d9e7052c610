"""One client connection to a broker node: SASL/PLAIN login, then pipelined requests.

The web tier's client (kafka_client.py, kafka_reader.py) talks to broker nodes through these. A
node answers a connection's requests in the order they came, so many requests may be in flight
at once; each waits for its own answer by correlation id. Every wait is bounded by an absolute
deadline (``time.monotonic()``) that the caller carries through a whole REST request.

No Django here.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import time
from typing import Any

from brokers.protocol import codec
from brokers.protocol.errors import ErrorCode, error_name
from brokers.protocol.headers import skip_tagged_fields

SASL_HANDSHAKE_VERSION = 1
SASL_AUTHENTICATE_VERSION = 2

_SIZE = struct.Struct(">i")
_HEADER = struct.Struct(">hhih")


class KafkaClientError(Exception):
    """A failure of a whole request: Kafka's error name and a message for a person."""

    def __init__(self, error: str, message: str):
        super().__init__(message)
        self.error = error
        self.message = message


class ConnectionFailed(KafkaClientError):
    """The connection broke or could not be made; ``sent`` says if the request had gone out."""

    def __init__(self, message: str, sent: bool):
        super().__init__("NETWORK_EXCEPTION", message)
        self.sent = sent


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (never below a millisecond, for asyncio's timeouts)."""
    return max(deadline - time.monotonic(), 0.001)


class KafkaConnection:
    """A client connection to one broker node."""

    def __init__(self, host: str, port: int, client_id: str):
        self.host = host
        self.port = port
        self._client_id = client_id.encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._correlation = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future, type[Any]]] = {}
        self._read_task: asyncio.Task | None = None
        # Why close() was called: what the requests still in flight fail with.
        self._close_reason: BaseException | None = None
        self.closed = False

    async def open(self, username: str, password: str, deadline: float) -> None:
        """Connect and log in before ``deadline``.

        Raises ConnectionFailed (nothing was sent), or KafkaClientError: a refused login
        (SASL_AUTHENTICATION_FAILED) or REQUEST_TIMED_OUT.
        """
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), remaining(deadline)
            )
        except (OSError, TimeoutError) as exc:
            self.closed = True
            raise ConnectionFailed(
                f"Cannot connect to broker {self.host}:{self.port}: {exc or 'timed out'}",
                sent=False,
            ) from exc
        self._read_task = asyncio.get_running_loop().create_task(self._read_answers())
        handshake = codec.request_type(17, SASL_HANDSHAKE_VERSION)(mechanism="PLAIN")
        answer = await self.request(handshake, deadline)
        if answer.error_code != ErrorCode.none:
            self.close()
            raise KafkaClientError(error_name(answer.error_code), "SASL/PLAIN is not enabled.")
        token = b"\0" + username.encode() + b"\0" + password.encode()
        authenticate = codec.request_type(36, SASL_AUTHENTICATE_VERSION)(auth_bytes=token)
        answer = await self.request(authenticate, deadline)
        if answer.error_code != ErrorCode.none:
            self.close()
            raise KafkaClientError(
                error_name(answer.error_code),
                f"The broker refused the web tier's login: {answer.error_message}",
            )

    def _frame(self, entity: Any) -> tuple[int, bytes]:
        api_key, version = int(entity.__api_key__), int(entity.__version__)
        correlation_id = next(self._correlation)
        header = _HEADER.pack(api_key, version, correlation_id, len(self._client_id))
        header += self._client_id
        if codec.is_flexible_request(api_key, version):
            header += b"\0"  # header v2: an empty tagged-field section
        body = codec.encode(entity)
        return correlation_id, _SIZE.pack(len(header) + len(body)) + header + body

    async def _write(self, frame: bytes) -> None:
        """Write a frame; wait while the socket's buffer is full (a slow broker slows us)."""
        if self.closed or self._writer is None:
            raise ConnectionFailed(f"Connection to {self.host}:{self.port} is closed.", False)
        self._writer.write(frame)
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self.close()
            raise ConnectionFailed(
                f"Connection to broker {self.host}:{self.port} failed: {exc}", sent=True
            ) from exc

    async def request(self, entity: Any, deadline: float) -> Any:
        """Send a request and wait for its answer (decoded) until ``deadline``."""
        correlation_id, frame = self._frame(entity)
        answer = asyncio.get_running_loop().create_future()
        response_cls = codec.response_type(int(entity.__api_key__), int(entity.__version__))
        self._pending[correlation_id] = (answer, response_cls)
        try:
            await self._write(frame)
            return await asyncio.wait_for(answer, remaining(deadline))
        except TimeoutError:
            # The answer may still come and would be read as another's: start afresh. Other
            # requests in flight on this connection end the same way: their outcome is unknown.
            self.close(KafkaClientError(
                "REQUEST_TIMED_OUT",
                f"Broker {self.host}:{self.port} did not answer in time.",
            ))
            raise KafkaClientError(
                "REQUEST_TIMED_OUT", f"Broker {self.host}:{self.port} did not answer in time."
            ) from None
        finally:
            self._pending.pop(correlation_id, None)

    async def send(self, entity: Any) -> None:
        """Send a request that gets no answer (Produce with acks=0)."""
        await self._write(self._frame(entity)[1])

    async def _read_answers(self) -> None:
        reader = self._reader
        assert reader is not None
        error: BaseException = ConnectionFailed(
            f"Broker {self.host}:{self.port} closed the connection.", sent=True
        )
        try:
            while True:
                size = _SIZE.unpack(await reader.readexactly(4))[0]
                frame = await reader.readexactly(size)
                correlation_id = _SIZE.unpack_from(frame, 0)[0]
                pending = self._pending.pop(correlation_id, None)
                if pending is None:
                    continue
                future, response_cls = pending
                if future.done():
                    continue
                try:
                    offset = 4
                    if codec.uses_flexible_response_header(response_cls):
                        offset = skip_tagged_fields(frame, offset)
                    value = codec.decode_response(
                        int(response_cls.__api_key__), int(response_cls.__version__),
                        frame[offset:],
                    )
                except Exception as exc:  # a malformed answer fails its request only
                    # The request may have been carried out: not a client error.
                    future.set_exception(KafkaClientError(
                        "UNKNOWN_SERVER_ERROR", f"Unreadable answer from the broker: {exc}"
                    ))
                else:
                    future.set_result(value)
        except (asyncio.IncompleteReadError, OSError) as exc:
            error = ConnectionFailed(
                f"Connection to broker {self.host}:{self.port} failed: {exc}", sent=True
            )
        except asyncio.CancelledError:
            error = self._close_reason or error
        finally:
            self._fail_pending(error)

    def _fail_pending(self, error: BaseException) -> None:
        self.closed = True
        pending, self._pending = self._pending, {}
        for future, _cls in pending.values():
            if not future.done():
                future.set_exception(error)
        if self._writer is not None:
            self._writer.close()

    def close(self, reason: BaseException | None = None) -> None:
        """Close; requests still in flight fail with ``reason`` (default: connection closed)."""
        self.closed = True
        self._close_reason = reason
        if self._read_task is not None:
            self._read_task.cancel()
        elif self._writer is not None:
            self._writer.close()
