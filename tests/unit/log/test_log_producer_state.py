"""Idempotent producers in the partition log: duplicates, sequence and epoch checks, recovery."""

from __future__ import annotations

import gc
import os
import weakref

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from log_test_support import make_records

from brokers.log import LogConfig, PartitionLog
from brokers.log import batch as b
from brokers.log import records as rec
from brokers.log.errors import (
    InvalidProducerEpochException,
    InvalidRecordException,
    OutOfOrderSequenceException,
)
from brokers.log.producer_state import INT32_MAX, ProducerStateManager, increment_sequence
from brokers.protocol.chunks import FileSlice as ProtocolFileSlice

PID = 4242


def producer_batch(sequence: int, count: int = 3, *, producer_id: int = PID, epoch: int = 0,
                   value_bytes: int = 20) -> bytearray:
    return rec.build_batch(make_records(count, sequence, value_bytes=value_bytes), 0, 0,
                           producer_id=producer_id, producer_epoch=epoch,
                           base_sequence=sequence)


def stored_batches(log: PartitionLog) -> list[tuple[int, int, int, int]]:
    """(base offset, last offset, producer id, base sequence) of every batch in the log."""
    return [(base, last, pid, seq) for segment in log.segments
            for base, last, _, pid, _, seq in segment.iter_producer_headers()]


def test_a_retried_batch_answers_its_first_offsets_and_is_stored_once(make_log) -> None:
    log = make_log()
    first = log.append_batch(producer_batch(0), 0)
    second = log.append_batch(producer_batch(3), 0)
    retry = log.append_batch(producer_batch(0), 0)
    assert (first.base_offset, second.base_offset) == (0, 3)
    assert retry.is_duplicate and (retry.base_offset, retry.last_offset) == (0, 2)
    assert retry.records_count == 0 and log.log_end_offset == 6
    assert [(base, seq) for base, _, _, seq in stored_batches(log)] == [(0, 0), (3, 3)]


def test_a_sequence_gap_is_out_of_order_and_appends_nothing(make_log) -> None:
    log = make_log()
    log.append_batch(producer_batch(0), 0)
    with pytest.raises(OutOfOrderSequenceException) as raised:
        log.append_batch(producer_batch(5), 0)
    assert raised.value.error_code == 45
    assert log.log_end_offset == 3
    assert log.append_batch(producer_batch(3), 0).base_offset == 3  # the gap-free next one


def test_a_retry_older_than_the_last_five_batches_is_out_of_order(make_log) -> None:
    log = make_log()
    for n in range(6):
        log.append_batch(producer_batch(3 * n), 0)
    assert log.append_batch(producer_batch(3), 0).is_duplicate  # second of six: kept
    with pytest.raises(OutOfOrderSequenceException):
        log.append_batch(producer_batch(0), 0)  # first of six: forgotten
    assert log.log_end_offset == 18


def test_an_older_epoch_is_fenced_and_a_newer_one_restarts_at_sequence_zero(make_log) -> None:
    log = make_log()
    log.append_batch(producer_batch(0, epoch=1), 0)
    with pytest.raises(InvalidProducerEpochException) as raised:
        log.append_batch(producer_batch(3, epoch=0), 0)
    assert raised.value.error_code == 47
    with pytest.raises(OutOfOrderSequenceException):
        log.append_batch(producer_batch(3, epoch=2), 0)
    assert log.append_batch(producer_batch(0, epoch=2), 0).base_offset == 3
    # The new epoch's history replaced the old one: the epoch-1 batch is no duplicate now.
    with pytest.raises(InvalidProducerEpochException):
        log.append_batch(producer_batch(0, epoch=1), 0)


def test_an_unknown_producer_is_accepted_at_any_sequence_as_kafka_does_since_kip_360(
    make_log,
) -> None:
    log = make_log()
    assert log.append_batch(producer_batch(77), 0).base_offset == 0
    assert log.append_batch(producer_batch(80), 0).base_offset == 3


def test_an_idempotent_batch_without_a_sequence_is_invalid(make_log) -> None:
    log = make_log()
    with pytest.raises(InvalidRecordException):
        log.append_batch(producer_batch(-1), 0)


def test_sequence_numbers_wrap_at_int32_max(make_log) -> None:
    log = make_log()
    assert increment_sequence(INT32_MAX - 1, 2) == 0
    log.append_batch(producer_batch(INT32_MAX - 1, count=3), 0)  # INT32_MAX-1, MAX, 0
    assert log.append_batch(producer_batch(INT32_MAX - 1, count=3), 0).is_duplicate
    with pytest.raises(OutOfOrderSequenceException):
        log.append_batch(producer_batch(0), 0)
    assert log.append_batch(producer_batch(1), 0).base_offset == 3
    log.append_batch(producer_batch(4, count=INT32_MAX % 3 or 3), 0)  # still in sequence


def test_producers_are_independent_and_batches_without_producer_skip_the_checks(
    make_log,
) -> None:
    log = make_log()
    log.append_batch(producer_batch(0, producer_id=1), 0)
    log.append_batch(producer_batch(0, producer_id=2), 0)
    log.append_batch(rec.build_batch(make_records(2)), 0)
    log.append_batch(rec.build_batch(make_records(2)), 0)  # same bytes, no producer: stored
    assert log.append_batch(producer_batch(0, producer_id=2), 0).base_offset == 3
    assert log.log_end_offset == 10
    assert log.producer_state.producer_ids == [1, 2]


def test_several_batches_of_one_producer_in_one_append_are_checked_in_order(make_log) -> None:
    log = make_log()
    log.append_batch(producer_batch(0) + producer_batch(3), 0)
    assert log.append_batch(producer_batch(3), 0).base_offset == 3  # the second: a duplicate
    with pytest.raises(OutOfOrderSequenceException):
        log.append_batch(producer_batch(6) + producer_batch(10), 0)
    assert log.log_end_offset == 6  # nothing of the refused append was written


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.just(None), st.integers(0, 4)), min_size=1, max_size=40),
       st.integers(1, 4))
def test_any_interleaving_of_retries_of_the_last_five_batches_is_stored_exactly_once(
    tmp_path_factory, actions: list[int | None], count: int
) -> None:
    """None sends the next batch; k retries the k-th newest of those sent (if it exists)."""
    directory = tmp_path_factory.mktemp("producer") / "topic-0"
    log = PartitionLog(directory, LogConfig(segment_bytes=4096, index_interval_bytes=256))
    try:
        sent: list[tuple[int, int]] = []  # (sequence, base offset answered first)
        for action in actions:
            if action is None:
                sequence = len(sent) * count
                info = log.append_batch(producer_batch(sequence, count), 0)
                assert not info.is_duplicate
                sent.append((sequence, info.base_offset))
            elif action < len(sent):
                sequence, base_offset = sent[-1 - action]
                info = log.append_batch(producer_batch(sequence, count), 0)
                assert info.is_duplicate and info.base_offset == base_offset
        stored = stored_batches(log)
        assert [seq for _, _, _, seq in stored] == [seq for seq, _ in sent]
        assert [base for base, _, _, _ in stored] == [n * count for n in range(len(sent))]
        assert log.log_end_offset == len(sent) * count  # offsets dense
    finally:
        log.close()


# --- recovery ------------------------------------------------------------------------------


def test_producer_state_is_rebuilt_on_open_from_batch_headers(make_log) -> None:
    log = make_log()
    for n in range(40):  # many segments of 4 KB
        log.append_batch(producer_batch(3 * n, producer_id=1), 0)
        log.append_batch(producer_batch(n, count=1, producer_id=2, epoch=3), 0)
    assert len(log.segments) >= 3
    log.close()
    again = make_log()
    assert again.producer_state.producer_ids == [1, 2]
    assert again.producer_state.entry(2).producer_epoch == 3
    retry = again.append_batch(producer_batch(3 * 39, producer_id=1), 0)
    assert retry.is_duplicate and retry.base_offset == log.log_end_offset - 4
    with pytest.raises(OutOfOrderSequenceException):
        again.append_batch(producer_batch(3 * 41, producer_id=1), 0)
    with pytest.raises(InvalidProducerEpochException):
        again.append_batch(producer_batch(40, count=1, producer_id=2, epoch=2), 0)
    assert again.append_batch(producer_batch(40, count=1, producer_id=2, epoch=3), 0)


def test_producer_state_survives_an_unclean_shutdown(make_log) -> None:
    log = make_log()
    log.append_batch(producer_batch(0), 0)
    log.append_batch(producer_batch(3), 0)
    # no close: recovery re-checks the active segment, then producer state is rebuilt
    again = make_log()
    assert again.append_batch(producer_batch(3), 0).base_offset == 3
    assert again.log_end_offset == 6


def test_truncation_forgets_the_dropped_batches_of_a_producer(make_log) -> None:
    log = make_log()
    log.append_batch(producer_batch(0, producer_id=1), 0)  # offsets 0-2
    log.append_batch(producer_batch(3, producer_id=1), 0)  # 3-5
    log.append_batch(producer_batch(0, producer_id=2), 0)  # 6-8
    log.truncate_to(3)
    assert log.producer_state.producer_ids == [1]  # producer 2 had nothing left
    again = log.append_batch(producer_batch(3, producer_id=1), 0)  # no longer a duplicate
    assert not again.is_duplicate and again.base_offset == 3
    log.truncate_fully_and_start_at(100)
    assert len(log.producer_state) == 0


def test_retention_forgets_producers_whose_batches_were_all_deleted(make_log, clock) -> None:
    log = make_log(segment_bytes=1024, retention_ms=1000)
    log.append_batch(producer_batch(0, producer_id=1), 0)  # in the first segment only
    for n in range(20):
        log.append_batch(producer_batch(3 * n, producer_id=2, value_bytes=60), 0)
    assert len(log.segments) > 2
    clock.now_ms += 10_000  # every closed segment is past retention.ms
    assert log.delete_old_segments() > 0
    assert log.producer_state.producer_ids == [2]  # its newest batch is in the active segment
    clock.now_ms += 24 * 3600 * 1000  # producer.id.expiration.ms of silence
    log.delete_old_segments()
    assert len(log.producer_state) == 0


def test_a_followers_append_records_producer_state(make_log, tmp_path, clock) -> None:
    leader = make_log()
    leader.append_batch(producer_batch(0), 0)
    leader.append_batch(producer_batch(3), 0)
    follower = PartitionLog(tmp_path / "follower-0", LogConfig(), clock=clock)
    try:
        follower.append_as_follower(leader.read(0, 1 << 20).read_bytes())
        assert follower.append_batch(producer_batch(3), 0).is_duplicate
    finally:
        follower.close()


def test_load_skips_segments_older_than_the_producer_expiration(tmp_path) -> None:
    class FakeSegment:
        def __init__(self, base: int, max_timestamp: int, headers: list) -> None:
            self.base_offset, self.next_offset = base, base + 10
            self.max_timestamp = max_timestamp
            self.headers = headers
            self.scanned = False

        def iter_producer_headers(self, position: int = 0):
            self.scanned = True
            return iter(self.headers)

    day = 24 * 3600 * 1000
    old = FakeSegment(0, 1_000, [(0, 9, 1_000, 1, 0, 0)])
    new = FakeSegment(10, 5 * day, [(10, 19, 5 * day, 2, 0, 0)])
    state = ProducerStateManager()
    assert state.load([old, new], 0, 5 * day + 1) == 1
    assert not old.scanned and state.producer_ids == [2]


# --- reading headers (3a) and fds in flight (3b) -------------------------------------------


def test_headers_of_large_and_small_batches_are_all_found(make_log) -> None:
    log = make_log(segment_bytes=16 << 20, max_message_bytes=4 << 20)
    sizes = [1, 3000, 2, 1, 700, 1, 1, 2000, 5]
    for i, n in enumerate(sizes):
        log.append_batch(rec.build_batch(make_records(n, value_bytes=500), 0, 0), 0)
        assert i + 1 == len(list(log.segments[-1].iter_headers(0)))
    offsets = [(base, last) for _, _, base, last, _ in log.segments[-1].iter_headers(0)]
    expected, start = [], 0
    for n in sizes:
        expected.append((start, start + n - 1))
        start += n
    assert offsets == expected
    piece = log.read(expected[3][0], 1)  # min one batch
    assert (piece.first_offset, piece.last_offset) == expected[3]


def test_closing_or_deleting_a_log_keeps_the_fd_of_a_slice_in_flight(tmp_path) -> None:
    log = PartitionLog(tmp_path / "topic-0", LogConfig())
    log.append_batch(producer_batch(0, count=50), 0)
    piece = log.read(0, 1 << 20)
    in_flight = ProtocolFileSlice(piece.fd, piece.position, piece.length, owner=piece.segment)
    expected = piece.read_bytes()
    fd = piece.fd
    stat = os.fstat(fd)
    identity = (stat.st_dev, stat.st_ino)
    segment = weakref.ref(piece.segment)
    log.close()
    log.delete()
    del piece
    # Files opened now would take a freed fd number; the slice must still read its own bytes.
    others = [os.open(os.devnull, os.O_RDONLY) for _ in range(8)]
    try:
        assert fd not in others
        assert in_flight.read() == expected
        assert b.INT64.unpack_from(in_flight.read(), 0)[0] == 0
    finally:
        for other in others:
            os.close(other)
    del in_flight, log
    gc.collect()
    assert segment() is None
    # The finalizer closed the fd once nothing held the segment. Another thread may already
    # have been given the same fd number, so check it no longer names the segment's file.
    try:
        stat = os.fstat(fd)
    except OSError:
        return
    assert (stat.st_dev, stat.st_ino) != identity, "the segment's fd is still open"
