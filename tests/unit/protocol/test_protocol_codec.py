"""The codec seam, headers, error codes and registry: pure functions, no sockets."""

from __future__ import annotations

import datetime
import inspect
import struct

import kafka.errors
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.protocol.producer import ProduceRequest as KafkaPythonProduceRequest
from kio.schema.api_versions import v3 as api_versions_v3
from kio.schema.produce import v3 as produce_v3
from kio.schema.produce import v9 as produce_v9
from kio.schema.produce import v13 as produce_v13
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2

from brokers.protocol import api_versions, codec
from brokers.protocol.errors import ERROR_CODES, ErrorCode, error_name
from brokers.protocol.headers import (
    MalformedRequest,
    encode_response_header,
    parse_request_header,
)
from brokers.protocol.registry import ApiHandler, Registry, default_registry


def produce_request(module, records: bytes, topic: str = "orders"):
    partition = module.request.PartitionProduceData(index=0, records=records)
    topic_fields = {"name": topic} if hasattr(module.request.TopicProduceData, "name") else {}
    if not topic_fields:
        import uuid

        topic_fields = {"topic_id": uuid.UUID(int=7)}
    topic_data = module.request.TopicProduceData(partition_data=(partition,), **topic_fields)
    return module.request.ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout=datetime.timedelta(seconds=30),
        topic_data=(topic_data,),
    )


@settings(max_examples=100, deadline=None)
@given(records=st.binary(max_size=70_000), topic=st.text(min_size=1, max_size=249))
def test_produce_request_records_round_trip_as_raw_bytes(records: bytes, topic: str) -> None:
    for module in (produce_v3, produce_v9):
        request = produce_request(module, records, topic)
        encoded = codec.encode(request)
        decoded = codec.decode_request(0, module.request.ProduceRequest.__version__, encoded, 0)
        assert decoded == request
        assert type(decoded.topic_data[0].partition_data[0].records) is bytes


def test_produce_request_v13_names_topics_by_id() -> None:
    request = produce_request(produce_v13, b"\x00" * 100)
    assert codec.decode_request(0, 13, codec.encode(request), 0) == request


def test_kio_reads_what_kafka_python_writes() -> None:
    records = bytes(range(256)) * 256
    theirs = bytes(
        KafkaPythonProduceRequest(
            version=9,
            transactional_id=None,
            acks=1,
            timeout_ms=1500,
            topic_data=[
                KafkaPythonProduceRequest.TopicProduceData(
                    name="t",
                    partition_data=[
                        KafkaPythonProduceRequest.TopicProduceData.PartitionProduceData(
                            index=3, records=records
                        )
                    ],
                )
            ],
        ).encode()
    )
    ours = codec.decode_request(0, 9, theirs, 0)
    assert ours.topic_data[0].partition_data[0].records == records
    assert ours.topic_data[0].partition_data[0].index == 3


def test_decoding_truncated_bytes_raises() -> None:
    encoded = codec.encode(produce_request(produce_v9, b"x" * 1000))
    with pytest.raises(Exception):  # noqa: B017 - kio's native reader raises its own types
        codec.decode_request(0, 9, encoded[:-10], 0)


def test_flexible_versions_match_kafka() -> None:
    assert codec.first_flexible_version(0) == 9  # Produce
    assert codec.first_flexible_version(1) == 12  # Fetch
    assert codec.first_flexible_version(3) == 9  # Metadata
    assert codec.first_flexible_version(18) == 3  # ApiVersions
    assert codec.first_flexible_version(17) is None  # SaslHandshake never is
    assert codec.is_flexible_request(18, 7)  # too new ApiVersions: still header v2
    assert not codec.is_flexible_request(36, 1)


def test_api_versions_response_header_is_always_v0() -> None:
    for version in range(5):
        assert not codec.uses_flexible_response_header(codec.response_type(18, version))
    assert codec.uses_flexible_response_header(codec.response_type(3, 12))
    assert not codec.uses_flexible_response_header(codec.response_type(3, 8))


def test_request_header_v1_and_v2_parse_with_client_id_and_tags() -> None:
    v1 = codec.encode(
        RequestHeaderV1(
            request_api_key=3, request_api_version=8, correlation_id=42, client_id="rdkafka"
        )
    )
    header = parse_request_header(v1 + b"body", flexible=False)
    assert (header.api_key, header.api_version, header.correlation_id) == (3, 8, 42)
    assert header.client_id == "rdkafka"
    assert (v1 + b"body")[header.body_offset :] == b"body"

    v2 = codec.encode(
        RequestHeaderV2(
            request_api_key=3, request_api_version=12, correlation_id=-7, client_id=None
        )
    )
    # Add one unknown tagged field (tag 5, 3 bytes): it must be skipped.
    v2_with_tag = v2[:-1] + b"\x01\x05\x03abc"
    header = parse_request_header(v2_with_tag + b"body", flexible=True)
    assert header.client_id is None and header.correlation_id == -7
    assert (v2_with_tag + b"body")[header.body_offset :] == b"body"


@pytest.mark.parametrize(
    "frame",
    [b"", b"\x00\x12\x00\x03\x00", struct.pack(">hhih", 18, 3, 1, 50) + b"short", b"\x00" * 10],
)
def test_malformed_request_headers_raise(frame: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_request_header(frame, flexible=True)


def test_response_headers() -> None:
    assert encode_response_header(5, flexible=False) == b"\x00\x00\x00\x05"
    assert encode_response_header(5, flexible=True) == b"\x00\x00\x00\x05\x00"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("NONE", 0),
        ("UNKNOWN_SERVER_ERROR", -1),
        ("OFFSET_OUT_OF_RANGE", 1),
        ("CORRUPT_MESSAGE", 2),
        ("UNKNOWN_TOPIC_OR_PARTITION", 3),
        ("NOT_LEADER_OR_FOLLOWER", 6),
        ("REQUEST_TIMED_OUT", 7),
        ("MESSAGE_TOO_LARGE", 10),
        ("INVALID_TOPIC_EXCEPTION", 17),
        ("UNSUPPORTED_SASL_MECHANISM", 33),
        ("ILLEGAL_SASL_STATE", 34),
        ("UNSUPPORTED_VERSION", 35),
        ("TOPIC_ALREADY_EXISTS", 36),
        ("INVALID_PARTITIONS", 37),
        ("INVALID_REPLICATION_FACTOR", 38),
        ("POLICY_VIOLATION", 44),
        ("SASL_AUTHENTICATION_FAILED", 58),
        ("UNKNOWN_TOPIC_ID", 100),
    ],
)
def test_error_codes_are_kafkas(name: str, code: int) -> None:
    assert ERROR_CODES[name] == code
    assert error_name(code) == name


def test_error_codes_agree_with_kafka_python() -> None:
    # kafka-python keeps a few pre-KIP names for the same numbers.
    renamed = {
        "UNKNOWN": "UNKNOWN_SERVER_ERROR",
        "NO_ERROR": "NONE",
        "NOT_LEADER_FOR_PARTITION": "NOT_LEADER_OR_FOLLOWER",
        "MESSAGE_SIZE_TOO_LARGE": "MESSAGE_TOO_LARGE",
        "INVALID_TOPIC": "INVALID_TOPIC_EXCEPTION",
        "INVALID_REPLICATION_ASSIGNMENT": "INVALID_REPLICA_ASSIGNMENT",
    }
    checked = 0
    for _, error in inspect.getmembers(kafka.errors, inspect.isclass):
        if issubclass(error, kafka.errors.BrokerResponseError) and error.errno is not None:
            assert ERROR_CODES[renamed.get(error.message, error.message)] == error.errno
            checked += 1
    assert checked > 100
    assert ErrorCode.request_timed_out.retriable
    assert not ErrorCode.sasl_authentication_failed.retriable


def test_registry_refuses_versions_the_codec_lacks() -> None:
    async def handle(ctx, request):  # pragma: no cover - never called
        return None

    with pytest.raises(LookupError):
        Registry([ApiHandler(api_key=0, min_version=0, max_version=9, handle=handle)])
    with pytest.raises(ValueError):
        Registry([ApiHandler(api_key=3, min_version=5, max_version=4, handle=handle)])


def test_api_versions_lists_exactly_the_registry() -> None:
    registry = default_registry()
    response = api_versions.build_response(3, registry, ErrorCode.none)
    listed = {(k.api_key, k.min_version, k.max_version) for k in response.api_keys}
    assert listed == {(h.api_key, h.min_version, h.max_version) for h in registry}
    assert {(18, 0, 4), (17, 0, 1), (36, 0, 2)} <= listed
    assert isinstance(response, api_versions_v3.response.ApiVersionsResponse)
    assert response.finalized_features_epoch == -1
    decoded = codec.decode_response(18, 3, codec.encode(response))
    assert decoded == response


def test_the_protocol_package_imports_neither_django_nor_celery() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, pkgutil, importlib, brokers.protocol as p\n"
        "for m in pkgutil.iter_modules(p.__path__):\n"
        "    importlib.import_module('brokers.protocol.' + m.name)\n"
        "roots = {n.split('.')[0] for n in sys.modules}\n"
        "bad = sorted(roots & {'django', 'celery', 'rest_framework'})\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run(
        [sys.executable, "-c", code], cwd=root, check=True, env={"PYTHONPATH": str(root)}
    )
