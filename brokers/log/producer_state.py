"""Idempotent producers' state in one partition (Kafka's ProducerStateManager, KIP-98).

Per producer id the partition keeps the producer's epoch and its last five batches (first and
last sequence, first and last offset, max timestamp): enough to answer a retried batch with the
offsets its first copy got instead of appending it twice, and to refuse a batch that skips
sequence numbers or comes from a fenced (older) epoch. Kafka's rules, as of 3.x:

- an older epoch → INVALID_PRODUCER_EPOCH (47; KIP-588 replaced PRODUCER_FENCED for Produce);
- a newer epoch must start at sequence 0 (the producer reset its sequences), else
  OUT_OF_ORDER_SEQUENCE_NUMBER (45);
- the same epoch must continue at last sequence + 1 (wrapping from int32 max to 0), else 45;
- a producer the partition has no state for is accepted at any sequence (KIP-360: its state may
  have gone with retention; Kafka before 2.5 answered UNKNOWN_PRODUCER_ID here).

Only batch headers are read. State is rebuilt on open by scanning the batch headers of the
segments that can still hold a live producer (see ``load``), and follows truncation and
retention. Producers idle longer than ``producer.id.expiration.ms`` (Kafka's default: one day)
are forgotten.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

from brokers.log.errors import InvalidProducerEpochException, OutOfOrderSequenceException

NUM_BATCHES_TO_RETAIN = 5  # Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN; max.in.flight <= 5
PRODUCER_ID_EXPIRATION_MS = 24 * 60 * 60 * 1000  # producer.id.expiration.ms
INT32_MAX = 2**31 - 1
NO_PRODUCER_ID = -1


def increment_sequence(sequence: int, increment: int) -> int:
    """``sequence + increment`` wrapping past int32 max to 0 (DefaultRecordBatch's rule)."""
    if sequence > INT32_MAX - increment:
        return increment - (INT32_MAX - sequence) - 1
    return sequence + increment


def is_in_sequence(last_sequence: int, next_sequence: int) -> bool:
    return next_sequence == last_sequence + 1 or (next_sequence == 0 and last_sequence == INT32_MAX)


class BatchMetadata(NamedTuple):
    """One appended batch of a producer, as a retry of it must be answered."""

    first_sequence: int
    last_sequence: int
    first_offset: int
    last_offset: int
    max_timestamp: int


class ProducerEntry:
    """A producer's epoch and its last batches, oldest first."""

    __slots__ = ("batches", "producer_epoch")

    def __init__(self, producer_epoch: int, batches: Iterable[BatchMetadata] = ()) -> None:
        self.producer_epoch = producer_epoch
        self.batches: deque[BatchMetadata] = deque(batches, maxlen=NUM_BATCHES_TO_RETAIN)

    def copy(self) -> ProducerEntry:
        return ProducerEntry(self.producer_epoch, self.batches)

    @property
    def last_sequence(self) -> int:
        return self.batches[-1].last_sequence

    @property
    def last_offset(self) -> int:
        return self.batches[-1].last_offset

    @property
    def last_timestamp(self) -> int:
        return self.batches[-1].max_timestamp

    def find_duplicate(self, producer_epoch: int, first_sequence: int, last_sequence: int
                       ) -> BatchMetadata | None:
        if producer_epoch != self.producer_epoch:
            return None
        for batch in self.batches:
            if batch.first_sequence == first_sequence and batch.last_sequence == last_sequence:
                return batch
        return None

    def add(self, producer_epoch: int, batch: BatchMetadata) -> None:
        if producer_epoch != self.producer_epoch:  # a new epoch starts a new history
            self.producer_epoch = producer_epoch
            self.batches.clear()
        self.batches.append(batch)

    def __repr__(self) -> str:
        return f"ProducerEntry(epoch={self.producer_epoch}, batches={list(self.batches)})"


class HeaderSource(Protocol):
    """What ``load`` reads: a segment's batch headers (brokers.log.segment.Segment)."""

    base_offset: int
    next_offset: int
    max_timestamp: int

    def iter_producer_headers(self, position: int = 0
                              ) -> Iterable[tuple[int, int, int, int, int, int]]: ...


class ProducerAppend:
    """The producer updates of one append, checked batch by batch and applied only once the
    append's bytes are written (``ProducerStateManager.commit``)."""

    __slots__ = ("_producers", "updated")

    def __init__(self, producers: dict[int, ProducerEntry]) -> None:
        self._producers = producers
        self.updated: dict[int, ProducerEntry] = {}

    def check(self, producer_id: int, producer_epoch: int, first_sequence: int,
              last_offset_delta: int, first_offset: int, max_timestamp: int
              ) -> BatchMetadata | None:
        """Check one batch; the first copy's metadata when it is a retried duplicate.

        Raises InvalidProducerEpochException or OutOfOrderSequenceException.
        """
        last_sequence = increment_sequence(first_sequence, last_offset_delta)
        entry = self.updated.get(producer_id) or self._producers.get(producer_id)
        if entry is not None:
            if producer_epoch < entry.producer_epoch:
                raise InvalidProducerEpochException(
                    f"producer {producer_id}: epoch {producer_epoch} is older than "
                    f"{entry.producer_epoch}")
            duplicate = entry.find_duplicate(producer_epoch, first_sequence, last_sequence)
            if duplicate is not None:
                return duplicate
            if producer_epoch > entry.producer_epoch:
                if first_sequence != 0:
                    raise OutOfOrderSequenceException(
                        f"producer {producer_id}: new epoch {producer_epoch} starts at "
                        f"sequence {first_sequence}, not 0")
            elif not is_in_sequence(entry.last_sequence, first_sequence):
                raise OutOfOrderSequenceException(
                    f"producer {producer_id}: sequence {first_sequence} does not follow "
                    f"{entry.last_sequence}")
        updated = self.updated.get(producer_id)
        if updated is None:
            updated = entry.copy() if entry is not None else ProducerEntry(producer_epoch)
            self.updated[producer_id] = updated
        updated.add(producer_epoch, BatchMetadata(
            first_sequence, last_sequence, first_offset, first_offset + last_offset_delta,
            max_timestamp))
        return None


class ProducerStateManager:
    """Every producer with state in one partition; the log's writer calls it under its lock."""

    def __init__(self, expiration_ms: int = PRODUCER_ID_EXPIRATION_MS) -> None:
        self.expiration_ms = expiration_ms
        self._producers: dict[int, ProducerEntry] = {}

    def __len__(self) -> int:
        return len(self._producers)

    def __contains__(self, producer_id: int) -> bool:
        return producer_id in self._producers

    def entry(self, producer_id: int) -> ProducerEntry | None:
        return self._producers.get(producer_id)

    @property
    def producer_ids(self) -> list[int]:
        return sorted(self._producers)

    def begin_append(self) -> ProducerAppend:
        return ProducerAppend(self._producers)

    def commit(self, append: ProducerAppend) -> None:
        self._producers.update(append.updated)

    def clear(self) -> None:
        self._producers.clear()

    def remove_before(self, log_start_offset: int) -> None:
        """Forget producers whose every batch lies below the log start offset (retention,
        DeleteRecords): Kafka's truncateHead."""
        gone = [pid for pid, e in self._producers.items() if e.last_offset < log_start_offset]
        for producer_id in gone:
            del self._producers[producer_id]

    def remove_expired(self, now_ms: int) -> None:
        """Forget producers silent for ``expiration_ms`` (Kafka's removeExpiredProducers)."""
        horizon = now_ms - self.expiration_ms
        gone = [pid for pid, e in self._producers.items() if e.last_timestamp < horizon]
        for producer_id in gone:
            del self._producers[producer_id]

    def load(self, segments: Sequence[HeaderSource], log_start_offset: int, now_ms: int) -> int:
        """Rebuild from the segments' batch headers; returns how many headers were read.

        A segment whose newest timestamp is past ``expiration_ms`` holds only producers that
        would have expired, so the scan starts at the first segment still inside that window
        (nothing else bounds it: Kafka keeps state for every unexpired producer).
        """
        self._producers.clear()
        horizon = now_ms - self.expiration_ms
        first = len(segments)
        for i, segment in enumerate(segments):
            if segment.next_offset > log_start_offset and segment.max_timestamp >= horizon:
                first = i
                break
        headers = 0
        for segment in segments[first:]:
            for base, last, max_ts, producer_id, producer_epoch, base_sequence in (
                    segment.iter_producer_headers()):
                headers += 1
                if producer_id < 0 or last < log_start_offset:
                    continue
                self.replay(producer_id, producer_epoch, base_sequence, base, last, max_ts)
        self.remove_expired(now_ms)
        return headers

    def replay(self, producer_id: int, producer_epoch: int, base_sequence: int,
                base_offset: int, last_offset: int, max_timestamp: int) -> None:
        """Record a batch already in the log as it is (no checks: a leader accepted it once):
        rebuilding on open, and a follower's appends."""
        entry = self._producers.get(producer_id)
        if entry is None:
            entry = self._producers[producer_id] = ProducerEntry(producer_epoch)
        elif producer_epoch < entry.producer_epoch:
            return
        last_sequence = increment_sequence(base_sequence, last_offset - base_offset)
        entry.add(producer_epoch, BatchMetadata(base_sequence, last_sequence, base_offset,
                                                last_offset, max_timestamp))
