"""The partition log: Kafka's on-disk replica format (segments of RecordBatch v2), pure Python.

Nothing here imports Django or Celery. The entry point is :class:`PartitionLog`; the other
modules each own one piece of the format (see their first lines).
"""

from brokers.log.config import LogConfig
from brokers.log.errors import (
    CorruptRecordException,
    InvalidRecordException,
    KafkaStorageException,
    LogError,
    OffsetOutOfRangeException,
    RecordBatchTooLargeException,
    RecordTooLargeException,
    UnsupportedCompressionTypeException,
)
from brokers.log.partition import AppendInfo, FileSlice, PartitionLog, TimestampOffset
from brokers.log.records import Record

__all__ = [
    "AppendInfo",
    "CorruptRecordException",
    "FileSlice",
    "InvalidRecordException",
    "KafkaStorageException",
    "LogConfig",
    "LogError",
    "OffsetOutOfRangeException",
    "PartitionLog",
    "Record",
    "RecordBatchTooLargeException",
    "RecordTooLargeException",
    "TimestampOffset",
    "UnsupportedCompressionTypeException",
]
