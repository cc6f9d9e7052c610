"""Cross-checks with kafka-python's own RecordBatch v2 codec (kafka.record)."""

from pathlib import Path

import pytest
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder

from brokers.log import Record, compression
from brokers.log import records as rec

# The codecs kafka-python can use in this environment (snappy, lz4, zstd need extra packages).
KAFKA_PYTHON_CODECS = [compression.NONE, compression.GZIP]


def kafka_python_batch(codec: int, count: int, first_key: int = 0) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                        batch_size=1 << 20)
    for i in range(count):
        builder.append(i, timestamp=1_700_000_000_000 + i, key=b"k%d" % (first_key + i),
                       value=b"value-%d" % i * 10, headers=[("trace", b"%d" % i)])
    return bytes(builder.build())


@pytest.mark.parametrize("codec", KAFKA_PYTHON_CODECS)
def test_log_appends_and_decodes_batches_built_by_kafka_python(make_log, codec):
    log = make_log(segment_bytes=1 << 20)
    log.append_batch(kafka_python_batch(codec, 5), 0)
    info = log.append_batch(kafka_python_batch(codec, 7, first_key=5), 3)
    assert (info.base_offset, info.last_offset) == (5, 11)
    records = log.read_records(0, 100)
    assert [r.key for r in records] == [b"k%d" % i for i in range(12)]
    assert records[6].value == b"value-1" * 10 and records[6].headers == [("trace", b"1")]
    assert records[6].timestamp == 1_700_000_000_001


@pytest.mark.parametrize("codec", KAFKA_PYTHON_CODECS)
def test_log_appends_memory_records_builder_output(make_log, codec):
    builder = MemoryRecordsBuilder(magic=2, compression_type=codec, batch_size=1 << 20)
    for i in range(4):
        builder.append(timestamp=1_700_000_000_000, key=None, value=b"v%d" % i, headers=[])
    builder.close()
    log = make_log()
    log.append_batch(builder.buffer(), 0)
    assert [r.value for r in log.read_records(0)] == [b"v0", b"v1", b"v2", b"v3"]


@pytest.mark.parametrize("codec", KAFKA_PYTHON_CODECS)
def test_kafka_python_decodes_batches_we_build(codec):
    records = [Record(key=b"k%d" % i, value=None if i == 2 else b"v%d" % i,
                      headers=[("a", b"1"), ("b", None)], timestamp=1000 + i) for i in range(5)]
    data = bytes(rec.build_batch(records, base_offset=40, codec=codec))
    batch = DefaultRecordBatch(data)
    assert batch.validate_crc() and batch.base_offset == 40 and batch.compression_type == codec
    decoded = list(batch)
    assert [(r.offset, r.key, r.value, r.timestamp) for r in decoded] == [
        (40 + i, r.key, r.value, r.timestamp) for i, r in enumerate(records)]
    assert decoded[0].headers == [("a", b"1"), ("b", None)]


def test_kafka_python_reads_a_whole_segment_file_written_by_the_log(make_log):
    log = make_log(segment_bytes=1 << 20, message_timestamp_type="LogAppendTime")
    for i in range(20):
        log.append_records([Record(key=b"k%d" % i, value=b"x" * i)], leader_epoch=2,
                           compression_type="gzip" if i % 2 else "none")
    log.append_batch(kafka_python_batch(compression.GZIP, 3, first_key=20), 2)
    log.close()
    records = MemoryRecords(Path(log.segments[0].log_path).read_bytes())
    seen = []
    while (batch := records.next_batch()) is not None:
        assert batch.validate_crc() and batch.leader_epoch == 2
        assert batch.timestamp_type == 1  # LogAppendTime, as the log stamped it
        seen += [(r.offset, r.key) for r in batch]
    assert seen == [(i, b"k%d" % i) for i in range(23)]
