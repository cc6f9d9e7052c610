"""Record bodies: a batch of records as JSON, made once per format for every subscriber.

A tail hands each batch of new records of a partition to all its subscribers. The first one
that wants them in a (key format, value format) pays for ``record_answer`` and orjson; the
others reuse those bodies. A subscriber that takes the whole batch (no key filter, no gap)
takes its runs: the bodies comma-joined into pieces that each fit one ``records`` frame, so its
cost per batch does not grow with the number of records.
"""

from dataclasses import dataclass

import orjson

from brokers.api.record_format import record_answer
from brokers.api.wire import FetchedRecord
from brokers.live.protocol import MAX_FRAME_BYTES, MAX_FRAME_RECORDS


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive record bodies joined by commas: ``count`` records, offsets first to last."""

    first_offset: int
    last_offset: int
    count: int
    data: bytes


class FormattedRecords:
    """One batch in one format pair: each record's body, and the batch as frame-sized runs."""

    __slots__ = (
        "_bodies", "_runs", "key_format", "max_bytes", "max_records", "records", "value_format",
    )

    def __init__(self, records: list[FetchedRecord], key_format: str, value_format: str,
                 max_records: int = MAX_FRAME_RECORDS, max_bytes: int = MAX_FRAME_BYTES):
        self.records = records
        self.key_format = key_format
        self.value_format = value_format
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._bodies: list[bytes] | None = None
        self._runs: list[Run] | None = None

    def bodies(self) -> list[bytes]:
        """Every record's JSON body, in order (made on first use)."""
        if self._bodies is None:
            key_format, value_format, dumps = self.key_format, self.value_format, orjson.dumps
            self._bodies = [
                dumps(record_answer(record, key_format, value_format)) for record in self.records
            ]
        return self._bodies

    def runs(self) -> list[Run]:
        """The bodies joined into runs of at most ``max_records`` records and ``max_bytes``.

        A record larger than ``max_bytes`` alone is a run of its own.
        """
        if self._runs is None:
            self._runs = _runs(self.records, self.bodies(), self.max_records, self.max_bytes)
        return self._runs


def _runs(records: list[FetchedRecord], bodies: list[bytes], max_records: int, max_bytes: int
          ) -> list[Run]:
    runs: list[Run] = []
    start = size = 0
    for index, body in enumerate(bodies):
        count = index - start
        if count and (count >= max_records or size + len(body) + 1 > max_bytes):
            runs.append(Run(records[start].offset, records[index - 1].offset, count,
                            b",".join(bodies[start:index])))
            start, size = index, 0
        size += len(body) + 1
    if start < len(bodies):
        runs.append(Run(records[start].offset, records[-1].offset, len(bodies) - start,
                        b",".join(bodies[start:])))
    return runs


class SharedRecords:
    """A batch of one partition's records as offered to every subscriber, formatted lazily."""

    __slots__ = ("_formatted", "max_bytes", "max_records", "records")

    def __init__(self, records: list[FetchedRecord], max_records: int = MAX_FRAME_RECORDS,
                 max_bytes: int = MAX_FRAME_BYTES):
        self.records = records
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._formatted: dict[tuple[str, str], FormattedRecords] = {}

    def formatted(self, key_format: str, value_format: str) -> FormattedRecords:
        """The batch in these formats; made once, whoever asks first."""
        found = self._formatted.get((key_format, value_format))
        if found is None:
            found = self._formatted[key_format, value_format] = FormattedRecords(
                self.records, key_format, value_format, self.max_records, self.max_bytes
            )
        return found
