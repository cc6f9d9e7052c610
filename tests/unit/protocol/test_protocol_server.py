"""The listener over real sockets: framing, ordering, version rules, and surviving bad clients."""

from __future__ import annotations

import datetime
import importlib
import os
import random
import socket
import struct
import tempfile
from typing import Any

import pytest
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.api_versions import v0 as api_versions_v0
from kio.schema.api_versions import v3 as api_versions_v3
from kio.schema.api_versions import v4 as api_versions_v4
from kio.schema.fetch import v12 as fetch_v12
from kio.schema.metadata import v12 as metadata_v12
from kio.schema.sasl_handshake import v1 as sasl_handshake_v1
from protocol_test_support import ServerThread, WireClient, registry_with_metadata

from brokers.protocol import codec, sasl_handshake
from brokers.protocol.chunks import FileSlice
from brokers.protocol.errors import ErrorCode
from brokers.protocol.fetch_encoder import (
    FetchPartition,
    FetchResponseData,
    FetchTopic,
    encode_fetch_response,
)
from brokers.protocol.registry import ApiHandler, Registry

REGISTERED = {(h.api_key, h.min_version, h.max_version) for h in registry_with_metadata()}


def api_versions_request(version: int = 3) -> Any:
    module = {0: api_versions_v0, 3: api_versions_v3, 4: api_versions_v4}[version]
    if version >= 3:
        return module.request.ApiVersionsRequest(
            client_software_name="djafka-tests", client_software_version="1.0"
        )
    return module.request.ApiVersionsRequest()


def metadata_request() -> Any:
    return metadata_v12.request.MetadataRequest(
        topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False
    )


def listed(response: Any) -> set[tuple[int, int, int]]:
    return {(k.api_key, k.min_version, k.max_version) for k in response.api_keys}


def assert_still_serving(server: ServerThread) -> None:
    with WireClient(server.address) as client:
        response = client.call(api_versions_request(3))
        assert response.error_code == ErrorCode.none


@pytest.mark.parametrize("version", range(5))
def test_api_versions_lists_registered_apis_at_every_version(server, version: int) -> None:
    module = importlib.import_module(f"kio.schema.api_versions.v{version}")
    kwargs = {"client_software_name": "x", "client_software_version": "1"} if version >= 3 else {}
    with WireClient(server.address) as client:
        response = client.call(module.request.ApiVersionsRequest(**kwargs))
    assert response.error_code == ErrorCode.none
    assert listed(response) == REGISTERED


def test_invalid_client_software_name_gets_invalid_request(server) -> None:
    request = api_versions_v3.request.ApiVersionsRequest(
        client_software_name="-bad name-", client_software_version="1"
    )
    with WireClient(server.address) as client:
        assert client.call(request).error_code == ErrorCode.invalid_request


def test_pipelined_requests_are_answered_in_request_order(server) -> None:
    requests = [
        api_versions_request(v) if i % 3 else metadata_request()
        for i, v in zip(range(300), [0, 3, 4] * 100, strict=True)
    ]
    with WireClient(server.address) as client:
        framed = [client.frame(request) for request in requests]
        client.send_raw(b"".join(data for _, data in framed))  # all in flight at once
        for (correlation_id, _), request in zip(framed, requests, strict=True):
            received_id, response = client.receive(type(request))
            assert received_id == correlation_id
            assert response.__api_key__ == request.__api_key__


def test_read_ahead_limits_pause_reading_without_losing_or_reordering(services) -> None:
    limits = {"max_queued_requests": 2, "max_queued_bytes": 200}
    with ServerThread(services, **limits) as running, WireClient(running.address) as client:
        requests = [api_versions_request(v) for v in [0, 3, 4] * 100]
        framed = [client.frame(request) for request in requests]
        client.send_raw(b"".join(data for _, data in framed))
        for (correlation_id, _), request in zip(framed, requests, strict=True):
            assert client.receive(type(request))[0] == correlation_id


def test_a_large_frame_arriving_in_small_pieces_is_reassembled(server) -> None:
    with WireClient(server.address) as client:
        _, framed = client.frame(api_versions_request(0))
        size = 5 * 1024 * 1024  # kio ignores the padding after the body
        data = struct.pack(">i", size) + framed[4:] + b"\x00" * (size - len(framed) + 4)
        _, small = client.frame(api_versions_request(3))
        data += small
        for start in range(0, len(data), 7001):
            client.send_raw(data[start : start + 7001])
        assert client.receive(api_versions_v0.request.ApiVersionsRequest)[1].error_code == 0
        assert client.receive(api_versions_v3.request.ApiVersionsRequest)[1].error_code == 0


def test_too_new_api_versions_gets_unsupported_version_in_a_v0_body(server) -> None:
    # KIP-511: a v9 request (header v2, a body we cannot know) is answered in v0 format.
    with WireClient(server.address) as client:
        _, framed = client.frame(api_versions_request(3), correlation_id=99)
        payload = bytearray(framed[4:])
        payload[2:4] = struct.pack(">h", 9)
        client.send_raw(struct.pack(">i", len(payload)) + payload)
        correlation_id, response = client.receive(
            api_versions_v0.request.ApiVersionsRequest, flexible_header=False
        )
        assert correlation_id == 99
        assert response.error_code == ErrorCode.unsupported_version
        assert listed(response) == REGISTERED
        # The connection stays usable for the retry at our newest version.
        assert client.call(api_versions_request(4)).error_code == ErrorCode.none


def test_unsupported_version_of_another_api_closes_the_connection(server) -> None:
    with WireClient(server.address) as client:
        _, framed = client.frame(metadata_request())
        payload = bytearray(framed[4:])
        payload[2:4] = struct.pack(">h", 13)  # the test Metadata handler stops at 12
        client.send_raw(struct.pack(">i", len(payload)) + payload)
        assert client.is_closed_by_server()
    assert_still_serving(server)


@pytest.mark.parametrize("api_key", [1, 1000, -1])
def test_unknown_or_unregistered_api_key_closes_the_connection(server, api_key: int) -> None:
    with WireClient(server.address) as client:
        header = struct.pack(">hhih", api_key, 0, 1, -1)
        client.send_raw(struct.pack(">i", len(header)) + header)
        assert client.is_closed_by_server()
    assert_still_serving(server)


def test_frame_larger_than_the_maximum_closes_the_connection(services) -> None:
    with ServerThread(services, max_request_bytes=1024) as small:
        with WireClient(small.address) as client:
            client.send_raw(struct.pack(">i", 1025) + b"\x00" * 100)
            assert client.is_closed_by_server()
        with WireClient(small.address) as client:
            # Exactly the maximum is fine (a valid, padded ApiVersions v0 request).
            _, framed = client.frame(api_versions_request(0))
            body = framed[4:] + b"\x00" * (1024 - len(framed) + 4)
            client.send_raw(struct.pack(">i", 1024) + body)
            _, response = client.receive(api_versions_v0.request.ApiVersionsRequest)
            assert response.error_code == ErrorCode.none
        assert_still_serving(small)


def test_default_maximum_is_100_mib(server) -> None:
    with WireClient(server.address) as client:
        client.send_raw(struct.pack(">i", 100 * 1024 * 1024 + 1))
        assert client.is_closed_by_server()
    assert_still_serving(server)


def test_negative_frame_size_closes_the_connection(server) -> None:
    with WireClient(server.address) as client:
        client.send_raw(struct.pack(">i", -5) + b"abcd")
        assert client.is_closed_by_server()
    assert_still_serving(server)


def test_truncated_frame_then_eof_closes_the_connection(server) -> None:
    with WireClient(server.address) as client:
        client.send_raw(struct.pack(">i", 100) + b"\x00\x12\x00\x00")
        client.sock.shutdown(socket.SHUT_WR)
        assert client.is_closed_by_server()
    assert_still_serving(server)


def test_truncated_body_closes_the_connection(server) -> None:
    with WireClient(server.address) as client:
        _, framed = client.frame(metadata_request())
        payload = framed[4:-3]  # a whole frame whose body is cut short
        client.send_raw(struct.pack(">i", len(payload)) + payload)
        assert client.is_closed_by_server()
    assert_still_serving(server)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(garbage=st.binary(min_size=1, max_size=300))
def test_garbage_bytes_never_take_the_server_down(server, garbage: bytes) -> None:
    with WireClient(server.address, timeout_s=2) as client:
        client.send_raw(garbage)
        client.sock.shutdown(socket.SHUT_WR)
        assert client.is_closed_by_server()
    assert_still_serving(server)


def test_garbage_after_a_size_prefix_never_takes_the_server_down(server) -> None:
    rng = random.Random(7)
    for _ in range(100):
        body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 64)))
        # Make the header plausible: a registered API key and version, random rest.
        api_key = rng.choice([3, 17, 18, 36])
        frame = struct.pack(">hh", api_key, rng.randrange(0, 5)) + body
        with WireClient(server.address, timeout_s=2) as client:
            client.send_raw(struct.pack(">i", len(frame)) + frame)
            client.sock.shutdown(socket.SHUT_WR)
            assert client.is_closed_by_server()
    assert_still_serving(server)


async def _raise(ctx: Any, request: Any) -> Any:
    raise RuntimeError("handler bug")


def test_handler_exception_is_answered_with_the_apis_error_response(services) -> None:
    registry = registry_with_metadata()
    registry.register(
        ApiHandler(17, 0, 1, handle=_raise, error_response=sasl_handshake.error_response)
    )
    with ServerThread(services, registry=registry) as running, WireClient(running.address) as c:
        response = c.call(sasl_handshake_v1.request.SaslHandshakeRequest(mechanism="X"))
        assert response.error_code == ErrorCode.unknown_server_error
        assert c.call(api_versions_request(3)).error_code == ErrorCode.none


def test_handler_exception_without_error_response_closes_only_that_connection(services) -> None:
    registry = registry_with_metadata()
    registry.register(ApiHandler(3, 0, 12, handle=_raise))
    with ServerThread(services, registry=registry) as running:
        with WireClient(running.address) as bystander, WireClient(running.address) as client:
            client.send(metadata_request())
            assert client.is_closed_by_server()
            assert bystander.call(api_versions_request(3)).error_code == ErrorCode.none
        assert_still_serving(running)


def test_handler_returning_none_sends_no_response(services) -> None:
    async def silent(ctx: Any, request: Any) -> None:
        return None

    registry = registry_with_metadata()
    registry.register(ApiHandler(3, 0, 12, handle=silent))
    with ServerThread(services, registry=registry) as running, WireClient(running.address) as c:
        c.send(metadata_request())
        correlation_id = c.send(api_versions_request(3))
        received_id, _ = c.receive(api_versions_v3.request.ApiVersionsRequest)
        assert received_id == correlation_id


def fetch_registry(segment_fd: int, payload_offset: int, payload_length: int) -> Registry:
    async def handle_fetch(ctx: Any, request: Any) -> Any:
        partition = FetchPartition(
            partition_index=0,
            high_watermark=10,
            last_stable_offset=10,
            log_start_offset=0,
            records=FileSlice(segment_fd, payload_offset, payload_length),
        )
        tail = FetchPartition(partition_index=1, high_watermark=0, records=b"tail" * 10)
        data = FetchResponseData(
            topics=[FetchTopic(name="orders", partitions=[partition, tail])], session_id=5
        )
        return encode_fetch_response(ctx.api_version, data)

    registry = registry_with_metadata()
    registry.register(ApiHandler(1, 4, 18, handle=handle_fetch))
    return registry


@pytest.mark.parametrize("loop_factory", [None, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_fetch_records_are_sent_from_the_segment_file(services, loop_factory) -> None:
    payload = os.urandom(300_000)
    with tempfile.TemporaryFile() as segment:
        segment.write(b"head" * 1000 + payload + b"rest")
        segment.flush()
        registry = fetch_registry(segment.fileno(), 4000, len(payload))
        kwargs = {"loop_factory": loop_factory} if loop_factory else {}
        with ServerThread(services, registry=registry, **kwargs) as running:
            request = fetch_v12.request.FetchRequest(
                max_wait=datetime.timedelta(milliseconds=0),
                min_bytes=1,
                topics=(),
                forgotten_topics_data=(),
                rack_id="",
            )
            with WireClient(running.address) as client:
                fetch_id, framed = client.frame(request)
                version_id, framed_versions = client.frame(api_versions_request(3))
                client.send_raw(framed + framed_versions + framed)
                received_id, response = client.receive(type(request))
                assert received_id == fetch_id
                partitions = response.responses[0].partitions
                assert partitions[0].records == payload
                assert partitions[1].records == b"tail" * 10
                assert response.session_id == 5
                received_id, _ = client.receive(api_versions_v3.request.ApiVersionsRequest)
                assert received_id == version_id
                _, again = client.receive(type(request))
                assert again == response
            # asyncio's loop has sendfile (zero copy); uvloop has none, so the slice is copied.
            assert running.server.is_sendfile_available is (loop_factory is None)


def test_stopping_the_server_closes_its_connections(services) -> None:
    running = ServerThread(services).__enter__()
    client = WireClient(running.address)
    try:
        assert client.call(api_versions_request(3)).error_code == ErrorCode.none
        running.__exit__(None, None, None)
        assert client.is_closed_by_server()
    finally:
        client.close()


def test_unused_codec_helpers_are_consistent() -> None:
    assert codec.api_name(18) == "api_versions"
    assert codec.api_name(12345) == "unknown"
