"""Records inside a v2 batch: Kafka's record encoding (zigzag varints), build and decode.

A record is ``length | attributes | timestampDelta | offsetDelta | key | value | headers``
(Kafka's DefaultRecord). Work per record happens only here: when a batch is built for the
REST and connector paths, or decoded for JSON, compaction and timestamp lookups.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from brokers.log import compression
from brokers.log.batch import (
    COMPRESSION_MASK,
    CONTROL_BIT,
    CREATE_TIME,
    HEADER,
    HEADER_BYTES,
    LOG_APPEND_TIME,
    POS_ATTRIBUTES,
    TIMESTAMP_TYPE_BIT,
    assemble_batch,
)
from brokers.log.errors import CorruptRecordException, InvalidRecordException


@dataclass(slots=True)
class Record:
    """One decoded record, Kafka's fields; ``headers`` is a list of (key, value) pairs."""

    offset: int = 0
    timestamp: int | None = None
    key: bytes | None = None
    value: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp_type: int = CREATE_TIME
    is_control: bool = False


def _write_varint(out: bytearray, value: int) -> None:
    zigzag = (value << 1) ^ (value >> 63)
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)


def _write_bytes(out: bytearray, data: bytes | None) -> None:
    if data is None:
        out.append(1)  # varint -1
    else:
        _write_varint(out, len(data))
        out += data


def encode_record(offset_delta: int, timestamp_delta: int, key: bytes | None,
                  value: bytes | None, headers: Iterable[tuple[str, bytes | None]]) -> bytearray:
    """One record's bytes, length prefix included (Kafka's DefaultRecord.writeTo)."""
    body = bytearray(b"\x00")  # attributes: unused
    _write_varint(body, timestamp_delta)
    _write_varint(body, offset_delta)
    _write_bytes(body, key)
    _write_bytes(body, value)
    headers = list(headers or ())
    _write_varint(body, len(headers))
    for header_key, header_value in headers:
        _write_bytes(body, header_key.encode())
        _write_bytes(body, header_value)
    out = bytearray()
    _write_varint(out, len(body))
    out += body
    return out


def build_batch(records: Iterable[Any], base_offset: int = 0, codec: int = compression.NONE,
                *, leader_epoch: int = -1, producer_id: int = -1, producer_epoch: int = -1,
                base_sequence: int = -1, now_ms: int | None = None) -> bytearray:
    """One v2 batch of ``records`` (objects with key, value, headers, timestamp).

    A record without a timestamp gets ``now_ms``. Offsets are ``base_offset`` onwards.
    """
    records = list(records)
    if not records:
        raise InvalidRecordException("a batch needs at least one record")
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    stamps = [now_ms if getattr(r, "timestamp", None) is None else r.timestamp for r in records]
    base_timestamp = stamps[0]
    body = bytearray()
    for delta, (record, stamp) in enumerate(zip(records, stamps, strict=True)):
        body += encode_record(delta, stamp - base_timestamp, record.key, record.value,
                              getattr(record, "headers", None) or ())
    return assemble_batch(body, len(records), base_offset, codec, base_timestamp,
                          max(stamps), len(records) - 1, leader_epoch=leader_epoch,
                          producer_id=producer_id, producer_epoch=producer_epoch,
                          base_sequence=base_sequence)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    byte = buf[pos]
    pos += 1
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos
    result = byte & 0x7F
    shift = 7
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise CorruptRecordException("varint longer than 10 bytes")


RawRecord = tuple[int, int, int, int, Any, Any, list]


def parse_records(body: bytes, count: int) -> list[RawRecord]:
    """(start, end, timestamp delta, offset delta, key, value, headers) of each record.

    ``body`` is the uncompressed records section; start/end bound the record's bytes (its
    length prefix included). Varints of one or two bytes are decoded inline, for speed.
    """
    read = _read_varint
    out: list[RawRecord] = []
    append = out.append
    pos = 0
    size = len(body)
    try:
        for _ in range(count):
            start = pos
            byte = body[pos]
            if byte < 0x80:
                length = (byte >> 1) ^ -(byte & 1)
                pos += 1
            elif body[pos + 1] < 0x80:
                raw = (byte & 0x7F) | (body[pos + 1] << 7)
                length = (raw >> 1) ^ -(raw & 1)
                pos += 2
            else:
                length, pos = read(body, pos)
            end = pos + length
            if length <= 0 or end > size:
                raise CorruptRecordException("record length runs past its batch")
            pos += 1  # attributes
            byte = body[pos]
            if byte < 0x80:
                ts_delta = (byte >> 1) ^ -(byte & 1)
                pos += 1
            elif body[pos + 1] < 0x80:
                raw = (byte & 0x7F) | (body[pos + 1] << 7)
                ts_delta = (raw >> 1) ^ -(raw & 1)
                pos += 2
            else:
                ts_delta, pos = read(body, pos)
            byte = body[pos]
            if byte < 0x80:
                offset_delta = (byte >> 1) ^ -(byte & 1)
                pos += 1
            elif body[pos + 1] < 0x80:
                raw = (byte & 0x7F) | (body[pos + 1] << 7)
                offset_delta = (raw >> 1) ^ -(raw & 1)
                pos += 2
            else:
                offset_delta, pos = read(body, pos)
            byte = body[pos]
            if byte < 0x80:
                key_length = (byte >> 1) ^ -(byte & 1)
                pos += 1
            elif body[pos + 1] < 0x80:
                raw = (byte & 0x7F) | (body[pos + 1] << 7)
                key_length = (raw >> 1) ^ -(raw & 1)
                pos += 2
            else:
                key_length, pos = read(body, pos)
            if key_length < 0:
                key = None
            else:
                key = body[pos : pos + key_length]
                pos += key_length
            byte = body[pos]
            if byte < 0x80:
                value_length = (byte >> 1) ^ -(byte & 1)
                pos += 1
            elif body[pos + 1] < 0x80:
                raw = (byte & 0x7F) | (body[pos + 1] << 7)
                value_length = (raw >> 1) ^ -(raw & 1)
                pos += 2
            else:
                value_length, pos = read(body, pos)
            if value_length < 0:
                value = None
            else:
                value = body[pos : pos + value_length]
                pos += value_length
            headers = []
            if body[pos] == 0:
                pos += 1
            else:
                header_count, pos = read(body, pos)
                for _ in range(header_count):
                    hk_length, pos = read(body, pos)
                    header_key = body[pos : pos + hk_length].decode()
                    pos += hk_length
                    hv_length, pos = read(body, pos)
                    if hv_length < 0:
                        header_value = None
                    else:
                        header_value = body[pos : pos + hv_length]
                        pos += hv_length
                    headers.append((header_key, header_value))
            if pos != end:
                raise CorruptRecordException("record fields disagree with its length")
            append((start, end, ts_delta, offset_delta, key, value, headers))
    except (IndexError, UnicodeDecodeError) as exc:
        raise CorruptRecordException(f"record runs past its batch: {exc}") from exc
    return out


def scan_record_keys(body: bytes, count: int) -> list[tuple[int, int, int, int, Any, bool]]:
    """(start, end, offset delta, timestamp delta, key, is tombstone) of each record.

    The lean parse compaction needs: values and headers are skipped, never copied. Varints
    of one or two bytes (nearly all of them) are decoded inline, for speed. It repeats the
    start of parse_records on purpose: sharing it costs compaction ~40% of its throughput.
    """
    read = _read_varint
    out = []
    append = out.append
    pos = 0
    size = len(body)
    try:
        for _ in range(count):
            start = pos
            byte = body[pos]
            if byte < 0x80:
                length = (byte >> 1) ^ -(byte & 1)
                pos += 1
            elif body[pos + 1] < 0x80:
                raw = (byte & 0x7F) | (body[pos + 1] << 7)
                length = (raw >> 1) ^ -(raw & 1)
                pos += 2
            else:
                length, pos = read(body, pos)
            end = pos + length
            pos += 1  # attributes
            byte = body[pos]
            if byte < 0x80:
                ts_delta = (byte >> 1) ^ -(byte & 1)
                pos += 1
            elif body[pos + 1] < 0x80:
                raw = (byte & 0x7F) | (body[pos + 1] << 7)
                ts_delta = (raw >> 1) ^ -(raw & 1)
                pos += 2
            else:
                ts_delta, pos = read(body, pos)
            byte = body[pos]
            if byte < 0x80:
                offset_delta = (byte >> 1) ^ -(byte & 1)
                pos += 1
            elif body[pos + 1] < 0x80:
                raw = (byte & 0x7F) | (body[pos + 1] << 7)
                offset_delta = (raw >> 1) ^ -(raw & 1)
                pos += 2
            else:
                offset_delta, pos = read(body, pos)
            byte = body[pos]
            if byte < 0x80:
                key_length = (byte >> 1) ^ -(byte & 1)
                pos += 1
            elif body[pos + 1] < 0x80:
                raw = (byte & 0x7F) | (body[pos + 1] << 7)
                key_length = (raw >> 1) ^ -(raw & 1)
                pos += 2
            else:
                key_length, pos = read(body, pos)
            if key_length < 0:
                key = None
            else:
                key = body[pos : pos + key_length]
                pos += key_length
            if length <= 0 or end > size or pos >= end:
                raise CorruptRecordException("record length runs past its batch")
            append((start, end, offset_delta, ts_delta, key, body[pos] == 1))  # value -1
            pos = end
    except IndexError as exc:
        raise CorruptRecordException(f"record runs past its batch: {exc}") from exc
    return out


def records_body(batch: bytes | memoryview) -> bytes:
    """The uncompressed records section of one batch."""
    view = memoryview(batch)
    attributes = struct.unpack_from(">h", view, POS_ATTRIBUTES)[0]
    body = compression.decompress(attributes & COMPRESSION_MASK, view[HEADER_BYTES:])
    return bytes(body)


def decode_batch(batch: bytes | memoryview) -> list[Record]:
    """Every record of one batch (decompressed), with absolute offsets and timestamps."""
    (base_offset, _, _, _, _, attributes, _, base_ts, max_ts, _, _, _, count) = (
        HEADER.unpack_from(batch, 0)
    )
    ts_type = LOG_APPEND_TIME if attributes & TIMESTAMP_TYPE_BIT else CREATE_TIME
    is_control = bool(attributes & CONTROL_BIT)
    out = []
    for _, _, ts_delta, offset_delta, key, value, headers in parse_records(
        records_body(batch), count
    ):
        stamp = max_ts if ts_type == LOG_APPEND_TIME else base_ts + ts_delta
        out.append(Record(base_offset + offset_delta, stamp, key, value, headers, ts_type,
                          is_control))
    return out


