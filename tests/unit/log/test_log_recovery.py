"""Recovery on open (torn and corrupt tails, lost indexes, interrupted swaps) and truncation."""

import os
import random
import shutil

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from log_test_support import make_batch

from brokers.log import LogConfig, PartitionLog
from brokers.log import batch as b

fixture_ok = settings(max_examples=40, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])
CONFIG = LogConfig(segment_bytes=1500, index_interval_bytes=200)


def crashed_log(directory, batches: int = 25) -> tuple[list[tuple[int, int]], list[bytes]]:
    """A log written and abandoned without close: (base, last) and bytes of each batch."""
    log = PartitionLog(directory, CONFIG)
    spans, stored = [], []
    for i in range(batches):
        info = log.append_batch(make_batch(1 + i % 4, start=i), i)
        spans.append((info.base_offset, info.last_offset))
        stored.append(log.read(info.base_offset, 1).read_bytes())
    return spans, stored


def served_batches(log: PartitionLog) -> list[bytes]:
    out = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        piece = log.read(offset, 1)
        if not piece.length:
            break
        data = piece.read_bytes()
        b.validate_batches(memoryview(data), 1 << 30)  # never a corrupt batch
        out.append(data)
        offset = piece.last_offset + 1
    return out


def test_recovery_cuts_the_last_batch_torn_at_every_byte(tmp_path):
    spans, stored = crashed_log(tmp_path / "src-0")
    log_files = sorted(f for f in os.listdir(tmp_path / "src-0") if f.endswith(".log"))
    active = tmp_path / "src-0" / log_files[-1]
    full = active.read_bytes()
    last_size = len(stored[-1])
    assert full.endswith(stored[-1])
    for cut in range(len(full) - last_size, len(full)):
        copy = tmp_path / f"cut{cut}" / "t-0"
        shutil.copytree(tmp_path / "src-0", copy)
        with open(copy / log_files[-1], "r+b") as file:
            file.truncate(cut)
        log = PartitionLog(copy, CONFIG)
        assert log.log_end_offset == spans[-1][0]
        assert served_batches(log) == [bytes(s[:8]) + bytes(s[8:]) for s in stored[:-1]]
        assert log.append_batch(make_batch(2), 0).base_offset == spans[-1][0]
        log.close()
        shutil.rmtree(copy.parent)


@fixture_ok
@given(st.integers(0, 2**32), st.integers(1, 3))
def test_recovery_after_bit_flips_serves_no_corrupt_batch_and_keeps_earlier_ones(
        tmp_path_factory, seed, flips):
    directory = tmp_path_factory.mktemp("flip") / "t-0"
    spans, stored = crashed_log(directory)
    rng = random.Random(seed)
    active = sorted(f for f in os.listdir(directory) if f.endswith(".log"))[-1]
    data = bytearray((directory / active).read_bytes())
    starts = []
    position = 0
    while position < len(data):
        starts.append(position)
        position += b.OFFSET_LENGTH.unpack_from(data, position)[1] + 12
    first_flipped = len(starts)
    for _ in range(flips):
        # baseOffset and partitionLeaderEpoch lie outside Kafka's CRC; flip what it covers.
        at = rng.randrange(len(data))
        batch_index = max(i for i, s in enumerate(starts) if s <= at)
        if at - starts[batch_index] < 16:
            at = starts[batch_index] + 16 + rng.randrange(5)
        data[at] ^= 1 << rng.randrange(8)
        first_flipped = min(first_flipped, batch_index)
    (directory / active).write_bytes(data)
    log = PartitionLog(directory, CONFIG)
    served = served_batches(log)
    kept_before = len(stored) - len(starts) + first_flipped
    assert served == stored[:kept_before]
    assert log.log_end_offset == spans[kept_before - 1][1] + 1 if kept_before else True
    log.close()


def test_missing_and_damaged_indexes_are_rebuilt(tmp_path):
    directory = tmp_path / "t-0"
    log = PartitionLog(directory, CONFIG)
    for i in range(40):
        log.append_batch(make_batch(2, start=i), 0)
    before = [(r.offset, r.key) for r in log.read_records(0, 1000)]
    log.close()
    index_files = sorted(f for f in os.listdir(directory) if f.endswith("index"))
    os.remove(directory / index_files[0])
    (directory / index_files[2]).write_bytes(b"\x00\x00\x00\x07\xff\xff\xff\xff")
    (directory / index_files[4]).write_bytes(b"garbage")
    again = PartitionLog(directory, CONFIG)
    assert [(r.offset, r.key) for r in again.read_records(0, 1000)] == before
    for offset in range(0, 80, 3):
        assert again.read(offset, 1).first_offset <= offset <= again.read(offset, 1).last_offset
    again.close()
    assert sorted(f for f in os.listdir(directory) if f.endswith("index")) == index_files


@fixture_ok
@given(st.lists(st.integers(1, 5), min_size=2, max_size=30), st.data())
def test_truncate_to_drops_everything_at_and_after_the_offset(tmp_path_factory, counts, data):
    directory = tmp_path_factory.mktemp("trunc") / "t-0"
    log = PartitionLog(directory, LogConfig(segment_bytes=600, index_interval_bytes=100))
    bases = []
    for count in counts:
        bases.append(log.append_batch(make_batch(count), 0).base_offset)
    target = data.draw(st.sampled_from(bases))
    log.truncate_to(target)
    assert log.log_end_offset == target
    assert [r.offset for r in log.read_records(0, 10_000)] == list(range(target))
    assert log.append_batch(make_batch(2), 0).base_offset == target
    log.close()
    again = PartitionLog(directory, LogConfig(segment_bytes=600))
    assert [r.offset for r in again.read_records(0, 10_000)] == list(range(target + 2))
    again.close()


def test_truncate_fully_and_start_at_empties_the_log(make_log):
    log = make_log()
    for _ in range(20):
        log.append_batch(make_batch(3), 0)
    log.truncate_fully_and_start_at(1000)
    assert (log.log_start_offset, log.log_end_offset, len(log.segments)) == (1000, 1000, 1)
    assert log.append_batch(make_batch(1), 0).base_offset == 1000
    log.close()
    again = make_log()
    assert (again.log_start_offset, again.log_end_offset) == (1000, 1001)
    assert [f for f in os.listdir(again.directory) if f.endswith(".log")] == [
        "00000000000000001000.log"]


def test_open_deletes_cleaned_files_and_completes_swaps(tmp_path):
    directory = tmp_path / "t-0"
    log = PartitionLog(directory, CONFIG)
    for i in range(30):
        log.append_batch(make_batch(2, start=i), 0)
    log.close()
    first = log.segments[0]
    swapped = bytes(make_batch(1))  # a one-batch segment at offset 0 replaces the first
    b.INT64.pack_into(bytearray(swapped), 0, 0)
    (directory / (os.path.basename(first.log_path) + ".swap")).write_bytes(swapped)
    (directory / "00000000000000000002.log.cleaned").write_bytes(b"half written")
    again = PartitionLog(directory, CONFIG)
    assert not [f for f in os.listdir(directory) if f.endswith((".swap", ".cleaned"))]
    records = again.read_records(0, 1000)
    assert records[0].offset == 0 and records[1].offset == first.next_offset
    again.close()
