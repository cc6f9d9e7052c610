"""PartitionLog append and read: offsets, segments, indexes, fetch slices, timestamps."""

import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from log_test_support import all_batches, make_batch, make_records

from brokers.log import (
    InvalidRecordException,
    LogConfig,
    OffsetOutOfRangeException,
    PartitionLog,
    Record,
    RecordBatchTooLargeException,
)
from brokers.log import batch as b
from brokers.log.checkpoint import RECOVERY_POINT, read_checkpoint

fixture_ok = settings(max_examples=40, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])


@fixture_ok
@given(st.lists(st.integers(1, 12), min_size=1, max_size=40))
def test_offsets_are_contiguous_and_ordered_across_many_rolls(tmp_path_factory, counts):
    log = PartitionLog(tmp_path_factory.mktemp("l") / "t-0", LogConfig(segment_bytes=700))
    expected = 0
    for i, count in enumerate(counts):
        info = log.append_batch(make_batch(count, start=expected), leader_epoch=i)
        assert (info.base_offset, info.last_offset) == (expected, expected + count - 1)
        expected += count
    assert log.log_end_offset == expected
    records = log.read_records(0, max_records=10_000)
    assert [r.offset for r in records] == list(range(expected))
    assert [r.key for r in records] == [b"key-%d" % i for i in range(expected)]
    assert len(log.segments) > 1 or log.size_in_bytes <= 700
    bases = [s.base_offset for s in log.segments]
    assert bases == sorted(bases) and bases[0] == 0
    log.close()


def test_segment_files_are_named_by_base_offset_in_20_digits(make_log):
    log = make_log(segment_bytes=600)
    for _ in range(10):
        log.append_batch(make_batch(3), 0)
    log.close()
    names = sorted(n for n in os.listdir(log.directory) if n.endswith(".log"))
    assert names == [f"{s.base_offset:020d}.log" for s in log.segments]
    assert len(names) > 2
    for name in names:
        stem = name[:-4]
        assert os.path.exists(os.path.join(log.directory, stem + ".index"))
        assert os.path.exists(os.path.join(log.directory, stem + ".timeindex"))


def test_append_rewrites_only_base_offset_and_leader_epoch(make_log):
    log = make_log()
    log.append_batch(make_batch(5), 0)
    original = make_batch(4, start=5)
    log.append_batch(original, leader_epoch=7)
    stored = log.read(5, 1 << 20).read_bytes()
    assert stored[b.POS_MAGIC:] == bytes(original[b.POS_MAGIC:])  # CRC and records untouched
    base, length, epoch = struct.unpack_from(">qii", stored)
    assert (base, length + 12, epoch) == (5, len(original), 7)
    assert b.validate_batches(memoryview(stored), 1 << 20)


def test_log_append_time_sets_max_timestamp_and_a_valid_crc(make_log, clock):
    log = make_log(message_timestamp_type="LogAppendTime")
    info = log.append_batch(make_batch(3, timestamp=5), 0)
    assert info.log_append_time_ms == clock.now_ms
    stored = log.read(0, 1 << 20).read_bytes()
    b.validate_batches(memoryview(stored), 1 << 20)  # the CRC was recomputed
    records = log.read_records(0)
    assert {(r.timestamp, r.timestamp_type) for r in records} == {(clock.now_ms, 1)}


def test_concatenated_batches_get_consecutive_offsets(make_log):
    log = make_log()
    info = log.append_batch(make_batch(2) + make_batch(3) + make_batch(1), 0)
    assert (info.base_offset, info.last_offset, info.records_count) == (0, 5, 6)
    stored = log.read(0, 1 << 20).read_bytes()
    assert [(base, last) for _, _, base, last in all_batches(stored)] == [(0, 1), (2, 4), (5, 5)]


def test_records_set_larger_than_a_segment_is_rejected_with_code_18(make_log):
    log = make_log(segment_bytes=300)
    with pytest.raises(RecordBatchTooLargeException) as caught:
        log.append_batch(make_batch(20), 0)
    assert caught.value.error_code == 18
    assert log.log_end_offset == 0


def test_read_starts_at_the_batch_containing_offset(make_log):
    log = make_log()
    for i in range(30):
        log.append_batch(make_batch(4, start=4 * i), 0)
    for offset in (0, 1, 5, 42, 119):
        piece = log.read(offset, 1)
        assert piece.first_offset == offset - offset % 4
        ((_, size, base, last),) = all_batches(piece.read_bytes())
        assert base <= offset <= last and size == piece.length


def test_read_returns_whole_batches_up_to_max_bytes(make_log):
    log = make_log(segment_bytes=1 << 20)
    sizes = []
    for i in range(10):
        sizes.append(log.append_batch(make_batch(3, start=3 * i), 0).valid_bytes)
    piece = log.read(0, sizes[0] + sizes[1] + sizes[2] - 1)
    assert piece.length == sizes[0] + sizes[1]
    assert len(all_batches(piece.read_bytes())) == 2


def test_read_returns_one_whole_batch_even_past_max_bytes_kip_74(make_log):
    log = make_log()
    info = log.append_batch(make_batch(10), 0)
    piece = log.read(3, max_bytes=1)
    assert piece.length == info.valid_bytes and piece.position == 0


def test_read_stops_before_the_high_watermark(make_log):
    log = make_log(segment_bytes=1 << 20)
    for i in range(5):
        log.append_batch(make_batch(2, start=2 * i), 0)
    piece = log.read(0, 1 << 20, max_offset=6)
    assert piece.last_offset == 5
    assert log.read(6, 1 << 20, max_offset=6).length == 0
    assert [r.offset for r in log.read_records(0, max_offset=6)] == list(range(6))


def test_read_out_of_range_raises_code_1_and_at_log_end_is_empty(make_log):
    log = make_log()
    log.append_batch(make_batch(3), 0)
    assert log.read(3, 100).length == 0
    with pytest.raises(OffsetOutOfRangeException) as caught:
        log.read(4, 100)
    assert caught.value.error_code == 1
    log.increment_log_start_offset(2)
    with pytest.raises(OffsetOutOfRangeException):
        log.read(1, 100)


def test_file_slice_can_be_sent_with_sendfile(make_log, tmp_path):
    log = make_log()
    log.append_batch(make_batch(3), 0)
    piece = log.read(0, 1 << 20)
    out = tmp_path / "out.bin"
    with open(out, "wb") as file:
        os.sendfile(file.fileno(), piece.fd, piece.position, piece.length)
    assert out.read_bytes() == piece.read_bytes()


def test_offset_index_file_is_kafkas_layout(make_log):
    log = make_log(segment_bytes=1 << 20, index_interval_bytes=100)
    for i in range(20):
        log.append_batch(make_batch(2, start=2 * i), 0)
    log.close()
    segment = log.segments[0]
    data = Path(segment.log_path).read_bytes()
    entries = list(struct.iter_unpack(">ii", Path(segment.offset_index.path).read_bytes()))
    assert len(entries) > 5
    batches = {pos: last for pos, _, _, last in all_batches(data)}
    for relative, position in entries:
        assert batches[position] == segment.base_offset + relative
    times = list(struct.iter_unpack(">qi", Path(segment.time_index.path).read_bytes()))
    assert times == sorted(times) and times[-1][0] == segment.max_timestamp


def test_index_full_rolls_the_segment(make_log):
    log = make_log(segment_bytes=1 << 20, index_interval_bytes=1, segment_index_bytes=32)
    for i in range(20):
        log.append_batch(make_batch(1, start=i), 0)
    assert len(log.segments) > 2


def test_segment_ms_rolls_by_the_first_batch_timestamp(make_log):
    log = make_log(segment_bytes=1 << 20, segment_ms=1000)
    log.append_batch(make_batch(1, timestamp=10_000), 0)
    log.append_batch(make_batch(1, timestamp=10_900), 0)
    assert len(log.segments) == 1
    log.append_batch(make_batch(1, timestamp=11_001), 0)
    assert [s.base_offset for s in log.segments] == [0, 2]


@fixture_ok
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=60), st.integers(0, 1010))
def test_offset_for_timestamp_finds_the_first_record_at_or_after(tmp_path_factory, stamps,
                                                                   target):
    log = PartitionLog(tmp_path_factory.mktemp("l") / "t-0",
                       LogConfig(segment_bytes=500, index_interval_bytes=60))
    for i in range(0, len(stamps), 3):
        chunk = stamps[i : i + 3]
        log.append_records([Record(key=None, value=b"x", timestamp=t) for t in chunk], 0)
    expected = next(((t, o) for o, t in enumerate(stamps) if t >= target), None)
    found = log.offset_for_timestamp(target)
    assert (tuple(found) if found else None) == expected
    log.close()


def test_offset_for_special_timestamps_latest_and_earliest(make_log):
    log = make_log()
    log.append_batch(make_batch(4), 0)
    assert log.offset_for_timestamp(-1).offset == 4
    assert log.offset_for_timestamp(-2).offset == 0
    assert log.offset_for_timestamp(10**15) is None


def test_append_records_builds_one_batch_with_each_codec(make_log):
    log = make_log(segment_bytes=1 << 20)
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        info = log.append_records(make_records(5), 0, compression_type=codec)
        piece = log.read(info.base_offset, 1 << 20)
        assert len(all_batches(piece.read_bytes())) == 1
    values = [r.value for r in log.read_records(0, 100)]
    assert values == [r.value for r in make_records(5)] * 5


def test_flush_messages_moves_the_recovery_point(make_log):
    log = make_log(flush_messages=5)
    log.append_batch(make_batch(3), 0)
    assert read_checkpoint(log.directory, RECOVERY_POINT) == 0
    log.append_batch(make_batch(3), 0)
    assert log.recovery_point == 6 == read_checkpoint(log.directory, RECOVERY_POINT)


def test_flush_ms_moves_the_recovery_point(make_log, clock):
    log = make_log(flush_ms=100)
    log.append_batch(make_batch(1), 0)
    assert log.recovery_point == 0
    clock.now_ms += 101
    log.append_batch(make_batch(1), 0)
    assert log.recovery_point == 2


def test_reopen_after_close_keeps_every_record(make_log):
    log = make_log(segment_bytes=800)
    for i in range(40):
        log.append_batch(make_batch(2, start=2 * i), i)
    before = [(r.offset, r.key, r.value) for r in log.read_records(0, 1000)]
    log.close()
    again = make_log(segment_bytes=800)
    assert again.recovered_bytes == 0 and again.log_end_offset == 80
    assert [(r.offset, r.key, r.value) for r in again.read_records(0, 1000)] == before
    assert again.append_batch(make_batch(1), 0).base_offset == 80


def test_config_from_topic_configs_maps_kafka_names_and_keeps_defaults():
    config = LogConfig.from_topic_configs({
        "segment.bytes": "1024", "cleanup.policy": "delete,compact",
        "message.timestamp.type": "LogAppendTime", "min.insync.replicas": "2"})
    assert config.segment_bytes == 1024 and config.is_compacted and config.is_delete_enabled
    assert config.is_log_append_time
    assert config.retention_ms == 7 * 24 * 3600 * 1000 and config.max_message_bytes == 1048588
    assert config.flush_messages == 2**63 - 1 and config.segment_index_bytes == 10 * 1024 * 1024


def test_read_without_min_one_batch_gives_nothing_when_the_batch_is_too_large(make_log):
    log = make_log()
    info = log.append_batch(make_batch(10), 0)
    assert log.read(0, info.valid_bytes - 1, min_one_batch=False).length == 0
    assert log.read(0, info.valid_bytes, min_one_batch=False).length == info.valid_bytes


def test_append_as_follower_keeps_the_leaders_offsets_and_epochs(make_log, tmp_path, clock):
    leader = PartitionLog(tmp_path / "leader-0", LogConfig(segment_bytes=700), clock=clock)
    for i in range(12):
        leader.append_batch(make_batch(3, start=3 * i), leader_epoch=i)
    follower = make_log(segment_bytes=700)
    offset = 0
    while offset < leader.log_end_offset:
        piece = leader.read(offset, 1000)
        follower.append_as_follower(piece.read_bytes())
        offset = piece.last_offset + 1
    assert follower.log_end_offset == leader.log_end_offset == 36
    assert follower.read(0, 1 << 20).read_bytes() == leader.read(0, 1 << 20).read_bytes()
    with pytest.raises(InvalidRecordException):
        follower.append_as_follower(leader.read(30, 1).read_bytes())
    leader.close()


def test_update_config_applies_to_the_next_append_and_delete_removes_the_folder(make_log):
    log = make_log(segment_bytes=1 << 20)
    log.append_batch(make_batch(2), 0)
    log.update_config(LogConfig(message_timestamp_type="LogAppendTime"))
    assert log.append_batch(make_batch(2), 0).log_append_time_ms > 0
    log.delete()
    assert not os.path.exists(log.directory)
