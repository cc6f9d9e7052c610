"""Test scaffolding for the protocol seam: in-memory services, a Metadata handler, a raw client.

The Metadata handler lives here, not in brokers/protocol: it only lets real clients get past
bootstrap (one broker, no topics) until the real one is written over the cluster metadata.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import importlib
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any

from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2

from brokers.protocol import codec
from brokers.protocol.context import RequestContext
from brokers.protocol.errors import ErrorCode
from brokers.protocol.registry import ApiHandler, Registry, default_registry
from brokers.protocol.server import KafkaServer, ListenerSettings
from brokers.protocol.services import BrokerEndpoint, Principal

CLUSTER_ID = "djafka-test-cluster"
NODE_ID = 1


class TestMetadataView:
    cluster_id = CLUSTER_ID
    controller_id = NODE_ID

    def __init__(self) -> None:
        self.endpoints: list[BrokerEndpoint] = []

    def brokers(self) -> Sequence[BrokerEndpoint]:
        return self.endpoints


class TestServices:
    """BrokerServices for tests: a users dict instead of tenants' API keys, no log."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, users: dict[str, str]) -> None:
        self.node_id = NODE_ID
        self.metadata = TestMetadataView()
        self.log: Any = None
        self.users = users
        self.authentications: list[str] = []

    async def authenticate_plain(self, username: str, password: str) -> Principal | None:
        self.authentications.append(username)
        if self.users.get(username) == password:
            return Principal(name=username, tenant="tenant-of-" + username)
        return None


def build(cls: type[Any], **values: Any) -> Any:
    """Instantiate a kio dataclass with those of `values` that this version has."""
    names = {field.name for field in dataclasses.fields(cls)}
    return cls(**{name: value for name, value in values.items() if name in names})


async def handle_metadata(ctx: RequestContext, request: Any) -> Any:
    """One broker (this one), and every requested topic unknown."""
    module = codec.response_type(3, ctx.api_version)
    types = importlib.import_module(module.__module__)
    brokers = tuple(
        build(
            types.MetadataResponseBroker,
            node_id=endpoint.node_id,
            host=endpoint.host,
            port=endpoint.port,
            rack=endpoint.rack,
        )
        for endpoint in ctx.services.metadata.brokers()
    )
    topics = tuple(
        build(
            types.MetadataResponseTopic,
            error_code=ErrorCode.unknown_topic_or_partition,
            name=topic.name,
            topic_id=None,
            is_internal=False,
            partitions=(),
            topic_authorized_operations=-2147483648,
        )
        for topic in (request.topics or ())
    )
    return build(
        module,
        throttle_time=datetime.timedelta(0),
        brokers=brokers,
        cluster_id=ctx.services.metadata.cluster_id,
        controller_id=ctx.services.metadata.controller_id,
        topics=topics,
        cluster_authorized_operations=-2147483648,
        error_code=ErrorCode.none,
    )


METADATA_HANDLER = ApiHandler(api_key=3, min_version=0, max_version=12, handle=handle_metadata)


def registry_with_metadata() -> Registry:
    registry = default_registry()
    registry.register(METADATA_HANDLER)
    return registry


class ServerThread:
    """A KafkaServer on 127.0.0.1 port 0, run by an event loop in a thread of its own.

    Real clients (kafka-python, confluent-kafka) block; the server must not share their thread.
    """

    def __init__(
        self,
        services: TestServices,
        registry: Registry | None = None,
        requires_auth: bool = False,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
        max_request_bytes: int = 100 * 1024 * 1024,
        max_queued_requests: int = 64,
        max_queued_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.services = services
        self.loop = loop_factory()
        self.server = KafkaServer(
            services,
            registry if registry is not None else registry_with_metadata(),
            ListenerSettings(
                host="127.0.0.1",
                port=0,
                requires_auth=requires_auth,
                max_request_bytes=max_request_bytes,
                max_queued_requests=max_queued_requests,
                max_queued_bytes=max_queued_bytes,
            ),
        )
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    @property
    def bootstrap(self) -> str:
        host, port = self.address
        return f"{host}:{port}"

    def connection_count(self) -> int:
        return len(self.server._connections)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        host, port = self.address
        self.services.metadata.endpoints = [BrokerEndpoint(NODE_ID, host, port)]
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class WireClient:
    """A raw Kafka client over a blocking socket: frames kio requests, returns raw responses."""

    def __init__(self, address: tuple[str, int], timeout_s: float = 5.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout_s)
        self.next_correlation_id = 1

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def frame(self, request: Any, correlation_id: int | None = None) -> tuple[int, bytes]:
        """(correlation id, size-prefixed bytes) of a kio request with the right header."""
        if correlation_id is None:
            correlation_id = self.next_correlation_id
            self.next_correlation_id += 1
        header_cls = RequestHeaderV2 if request.__flexible__ else RequestHeaderV1
        header = header_cls(
            request_api_key=request.__api_key__,
            request_api_version=request.__version__,
            correlation_id=correlation_id,
            client_id="wire-test",
        )
        payload = codec.encode(header) + codec.encode(request)
        return correlation_id, struct.pack(">i", len(payload)) + payload

    def send(self, request: Any) -> int:
        correlation_id, data = self.frame(request)
        self.sock.sendall(data)
        return correlation_id

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive_frame(self) -> bytes:
        size = struct.unpack(">i", self._read_exactly(4))[0]
        return self._read_exactly(size)

    def receive(
        self, request_cls: type[Any], flexible_header: bool | None = None
    ) -> tuple[int, Any]:
        """(correlation id, decoded response) for a request of `request_cls`'s key and version."""
        frame = self.receive_frame()
        api_key, version = request_cls.__api_key__, request_cls.__version__
        response_cls = codec.response_type(api_key, version)
        if flexible_header is None:
            flexible_header = codec.uses_flexible_response_header(response_cls)
        (correlation_id,) = struct.unpack_from(">i", frame, 0)
        body = frame[5:] if flexible_header else frame[4:]
        if flexible_header:
            assert frame[4] == 0, "response header v1 with tagged fields"
        return correlation_id, codec.decode_response(api_key, version, body)

    def call(self, request: Any) -> Any:
        correlation_id = self.send(request)
        received_id, response = self.receive(type(request))
        assert received_id == correlation_id
        return response

    def is_closed_by_server(self, timeout_s: float = 5.0) -> bool:
        """True once the server closes the connection (EOF or reset) within the timeout."""
        self.sock.settimeout(timeout_s)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    def _read_exactly(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self.sock.recv(min(size, 1 << 20))
            if not chunk:
                raise ConnectionError("server closed the connection")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)
