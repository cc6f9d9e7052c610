"""The chunked FetchResponse encoder writes exactly what kio writes, records never copied."""

from __future__ import annotations

import datetime
import importlib
import os
import tempfile
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_test_support import build

from brokers.protocol import codec
from brokers.protocol.chunks import FileSlice
from brokers.protocol.fetch_encoder import (
    INLINE_RECORDS_BYTES,
    MAX_VERSION,
    MIN_VERSION,
    AbortedTransaction,
    FetchPartition,
    FetchResponseData,
    FetchTopic,
    NodeEndpoint,
    encode_fetch_response,
)

VERSIONS = range(MIN_VERSION, MAX_VERSION + 1)


def as_kio(version: int, data: FetchResponseData) -> Any:
    """The same response as kio's FetchResponse of `version`."""
    types = importlib.import_module(codec.response_type(1, version).__module__)
    default_partition = types.PartitionData

    def partition(p: FetchPartition) -> Any:
        extra: dict[str, Any] = {}
        if p.diverging_epoch is not None and version >= 12:
            extra["diverging_epoch"] = types.EpochEndOffset(
                epoch=p.diverging_epoch[0], end_offset=p.diverging_epoch[1]
            )
        if p.current_leader is not None and version >= 12:
            extra["current_leader"] = types.LeaderIdAndEpoch(
                leader_id=p.current_leader[0], leader_epoch=p.current_leader[1]
            )
        records = p.records.read() if isinstance(p.records, FileSlice) else p.records
        return build(
            default_partition,
            partition_index=p.partition_index,
            error_code=codec_error(p.error_code),
            high_watermark=p.high_watermark,
            last_stable_offset=p.last_stable_offset,
            log_start_offset=p.log_start_offset,
            aborted_transactions=None
            if p.aborted_transactions is None
            else tuple(
                types.AbortedTransaction(producer_id=t.producer_id, first_offset=t.first_offset)
                for t in p.aborted_transactions
            ),
            preferred_read_replica=p.preferred_read_replica,
            records=None if records is None else bytes(records),
            **extra,
        )

    return build(
        types.FetchResponse,
        throttle_time=datetime.timedelta(milliseconds=data.throttle_time_ms),
        error_code=codec_error(data.error_code),
        session_id=data.session_id,
        responses=tuple(
            build(
                types.FetchableTopicResponse,
                topic=t.name,
                topic_id=t.topic_id,
                partitions=tuple(partition(p) for p in t.partitions),
            )
            for t in data.topics
        ),
        node_endpoints=tuple(
            types.NodeEndpoint(node_id=n.node_id, host=n.host, port=n.port, rack=n.rack)
            for n in data.node_endpoints
        )
        if hasattr(types, "NodeEndpoint")
        else (),
    )


def codec_error(code: int) -> Any:
    from brokers.protocol.errors import ErrorCode

    return ErrorCode(code)


def sample_response(records: Any) -> FetchResponseData:
    return FetchResponseData(
        throttle_time_ms=5,
        session_id=77,
        topics=[
            FetchTopic(
                name="orders",
                topic_id=uuid.UUID(int=0xABCDEF),
                partitions=[
                    FetchPartition(
                        partition_index=0,
                        high_watermark=120,
                        last_stable_offset=110,
                        log_start_offset=3,
                        records=records,
                        current_leader=(1, 7),
                    ),
                    FetchPartition(partition_index=1, error_code=6, records=None),
                    FetchPartition(
                        partition_index=2,
                        aborted_transactions=[AbortedTransaction(42, 100)],
                        records=b"",
                        diverging_epoch=(3, 99),
                    ),
                ],
            )
        ],
        node_endpoints=[NodeEndpoint(1, "broker-1.local", 9092, "rack-a")],
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_bytes_equal_kio_encoding_at_every_version(version: int) -> None:
    data = sample_response(os.urandom(INLINE_RECORDS_BYTES * 3))
    body = encode_fetch_response(version, data)
    assert body.to_bytes() == codec.encode(as_kio(version, data))
    assert body.size == len(body.to_bytes())


@pytest.mark.parametrize("version", [4, 11, 12, 13, 16, 18])
def test_file_slice_records_stay_a_chunk_of_their_own(version: int) -> None:
    payload = os.urandom(50_000)
    with tempfile.TemporaryFile() as segment:
        segment.write(b"x" * 1000 + payload + b"y" * 1000)
        segment.flush()
        piece = FileSlice(segment.fileno(), 1000, len(payload))
        data = sample_response(piece)
        body = encode_fetch_response(version, data)
        assert piece in body.chunks
        decoded = codec.decode_response(1, version, body.to_bytes())
        assert decoded.responses[0].partitions[0].records == payload
        assert body.to_bytes() == codec.encode(as_kio(version, sample_response(payload)))


def test_large_in_memory_records_are_not_copied() -> None:
    payload = memoryview(os.urandom(INLINE_RECORDS_BYTES * 2))
    body = encode_fetch_response(12, sample_response(payload))
    assert any(chunk is payload for chunk in body.chunks)


def test_versions_outside_the_range_are_refused() -> None:
    with pytest.raises(ValueError):
        encode_fetch_response(MIN_VERSION - 1, sample_response(b""))
    with pytest.raises(ValueError):
        encode_fetch_response(MAX_VERSION + 1, sample_response(b""))


partitions_strategy = st.lists(
    st.builds(
        FetchPartition,
        partition_index=st.integers(0, 2**31 - 1),
        error_code=st.sampled_from([0, 1, 3, 6, 75]),
        high_watermark=st.integers(-1, 2**63 - 1),
        last_stable_offset=st.integers(-1, 2**63 - 1),
        log_start_offset=st.integers(-1, 2**63 - 1),
        aborted_transactions=st.none()
        | st.lists(st.builds(AbortedTransaction, st.integers(0, 2**62), st.integers(0, 2**62))),
        preferred_read_replica=st.integers(-1, 100),
        records=st.none() | st.binary(max_size=INLINE_RECORDS_BYTES * 2),
        diverging_epoch=st.none() | st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 2**62)),
        current_leader=st.none() | st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1)),
    ),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(
    version=st.sampled_from(VERSIONS),
    topics=st.lists(
        st.builds(
            FetchTopic,
            partitions=partitions_strategy,
            name=st.text(min_size=1, max_size=40),
            topic_id=st.uuids(),
        ),
        max_size=4,
    ),
    throttle_time_ms=st.integers(0, 2**31 - 1),
    session_id=st.integers(0, 2**31 - 1),
)
def test_any_response_round_trips_through_kio(
    version: int, topics: list[FetchTopic], throttle_time_ms: int, session_id: int
) -> None:
    data = FetchResponseData(
        topics=topics, throttle_time_ms=throttle_time_ms, session_id=session_id
    )
    encoded = encode_fetch_response(version, data).to_bytes()
    assert encoded == codec.encode(as_kio(version, data))
    assert codec.decode_response(1, version, encoded) == as_kio(version, data)
