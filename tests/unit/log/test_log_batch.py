"""RecordBatch v2: build, decode, validate, compression codecs."""

import struct

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from log_test_support import make_batch

from brokers.log import (
    CorruptRecordException,
    InvalidRecordException,
    Record,
    RecordTooLargeException,
    UnsupportedCompressionTypeException,
    compression,
)
from brokers.log import batch as b
from brokers.log import records as rec

headers_st = st.lists(st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=8)),
                      max_size=3)
record_st = st.builds(Record, key=st.none() | st.binary(max_size=30),
                      value=st.none() | st.binary(max_size=300), headers=headers_st,
                      timestamp=st.integers(0, 2**41))


@settings(max_examples=150, deadline=None)
@given(st.lists(record_st, min_size=1, max_size=20), st.sampled_from(range(5)),
       st.integers(0, 2**40))
def test_built_batch_decodes_to_the_same_records(records, codec, base_offset):
    data = rec.build_batch(records, base_offset, codec)
    assert b.validate_batches(memoryview(data), 1 << 30)[0].records_count == len(records)
    decoded = rec.decode_batch(data)
    assert [r.offset for r in decoded] == list(range(base_offset, base_offset + len(records)))
    for original, got in zip(records, decoded, strict=True):
        assert (got.key, got.value, got.headers, got.timestamp) == (
            original.key, original.value, original.headers, original.timestamp)


@given(st.integers(-(2**63), 2**63 - 1))
def test_varint_round_trips_signed_64_bit(value):
    out = bytearray()
    rec._write_varint(out, value)
    assert rec._read_varint(bytes(out), 0) == (value, len(out))


def test_validate_rejects_a_bad_crc_as_corrupt_record_code_2():
    data = make_batch(3)
    data[-1] ^= 0xFF
    with pytest.raises(CorruptRecordException) as caught:
        b.validate_batches(memoryview(data), 1 << 20)
    assert caught.value.error_code == 2


def test_validate_rejects_magic_other_than_2():
    data = make_batch(3)
    data[b.POS_MAGIC] = 1
    with pytest.raises(CorruptRecordException):
        b.validate_batches(memoryview(data), 1 << 20)


def test_validate_rejects_a_length_past_the_buffer():
    data = make_batch(3)
    with pytest.raises(CorruptRecordException):
        b.validate_batches(memoryview(data[:-1]), 1 << 20)
    struct.pack_into(">i", data, 8, len(data))
    with pytest.raises(CorruptRecordException):
        b.validate_batches(memoryview(data), 1 << 20)


def test_validate_rejects_batches_over_max_message_bytes_with_code_10():
    data = make_batch(3)
    with pytest.raises(RecordTooLargeException) as caught:
        b.validate_batches(memoryview(data), len(data) - 1)
    assert caught.value.error_code == 10
    assert b.validate_batches(memoryview(data), len(data))


def _recrc(data: bytearray) -> bytearray:
    b.CRC.pack_into(data, b.POS_CRC, b.crc_of(data))
    return data


def test_validate_rejects_records_count_disagreeing_with_last_offset_delta_code_87():
    data = make_batch(3)
    struct.pack_into(">i", data, b.POS_LAST_OFFSET_DELTA, 5)
    with pytest.raises(InvalidRecordException) as caught:
        b.validate_batches(memoryview(_recrc(data)), 1 << 20)
    assert caught.value.error_code == 87
    struct.pack_into(">i", data, b.POS_LAST_OFFSET_DELTA, -1)
    struct.pack_into(">i", data, b.POS_RECORDS_COUNT, 0)
    with pytest.raises(InvalidRecordException):
        b.validate_batches(memoryview(_recrc(data)), 1 << 20)


def test_validate_rejects_unknown_codec_with_code_76():
    data = make_batch(2)
    struct.pack_into(">h", data, b.POS_ATTRIBUTES, 5)
    with pytest.raises(UnsupportedCompressionTypeException) as caught:
        b.validate_batches(memoryview(_recrc(data)), 1 << 20)
    assert caught.value.error_code == 76


def test_validate_accepts_several_concatenated_batches():
    data = make_batch(2) + make_batch(3) + make_batch(1)
    infos = b.validate_batches(memoryview(data), 1 << 20)
    assert [i.records_count for i in infos] == [2, 3, 1]
    assert sum(i.size for i in infos) == len(data)


def test_snappy_decodes_both_xerial_framed_and_raw():
    payload = bytes(range(256)) * 300
    raw = bytes(cramjam.snappy.compress_raw(payload))
    framed = bytearray(b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1))
    for start in range(0, len(payload), 32 * 1024):  # xerial's 32 KiB blocks
        block = bytes(cramjam.snappy.compress_raw(payload[start : start + 32 * 1024]))
        framed += struct.pack(">i", len(block)) + block
    assert bytes(compression.decompress(compression.SNAPPY, raw)) == payload
    assert bytes(compression.decompress(compression.SNAPPY, bytes(framed))) == payload


def test_garbage_compressed_data_is_a_corrupt_record():
    with pytest.raises(CorruptRecordException):
        compression.decompress(compression.ZSTD, b"not zstd at all")


def test_log_append_time_batch_reports_max_timestamp_for_every_record():
    data = make_batch(3)
    struct.pack_into(">h", data, b.POS_ATTRIBUTES, b.TIMESTAMP_TYPE_BIT)
    b.INT64.pack_into(data, b.POS_MAX_TIMESTAMP, 42)
    records = rec.decode_batch(_recrc(data))
    assert {(r.timestamp, r.timestamp_type) for r in records} == {(42, b.LOG_APPEND_TIME)}
