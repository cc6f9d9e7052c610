"""Retention: whole closed segments go by age, by size, or below the log start offset."""

import os

from log_test_support import make_batch

from brokers.log.checkpoint import LOG_START_OFFSET, read_checkpoint

DAY_MS = 24 * 3600 * 1000


def fill(log, batches: int, timestamp: int) -> None:
    for _ in range(batches):
        log.append_batch(make_batch(3, timestamp=timestamp), 0)


def test_retention_ms_deletes_closed_segments_by_largest_timestamp(make_log, clock):
    log = make_log(segment_bytes=1000, retention_ms=DAY_MS)
    fill(log, 20, timestamp=clock.now_ms - 3 * DAY_MS)
    old_segments = len(log.segments)
    log.roll()
    fill(log, 10, timestamp=clock.now_ms)
    deleted = log.delete_old_segments(clock.now_ms)
    assert deleted == old_segments
    assert log.log_start_offset == 60 == log.segments[0].base_offset
    assert log.read_records(60, 1000)[0].offset == 60
    assert read_checkpoint(log.directory, LOG_START_OFFSET) == 60


def test_retention_bytes_keeps_the_log_under_the_limit(make_log, clock):
    log = make_log(segment_bytes=1000, retention_bytes=2500, retention_ms=-1)
    fill(log, 40, timestamp=clock.now_ms)
    assert log.size_in_bytes > 2500
    assert log.delete_old_segments() > 0
    # Each deletion was needed, and deleting the next closed segment would go below the limit.
    assert log.size_in_bytes - log.segments[0].size < 2500


def test_the_active_segment_is_never_deleted(make_log, clock):
    log = make_log(segment_bytes=1 << 20, retention_ms=1, retention_bytes=0)
    fill(log, 5, timestamp=0)
    assert log.delete_old_segments(clock.now_ms) == 0
    assert log.log_end_offset == 15 and len(log.read_records(0, 100)) == 15


def test_compact_only_topics_ignore_time_and_size_retention(make_log, clock):
    log = make_log(segment_bytes=1000, retention_ms=1, retention_bytes=0,
                   cleanup_policy="compact")
    fill(log, 20, timestamp=0)
    assert log.delete_old_segments(clock.now_ms) == 0


def test_compact_delete_topics_apply_retention(make_log, clock):
    log = make_log(segment_bytes=1000, retention_ms=1, cleanup_policy="compact,delete")
    fill(log, 20, timestamp=0)
    closed = len(log.segments) - 1
    assert closed > 0 and log.delete_old_segments(clock.now_ms) == closed


def test_segments_below_the_log_start_offset_go(make_log):
    log = make_log(segment_bytes=1000, retention_ms=-1)
    fill(log, 20, timestamp=0)
    second = log.segments[2].base_offset
    log.increment_log_start_offset(second + 1)
    assert log.delete_old_segments() == 2
    assert log.log_start_offset == second + 1
    assert log.read_records(0 + second + 1, 5)[0].offset == second + 1


def test_log_start_offset_survives_reopen(make_log, clock):
    log = make_log(segment_bytes=1000, retention_ms=DAY_MS)
    fill(log, 20, timestamp=0)
    log.roll()
    log.delete_old_segments(clock.now_ms)
    log.close()
    again = make_log(segment_bytes=1000, retention_ms=DAY_MS)
    assert again.log_start_offset == 60 == again.log_end_offset


def test_a_file_slice_outlives_the_deletion_of_its_segment(make_log, clock):
    log = make_log(segment_bytes=1000, retention_ms=1)
    fill(log, 20, timestamp=0)
    piece = log.read(0, 1 << 20)
    expected = piece.read_bytes()
    log.delete_old_segments(clock.now_ms)
    assert not os.path.exists(piece.path)
    assert os.pread(piece.fd, piece.length, piece.position) == expected
