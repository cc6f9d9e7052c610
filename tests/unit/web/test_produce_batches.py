"""A REST request's records as RecordBatches per partition, placed as Java's client places them.

No Django, no broker: the batches are read back with the log's own decoder.
"""

import pytest
from kafka.partitioner.default import murmur2

from brokers.api import produce_batches
from brokers.api.produce_batches import OutgoingRecord, build_partition_batches, key_hash
from brokers.log.records import decode_batch

PARTITIONS = 6


def java_partition(key: bytes) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def read_back(shares) -> dict[int, list[tuple[int, bytes | None, bytes | None]]]:
    """partition -> [(request position, key, value)] in batch order."""
    found = {}
    for share in shares:
        rows = found.setdefault(share.partition, [])
        for batch, positions in zip(share.batches, share.positions, strict=True):
            records = decode_batch(batch)
            assert len(records) == len(positions)
            rows.extend((p, r.key, r.value) for p, r in zip(positions, records, strict=True))
    return found


def test_keyed_records_land_where_javas_murmur2_puts_them_first_time_and_remembered():
    keys = [f"customer-{i}".encode() for i in range(50)] + [b"x" * 200]  # one too long to keep
    records = [OutgoingRecord(k, b"v%d" % i) for i, k in enumerate(keys * 2)]
    for _ in range(2):  # the second pass finds the short keys' hashes remembered
        found = read_back(build_partition_batches(records, PARTITIONS, 1 << 20, 0, now_ms=1))
        for partition, rows in found.items():
            for position, key, value in rows:
                assert java_partition(key) == partition
                assert (key, value) == (records[position].key, records[position].value)
        assert sorted(p for rows in found.values() for p, *_ in rows) == list(range(102))
    assert b"x" * 200 not in produce_batches._KEY_HASHES
    assert key_hash(b"customer-7") == murmur2(b"customer-7") & 0x7FFFFFFF


def test_null_keys_go_to_the_sticky_partition_and_explicit_partitions_are_kept():
    records = [OutgoingRecord(None, b"a"), OutgoingRecord(b"k", b"b", partition=5),
               OutgoingRecord(None, b"c")]
    found = read_back(build_partition_batches(records, PARTITIONS, 1 << 20, 2, now_ms=1))
    assert found == {2: [(0, None, b"a"), (2, None, b"c")], 5: [(1, b"k", b"b")]}


def test_a_share_over_max_batch_bytes_is_several_batches_in_request_order():
    records = [OutgoingRecord(None, bytes([i]) * 300, partition=0) for i in range(20)]
    (share,) = build_partition_batches(records, 1, 1000, 0, now_ms=1)
    assert len(share.batches) > 3
    assert all(len(batch) <= 1000 for batch in share.batches)
    assert [p for positions in share.positions for p in positions] == list(range(20))


def test_timestamps_and_headers_are_carried():
    records = [OutgoingRecord(b"k", b"v", headers=[("h", b"1")], timestamp_ms=42),
               OutgoingRecord(b"k", b"w")]
    (share,) = build_partition_batches(records, 1, 1 << 20, 0, now_ms=7)
    first, second = decode_batch(share.batches[0])
    assert (first.timestamp, first.headers) == (42, [("h", b"1")])
    assert (second.timestamp, second.headers) == (7, [])


def test_remembered_hashes_are_bounded(monkeypatch):
    monkeypatch.setattr(produce_batches, "_KEY_HASHES", {})
    monkeypatch.setattr(produce_batches, "_KEY_HASHES_MAX", 10)
    for i in range(25):
        key = b"k%d" % i
        assert key_hash(key) == murmur2(key) & 0x7FFFFFFF
        assert len(produce_batches._KEY_HASHES) <= 10


@pytest.mark.parametrize("count", [1, 999])
def test_every_record_is_in_exactly_one_batch(count):
    records = [OutgoingRecord(b"%d" % (i % 37), b"x" * 50) for i in range(count)]
    shares = build_partition_batches(records, PARTITIONS, 4096, 0, now_ms=1)
    positions = sorted(p for share in shares for batch in share.positions for p in batch)
    assert positions == list(range(count))
