"""Benchmark of the Kafka wire codecs for the hot messages: kio against kafka-python.

Run from the repository root: .venv/bin/python bench/protocol_codec_bench.py [--quick]

Each case builds the same message once (with kio), checks that both codecs agree on its bytes,
then times decode of requests and encode of responses, as the broker does them. Records fields
are raw bytes throughout; neither codec is asked to look inside a batch.
"""

from __future__ import annotations

import datetime
import io
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for brokers

from kafka.protocol.consumer import FetchResponse as KpFetchResponse
from kafka.protocol.metadata import ApiVersionsRequest as KpApiVersionsRequest
from kafka.protocol.metadata import ApiVersionsResponse as KpApiVersionsResponse
from kafka.protocol.metadata import MetadataResponse as KpMetadataResponse
from kafka.protocol.producer import ProduceRequest as KpProduceRequest
from kio.schema.api_versions.v3 import request as api_versions_request
from kio.schema.api_versions.v3 import response as api_versions_response
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12 import response as fetch_response
from kio.schema.metadata.v12 import response as metadata_response
from kio.schema.produce.v9 import request as produce_request
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import Records, i16, i32, i64

from brokers.protocol.fetch_encoder import (
    FetchPartition,
    FetchResponseData,
    FetchTopic,
    encode_fetch_response,
)

_ZERO_MS = datetime.timedelta(0)


def kio_encode(entity: object) -> bytes:
    buffer = io.BytesIO()
    entity_writer(type(entity))(buffer, entity)
    return buffer.getvalue()


def produce_request_v9() -> object:
    records = Records(b"\x00" * 65536)
    partition = produce_request.PartitionProduceData(index=i32(0), records=records)
    topic = produce_request.TopicProduceData(name="bench", partition_data=(partition,))
    return produce_request.ProduceRequest(
        transactional_id=None,
        acks=i16(-1),
        timeout=datetime.timedelta(milliseconds=30000),
        topic_data=(topic,),
    )


def fetch_response_v12(partitions: int = 8, records_bytes: int = 32768) -> object:
    datas = tuple(
        fetch_response.PartitionData(
            partition_index=i32(index),
            error_code=ErrorCode.none,
            high_watermark=i64(1000),
            last_stable_offset=i64(1000),
            log_start_offset=i64(0),
            aborted_transactions=None,
            records=Records(bytes([index]) * records_bytes),
        )
        for index in range(partitions)
    )
    topic = fetch_response.FetchableTopicResponse(topic="bench", partitions=datas)
    return fetch_response.FetchResponse(
        throttle_time=_ZERO_MS, error_code=ErrorCode.none, session_id=i32(0), responses=(topic,)
    )


def metadata_response_v12(topics: int = 20, partitions: int = 12) -> object:
    brokers = tuple(
        metadata_response.MetadataResponseBroker(
            node_id=i32(node), host=f"broker-{node}.local", port=i32(9092), rack=None
        )
        for node in range(3)
    )
    topic_list = tuple(
        metadata_response.MetadataResponseTopic(
            error_code=ErrorCode.none,
            name=f"topic-{t}",
            topic_id=uuid.UUID(int=t + 1),
            partitions=tuple(
                metadata_response.MetadataResponsePartition(
                    error_code=ErrorCode.none,
                    partition_index=i32(p),
                    leader_id=i32(p % 3),
                    leader_epoch=i32(4),
                    replica_nodes=(i32(0), i32(1), i32(2)),
                    isr_nodes=(i32(0), i32(1), i32(2)),
                    offline_replicas=(),
                )
                for p in range(partitions)
            ),
        )
        for t in range(topics)
    )
    return metadata_response.MetadataResponse(
        throttle_time=_ZERO_MS,
        brokers=brokers,
        cluster_id="djafka",
        controller_id=i32(0),
        topics=topic_list,
    )


def api_versions_request_v3() -> object:
    return api_versions_request.ApiVersionsRequest(
        client_software_name="librdkafka", client_software_version="2.16.1"
    )


def api_versions_response_v3() -> object:
    keys = tuple(
        api_versions_response.ApiVersion(api_key=i16(k), min_version=i16(0), max_version=i16(9))
        for k in range(40)
    )
    return api_versions_response.ApiVersionsResponse(
        error_code=ErrorCode.none, api_keys=keys, throttle_time=_ZERO_MS
    )


def time_per_op(func: Callable[[], object], budget_s: float) -> float:
    """Best of five runs, each repeating func for about budget_s / 5; seconds per op."""
    runs = 1
    started = time.perf_counter()
    func()
    single = max(time.perf_counter() - started, 1e-7)
    runs = max(1, int(budget_s / 5 / single))
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(runs):
            func()
        best = min(best, (time.perf_counter() - started) / runs)
    return best


def main() -> None:
    budget_s = 0.25 if "--quick" in sys.argv else 1.5
    cases: list[tuple[str, dict[str, Callable[[], object]]]] = []

    produce = produce_request_v9()
    produce_bytes = kio_encode(produce)
    produce_reader = entity_reader(type(produce))
    cases.append(
        (
            "decode ProduceRequest v9 (1 x 64 KiB records)",
            {
                "kio": lambda: produce_reader(produce_bytes, 0),
                "kafka-python": lambda: KpProduceRequest.decode(produce_bytes, version=9),
            },
        )
    )

    fetch = fetch_response_v12()
    fetch_bytes = kio_encode(fetch)
    kp_fetch = KpFetchResponse.decode(fetch_bytes, version=12)
    assert kp_fetch.encode() == fetch_bytes
    fetch_data = _as_fetch_response_data(fetch)
    assert encode_fetch_response(12, fetch_data).to_bytes() == fetch_bytes
    cases.append(
        (
            "encode FetchResponse v12 (8 x 32 KiB records)",
            {
                "kio": lambda: kio_encode(fetch),
                "kafka-python": lambda: kp_fetch.encode(),
                "djafka chunks": lambda: encode_fetch_response(12, fetch_data),
            },
        )
    )

    metadata = metadata_response_v12()
    metadata_bytes = kio_encode(metadata)
    kp_metadata = KpMetadataResponse.decode(metadata_bytes, version=12)
    assert kp_metadata.encode() == metadata_bytes
    cases.append(
        (
            "encode MetadataResponse v12 (3 brokers, 20 topics x 12 partitions)",
            {
                "kio": lambda: kio_encode(metadata),
                "kafka-python": lambda: kp_metadata.encode(),
            },
        )
    )

    av_request = api_versions_request_v3()
    av_request_bytes = kio_encode(av_request)
    av_reader = entity_reader(type(av_request))
    cases.append(
        (
            "decode ApiVersionsRequest v3",
            {
                "kio": lambda: av_reader(av_request_bytes, 0),
                "kafka-python": lambda: KpApiVersionsRequest.decode(av_request_bytes, version=3),
            },
        )
    )

    av_response = api_versions_response_v3()
    av_response_bytes = kio_encode(av_response)
    kp_av_response = KpApiVersionsResponse.decode(av_response_bytes, version=3)
    assert kp_av_response.encode() == av_response_bytes
    cases.append(
        (
            "encode ApiVersionsResponse v3 (40 APIs)",
            {
                "kio": lambda: kio_encode(av_response),
                "kafka-python": lambda: kp_av_response.encode(),
            },
        )
    )

    print(f"{'case':<68} {'codec':<14} {'us/op':>10} {'ops/s':>12}")
    for name, codecs in cases:
        for codec, func in codecs.items():
            seconds = time_per_op(func, budget_s)
            print(f"{name:<68} {codec:<14} {seconds * 1e6:>10.1f} {1 / seconds:>12,.0f}")


def _as_fetch_response_data(fetch: object) -> FetchResponseData:
    """The same FetchResponse as the broker hands it to the chunked encoder."""
    return FetchResponseData(
        topics=[
            FetchTopic(
                name=topic.topic,
                partitions=[
                    FetchPartition(
                        partition_index=p.partition_index,
                        error_code=int(p.error_code),
                        high_watermark=p.high_watermark,
                        last_stable_offset=p.last_stable_offset,
                        log_start_offset=p.log_start_offset,
                        records=bytes(p.records),
                    )
                    for p in topic.partitions
                ],
            )
            for topic in fetch.responses
        ]
    )


if __name__ == "__main__":
    main()
