"""The log's exceptions, one per Kafka error code, so the protocol layer can answer with it."""


class LogError(Exception):
    """Base of the log's errors; ``error_code`` is Kafka's error code for the response."""

    error_code = -1  # UNKNOWN_SERVER_ERROR


class OffsetOutOfRangeException(LogError):
    """The offset is below the log start offset or above the log end offset."""

    error_code = 1


class CorruptRecordException(LogError):
    """A batch fails its CRC, is truncated, or its length or magic is wrong."""

    error_code = 2


class RecordTooLargeException(LogError):
    """A batch is larger than the topic's ``max.message.bytes``."""

    error_code = 10


class RecordBatchTooLargeException(LogError):
    """The records set is larger than a whole segment (``segment.bytes``)."""

    error_code = 18


class KafkaStorageException(LogError):
    """The log's files cannot be read or written (the log is offline)."""

    error_code = 56


class UnsupportedCompressionTypeException(LogError):
    """The batch names a compression codec Kafka does not have."""

    error_code = 76


class InvalidRecordException(LogError):
    """The batch is well formed but breaks a rule (record count, offset range, key, ...)."""

    error_code = 87
