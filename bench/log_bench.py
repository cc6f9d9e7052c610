"""Benchmark of the partition log (brokers/log): append, read, compaction, beside dd.

Run: .venv/bin/python bench/log_bench.py [--dir PATH] [--mb N] [--compact-mb N]

Append writes pre-built ~64 KB batches of 100 B records (so it times the append path, not
record building) into a log with Kafka's defaults (fsync at roll and close), and prints
``dd ... bs=64k conv=fdatasync`` into the same folder as its peer. Reads time raw fetch slices
(from the page cache) and decoded records; compaction times one pass over a log whose keys
repeat.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from brokers.log import LogConfig, PartitionLog, Record
from brokers.log import records as rec

MB = 1024 * 1024
RECORD_VALUE_BYTES = 100
BATCH_BYTES = 64 * 1024
DISTINCT_BATCHES = 16


def prebuilt_batches(key_space: int) -> tuple[list[bytearray], int]:
    """~64 KB batches of 100 B values; keys cycle through ``key_space`` keys."""
    per_batch = BATCH_BYTES // (RECORD_VALUE_BYTES + 18)
    batches = []
    for n in range(DISTINCT_BATCHES):
        records = [Record(key=b"key-%08d" % ((n * per_batch + i) % key_space),
                          value=bytes([97 + i % 26]) * RECORD_VALUE_BYTES)
                   for i in range(per_batch)]
        batches.append(rec.build_batch(records))
    return batches, per_batch


def fill(log: PartitionLog, batches: list[bytearray], total_bytes: int) -> tuple[int, int]:
    """Append batches round-robin until ``total_bytes``; (bytes, records) written."""
    written = records = 0
    i = 0
    while written < total_bytes:
        info = log.append_batch(batches[i % len(batches)], leader_epoch=0)
        written += info.valid_bytes
        records += info.records_count
        i += 1
    return written, records


def dd_rate(directory: str, mb: int) -> str:
    """dd's own report of a durable 64k-block write of ``mb`` MiB into ``directory``."""
    target = os.path.join(directory, "dd.bin")
    result = subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=64k", f"count={mb * 16}", "conv=fdatasync"],
        capture_output=True, text=True, check=True)
    os.remove(target)
    match = re.search(r"copied, ([\d.,]+) s, ([\d.,]+ \S+/s)", result.stderr)
    return match.group(2) if match else result.stderr.strip().splitlines()[-1]


def bench_append(directory: str, mb: int, batches: list[bytearray]) -> PartitionLog:
    log = PartitionLog(os.path.join(directory, "bench-0"), LogConfig())
    started = time.perf_counter()
    written, records = fill(log, batches, mb * MB)
    log.flush()  # fsync, as at roll/close: the number is durable
    elapsed = time.perf_counter() - started
    print(f"append   {written / MB / elapsed:8.0f} MB/s  {records / elapsed:12,.0f} records/s"
          f"  ({written / MB:.0f} MB in {elapsed:.2f} s, fsync at the end)")
    print(f"dd       {dd_rate(directory, mb):>13}  (bs=64k conv=fdatasync, same folder)")
    return log


def bench_read(log: PartitionLog) -> None:
    end = log.log_end_offset
    started = time.perf_counter()
    offset = total = 0
    while offset < end:
        piece = log.read(offset, MB)
        total += len(piece.read_bytes())
        offset = piece.last_offset + 1
    elapsed = time.perf_counter() - started
    print(f"read     {total / MB / elapsed:8.0f} MB/s  raw 1 MiB fetch slices (page cache)")
    started = time.perf_counter()
    offset = count = 0
    deadline = started + 3.0
    while offset < end and time.perf_counter() < deadline:
        records = log.read_records(offset, max_records=5000)
        count += len(records)
        offset = records[-1].offset + 1
    elapsed = time.perf_counter() - started
    print(f"decode   {count / elapsed:12,.0f} records/s  read_records ({count:,} records)")


def bench_compaction(directory: str, mb: int, batches: list[bytearray]) -> None:
    config = LogConfig(cleanup_policy="compact", segment_bytes=128 * MB)
    log = PartitionLog(os.path.join(directory, "compact-0"), config)
    fill(log, batches, mb * MB)
    log.roll()
    size = log.size_in_bytes
    stats = log.compact(now_ms=int(time.time() * 1000))
    print(f"compact  {stats.bytes_read / MB / stats.elapsed_s:8.0f} MB/s  "
          f"{size / MB:.0f} MB in {stats.elapsed_s:.2f} s: {stats.records_read:,} records, "
          f"{stats.records_removed:,} removed, {stats.bytes_written / MB:.1f} MB written")
    log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="folder to write in (default: a temporary one)")
    parser.add_argument("--mb", type=int, default=1024, help="MiB to append (default 1024)")
    parser.add_argument("--compact-mb", type=int, default=1024,
                        help="MiB of log to compact (default 1024)")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="log-bench-", dir=args.dir)
    try:
        batches, per_batch = prebuilt_batches(key_space=DISTINCT_BATCHES * 400)
        print(f"batches of {per_batch} records x {RECORD_VALUE_BYTES} B "
              f"({len(batches[0]) / 1024:.0f} KB), in {directory}")
        log = bench_append(directory, args.mb, batches)
        bench_read(log)
        log.close()
        shutil.rmtree(log.directory)
        bench_compaction(directory, args.compact_mb, batches)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
