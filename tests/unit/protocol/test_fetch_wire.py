"""Fetch over a raw socket: long poll, KIP-74 sizes, errors, topic ids, every version."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from data_test_support import (
    DataBroker,
    batch_of,
    decode_records,
    fetch_request,
    produce,
    topic_meta,
)

from brokers.protocol.errors import ErrorCode


@pytest.fixture
def broker(tmp_path: Path):
    with DataBroker(tmp_path) as running:
        yield running


def partitions_of(response) -> dict[tuple[str | None, int], object]:
    return {
        (getattr(topic, "topic", None) or topic.topic_id, p.partition_index): p
        for topic in response.responses
        for p in topic.partitions
    }


def fill(broker: DataBroker, topic: str, partition: int, batches: int, per_batch: int = 10,
         value: bytes = b"v") -> None:
    with broker.wire() as wire:
        for i in range(batches):
            values = [value + b"-%d-%d" % (i, j) for j in range(per_batch)]
            assert produce(wire, topic, partition, batch_of(values)).error_code == 0


@pytest.mark.parametrize("version", range(4, 19))
def test_every_version_returns_the_records(broker: DataBroker, version: int) -> None:
    fill(broker, "events", 0, 3)
    topic_ids = {"events": topic_meta("events").topic_id}
    with broker.wire() as wire:
        response = wire.call(
            fetch_request({("events", 0): 10}, version=version, topic_ids=topic_ids)
        )
    assert response.error_code == 0 if version >= 7 else True
    (partition,) = partitions_of(response).values()
    assert (partition.error_code, partition.high_watermark) == (ErrorCode.none, 30)
    records = decode_records(partition.records)
    assert [r.offset for r in records] == list(range(10, 30))
    assert records[0].value == b"v-1-0"
    if version >= 7:
        assert response.session_id == 0


def test_large_records_go_out_by_sendfile_byte_for_byte(broker: DataBroker) -> None:
    fill(broker, "events", 1, 5, per_batch=100, value=b"x" * 200)
    on_disk = broker.call(lambda: broker.log("events", 1).read(0, 1 << 24).read_bytes())
    assert len(on_disk) > 50_000
    with broker.wire() as wire:
        response = wire.call(fetch_request({("events", 1): 0}))
    assert partitions_of(response)[("events", 1)].records == on_disk


def test_long_poll_answers_when_data_arrives(broker: DataBroker) -> None:
    def produce_later() -> None:
        time.sleep(0.3)
        fill(broker, "events", 2, 1)

    with broker.wire() as wire:
        writer = threading.Thread(target=produce_later)
        started = time.monotonic()
        writer.start()
        response = wire.call(fetch_request({("events", 2): 0}, max_wait_ms=5000, min_bytes=1))
        elapsed = time.monotonic() - started
        writer.join()
    assert 0.25 <= elapsed < 3
    assert len(decode_records(partitions_of(response)[("events", 2)].records)) == 10


def test_long_poll_answers_empty_after_max_wait(broker: DataBroker) -> None:
    with broker.wire() as wire:
        started = time.monotonic()
        response = wire.call(fetch_request({("events", 0): 0}, max_wait_ms=400, min_bytes=1))
        elapsed = time.monotonic() - started
    partition = partitions_of(response)[("events", 0)]
    assert (partition.error_code, partition.high_watermark, partition.records) == (0, 0, b"")
    assert 0.35 <= elapsed < 3


def test_long_poll_waits_for_min_bytes_across_appends(broker: DataBroker) -> None:
    def produce_twice() -> None:
        for _ in range(2):
            time.sleep(0.2)
            fill(broker, "events", 0, 1, value=b"x" * 100)

    with broker.wire() as wire:
        writer = threading.Thread(target=produce_twice)
        writer.start()
        started = time.monotonic()
        response = wire.call(fetch_request({("events", 0): 0}, max_wait_ms=5000, min_bytes=1500))
        elapsed = time.monotonic() - started
        writer.join()
    assert 0.35 <= elapsed < 3
    assert len(decode_records(partitions_of(response)[("events", 0)].records)) == 20


def test_min_one_batch_in_the_first_partition_and_the_byte_budget_after(
    broker: DataBroker,
) -> None:
    fill(broker, "events", 0, 2, per_batch=50, value=b"x" * 100)  # ~5.5 kB batches
    fill(broker, "events", 1, 2, per_batch=50, value=b"x" * 100)
    with broker.wire() as wire:
        response = wire.call(
            fetch_request(
                {("events", 0): 0, ("events", 1): 0}, max_bytes=1000, partition_max_bytes=1000
            )
        )
    first, second = partitions_of(response)[("events", 0)], partitions_of(response)[("events", 1)]
    assert [r.offset for r in decode_records(first.records)] == list(range(50))  # one batch
    assert second.error_code == 0 and second.records == b""  # the budget is spent
    assert second.high_watermark == 100


def test_partition_max_bytes_limits_each_partition(broker: DataBroker) -> None:
    fill(broker, "events", 0, 10, per_batch=10, value=b"x" * 50)  # 671-byte batches
    fill(broker, "events", 1, 10, per_batch=10, value=b"x" * 50)
    with broker.wire() as wire:
        response = wire.call(
            fetch_request({("events", 0): 0, ("events", 1): 0}, partition_max_bytes=2100)
        )
    for partition in partitions_of(response).values():
        assert 0 < len(partition.records) <= 2100
        assert len(decode_records(partition.records)) == 30


@pytest.mark.parametrize("offset", [-1, 11, 10_000])
def test_fetch_outside_the_log_is_offset_out_of_range(broker: DataBroker, offset: int) -> None:
    fill(broker, "events", 0, 1)
    with broker.wire() as wire:
        started = time.monotonic()
        response = wire.call(fetch_request({("events", 0): offset}, max_wait_ms=5000))
        assert time.monotonic() - started < 2  # errors answer at once
        partition = partitions_of(response)[("events", 0)]
        assert partition.error_code == ErrorCode.offset_out_of_range
        assert partition.high_watermark == 10
        good = wire.call(fetch_request({("events", 0): 5}))
    # Whole batches: the one holding offset 5 starts at 0; clients skip what they did not ask.
    records = decode_records(partitions_of(good)[("events", 0)].records)
    assert [r.offset for r in records if r.offset >= 5] == list(range(5, 10))


@pytest.mark.parametrize(
    ("topic", "partition", "code"),
    [
        ("elsewhere", 0, ErrorCode.not_leader_or_follower),
        ("nope", 0, ErrorCode.unknown_topic_or_partition),
        ("events", 5, ErrorCode.unknown_topic_or_partition),
    ],
)
def test_fetch_where_this_broker_does_not_lead(broker, topic, partition, code) -> None:
    with broker.wire() as wire:
        response = wire.call(fetch_request({(topic, partition): 0}, max_wait_ms=5000))
    assert partitions_of(response)[(topic, partition)].error_code == code


@pytest.mark.parametrize(
    ("epoch", "code"),
    [(0, ErrorCode.none), (-1, ErrorCode.none), (1, ErrorCode.unknown_leader_epoch)],
)
def test_fetch_checks_the_current_leader_epoch(broker, epoch: int, code: ErrorCode) -> None:
    fill(broker, "events", 0, 1)
    with broker.wire() as wire:
        response = wire.call(fetch_request({("events", 0): 0}, current_leader_epoch=epoch))
    assert partitions_of(response)[("events", 0)].error_code == code


def test_fetch_from_an_older_leader_epoch_is_fenced(tmp_path: Path) -> None:
    with DataBroker(tmp_path, [topic_meta("events", 1, leader_epoch=5)]) as broker, \
            broker.wire() as wire:
        response = wire.call(fetch_request({("events", 0): 0}, current_leader_epoch=4))
    assert partitions_of(response)[("events", 0)].error_code == ErrorCode.fenced_leader_epoch


def test_unknown_topic_id_at_v13(broker: DataBroker) -> None:
    unknown = topic_meta("ghost").topic_id
    with broker.wire() as wire:
        response = wire.call(
            fetch_request({("ghost", 0): 0}, version=13, topic_ids={"ghost": unknown})
        )
    assert partitions_of(response)[(unknown, 0)].error_code == ErrorCode.unknown_topic_id


def test_incremental_sessions_are_refused_full_fetches_get_session_zero(
    broker: DataBroker,
) -> None:
    with broker.wire() as wire:
        initial = wire.call(fetch_request({("events", 0): 0}, session_epoch=0))
        incremental = wire.call(fetch_request({("events", 0): 0}, session_id=7, session_epoch=1))
    assert (initial.error_code, initial.session_id) == (0, 0)
    assert incremental.error_code == ErrorCode.fetch_session_id_not_found


def test_read_committed_reads_to_the_high_watermark(broker: DataBroker) -> None:
    fill(broker, "events", 0, 2)
    with broker.wire() as wire:
        response = wire.call(fetch_request({("events", 0): 0}, isolation_level=1))
    partition = partitions_of(response)[("events", 0)]
    assert partition.last_stable_offset == partition.high_watermark == 20
    assert partition.aborted_transactions == ()
    assert len(decode_records(partition.records)) == 20
