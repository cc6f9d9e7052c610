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


class OutOfOrderSequenceException(LogError):
    """An idempotent producer's batch does not continue its last sequence number (KIP-98)."""

    error_code = 45


class InvalidProducerEpochException(LogError):
    """An idempotent producer's batch carries an epoch older than the partition has seen.

    Kafka 2.7+ answers INVALID_PRODUCER_EPOCH (KIP-588) where it used to answer PRODUCER_FENCED.
    """

    error_code = 47


class UnknownProducerIdException(LogError):
    """The partition has no state for the producer id (Kafka before 2.5; KIP-360 accepts such a
    batch instead, and so does this log: defined for completeness of the codes)."""

    error_code = 59
