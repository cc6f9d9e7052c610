"""Compaction: latest record per key, original offsets, tombstones after delete.retention.ms."""

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from log_test_support import all_batches

from brokers.log import LogConfig, PartitionLog, Record
from brokers.log import batch as b
from brokers.log import records as rec

fixture_ok = settings(max_examples=30, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])
NOW = 1_700_000_000_000
DAY_MS = 24 * 3600 * 1000

write_st = st.tuples(st.integers(0, 6), st.booleans(), st.sampled_from(["none", "gzip", "lz4"]))


@fixture_ok
@given(st.lists(st.lists(write_st, min_size=1, max_size=6), min_size=1, max_size=25))
def test_compaction_keeps_the_latest_record_per_key_at_its_original_offset(tmp_path_factory,
                                                                            batches):
    directory = tmp_path_factory.mktemp("c") / "t-0"
    log = PartitionLog(directory, LogConfig(segment_bytes=400, cleanup_policy="compact",
                                            delete_retention_ms=DAY_MS), clock=lambda: NOW)
    written = []
    for writes in batches:
        records = [Record(key=b"k%d" % k, value=None if tomb else b"v%d" % len(written) + b"",
                          timestamp=NOW - 2 * DAY_MS) for k, tomb, _ in writes]
        info = log.append_records(records, 0, compression_type=writes[0][2])
        written += [(info.base_offset + i, r.key, r.value) for i, r in enumerate(records)]
    active_base = log.segments[-1].base_offset
    before = log.read_records(0, 10_000)
    log.compact(NOW)
    after = [(r.offset, r.key, r.value) for r in log.read_records(0, 10_000)]
    # Kafka's offset map covers only the cleanable range: the active segment may still be
    # truncated, so a record there does not yet replace older ones.
    latest = {key: offset for offset, key, _ in written if offset < active_base}
    expected = [
        (offset, key, value) for offset, key, value in written
        if offset >= active_base  # the active segment is never compacted
        or (latest[key] == offset and value is not None)  # tombstones are old enough to go
    ]
    assert after == expected
    assert [r.offset for r in before if r.offset >= active_base] == [
        o for o, _, _ in after if o >= active_base]
    assert log.log_end_offset == len(written)
    for segment in log.segments:  # every stored batch is valid v2 with a good CRC
        data = Path(segment.log_path).read_bytes()
        assert sum(size for _, size, _, _ in all_batches(data)) == len(data)
        for position, _, _, _ in all_batches(data):
            b.is_valid_batch(memoryview(data), position, len(data))  # length, magic, CRC
    log.close()
    again = PartitionLog(directory, LogConfig(segment_bytes=400))
    assert [(r.offset, r.key, r.value) for r in again.read_records(0, 10_000)] == after
    again.close()


def test_tombstones_stay_until_delete_retention_ms_has_passed(make_log, clock):
    log = make_log(segment_bytes=1 << 20, cleanup_policy="compact", delete_retention_ms=1000)
    log.append_records([Record(key=b"a", value=b"1", timestamp=clock.now_ms)], 0)
    log.append_records([Record(key=b"a", value=None, timestamp=clock.now_ms)], 0)
    log.roll()
    log.append_records([Record(key=b"b", value=b"2")], 0)
    log.compact(clock.now_ms + 500)
    assert [(r.offset, r.value) for r in log.read_records(0, 10)] == [(1, None), (2, b"2")]
    log.compact(clock.now_ms + 1001)
    assert [(r.offset, r.value) for r in log.read_records(0, 10)] == [(2, b"2")]
    assert log.read(0, 100).first_offset == 2  # a fetch in the gap gets the next batch


def test_min_compaction_lag_leaves_young_segments_alone(make_log, clock):
    log = make_log(segment_bytes=1 << 20, cleanup_policy="compact", min_compaction_lag_ms=1000)
    for value in (b"1", b"2", b"3"):
        log.append_records([Record(key=b"a", value=value, timestamp=clock.now_ms)], 0)
    log.roll()
    log.append_records([Record(key=b"b", value=b"x")], 0)
    assert log.compact(clock.now_ms + 10).segments_cleaned == 0
    assert log.compact(clock.now_ms + 1001).segments_cleaned == 1
    assert [r.offset for r in log.read_records(0, 10)] == [2, 3]


def test_a_partly_kept_batch_keeps_its_codec_base_offset_and_record_bytes(make_log, clock):
    log = make_log(segment_bytes=1 << 20, cleanup_policy="compact")
    records = [Record(key=b"k%d" % (i % 3), value=b"v%d" % i, headers=[("h", b"%d" % i)],
                      timestamp=clock.now_ms + i) for i in range(6)]
    log.append_records(records, 4, compression_type="zstd")
    log.roll()
    original = log.read(0, 1 << 20).read_bytes()
    log.compact(clock.now_ms)
    cleaned = log.read(0, 1 << 20).read_bytes()
    (base, epoch, attributes, base_ts, count, last_delta) = (
        b.INT64.unpack_from(cleaned, 0)[0], int.from_bytes(cleaned[12:16], "big"),
        int.from_bytes(cleaned[21:23], "big"), b.INT64.unpack_from(cleaned, 27)[0],
        int.from_bytes(cleaned[57:61], "big"), int.from_bytes(cleaned[23:27], "big"))
    assert (base, epoch, attributes & 7, count, last_delta) == (0, 4, 4, 3, 5)
    assert base_ts == b.INT64.unpack_from(original, 27)[0]
    kept = rec.decode_batch(cleaned)
    assert [(r.offset, r.value, r.headers) for r in kept] == [
        (3, b"v3", [("h", b"3")]), (4, b"v4", [("h", b"4")]), (5, b"v5", [("h", b"5")])]
    old_body, new_body = rec.records_body(original), rec.records_body(cleaned)
    assert new_body in old_body  # the kept records' bytes are unchanged


def test_the_active_segment_is_never_compacted(make_log):
    log = make_log(segment_bytes=1 << 20, cleanup_policy="compact")
    for value in (b"1", b"2", b"3"):
        log.append_records([Record(key=b"a", value=value)], 0)
    assert log.compact().segments_cleaned == 0
    assert len(log.read_records(0, 10)) == 3


def test_compaction_leaves_no_cleaned_or_swap_files(make_log):
    log = make_log(segment_bytes=300, cleanup_policy="compact")
    for i in range(60):
        log.append_records([Record(key=b"k%d" % (i % 4), value=b"x" * 20)], 0)
    stats = log.compact()
    assert stats.segments_cleaned > 0 and stats.records_removed > 0
    assert not [f for f in os.listdir(log.directory) if f.endswith((".cleaned", ".swap"))]


def test_delete_policy_topics_are_not_compacted(make_log):
    log = make_log(segment_bytes=300)
    for _ in range(40):
        log.append_records([Record(key=b"k", value=b"x" * 20)], 0)
    assert log.compact().segments_cleaned == 0
    assert len(log.read_records(0, 100)) == 40
