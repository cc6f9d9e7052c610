"""One writer, many readers: a reader never sees a partial or corrupt batch."""

import threading

from log_test_support import all_batches, make_batch

from brokers.log import Record
from brokers.log import batch as b


def test_reader_threads_beside_a_writer_never_see_a_partial_batch(make_log):
    log = make_log(segment_bytes=20_000, index_interval_bytes=512)
    total_batches = 600
    done = threading.Event()
    failures: list[str] = []

    def reader() -> None:
        offset = 0
        while not (done.is_set() and offset >= log.log_end_offset):
            end = log.log_end_offset
            if offset >= end:
                continue
            piece = log.read(offset, 3000)
            data = piece.read_bytes()
            batches = all_batches(data)
            if sum(size for _, size, _, _ in batches) != len(data):
                failures.append(f"partial batch at {offset}")
                return
            try:
                b.validate_batches(memoryview(data), 1 << 30)
            except Exception as exc:
                failures.append(f"{offset}: {exc!r}")
                return
            if batches[0][2] > offset or batches[0][3] < offset:
                failures.append(f"slice for {offset} starts at {batches[0][2]}")
                return
            offset = batches[-1][3] + 1

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    for i in range(total_batches):
        log.append_batch(make_batch(1 + i % 5, value_bytes=40), 0)
    done.set()
    for thread in readers:
        thread.join(timeout=30)
    assert not failures
    assert not any(thread.is_alive() for thread in readers)
    assert len(log.segments) > 5


def test_compaction_on_another_thread_beside_the_writer_keeps_every_latest_value(make_log):
    log = make_log(segment_bytes=1500, cleanup_policy="compact")
    writes = 400
    done = threading.Event()
    errors: list[BaseException] = []

    def compact_repeatedly() -> None:
        try:
            while not done.is_set():
                log.compact()
        except BaseException as exc:  # reported below
            errors.append(exc)

    cleaner = threading.Thread(target=compact_repeatedly)
    cleaner.start()
    for i in range(writes):
        log.append_records([Record(key=b"k%d" % (i % 9), value=b"%d" % i)], 0)
    done.set()
    cleaner.join(timeout=30)
    assert not errors
    log.roll()
    log.compact()
    latest = {r.key: r.value for r in log.read_records(0, 10_000)}
    assert latest == {b"k%d" % k: b"%d" % max(i for i in range(writes) if i % 9 == k)
                      for k in range(9)}
    assert len(log.read_records(0, 10_000)) == 9
