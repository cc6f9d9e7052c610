"""A REST produce body decoded into records ready for the wire, in one pass of C for good bodies.

msgspec decodes a body straight into typed records: its JSON parser checks every field (type,
range, unknown names) as it reads, keeps a ``json``-format key or value as the JSON text it was
given (``msgspec.Raw``: never built into Python objects and serialized again), and decodes
``base64`` itself. What is left in Python is one short pass: text to UTF-8, JSON ``null`` to a
null key or value, JSON keys made compact (a key's bytes decide its partition), headers to
(name, bytes) pairs, partitions against the topic's count.

A body msgspec refuses is checked again by record_format.check_produce_body, which says what is
wrong with each field in DRF's error shape (a 400). The two accept the same bodies (a
hypothesis test holds them to it), but for integers beyond 64 bits inside a JSON value, which
only msgspec keeps (as given; orjson cannot parse them). Should they ever disagree the other
way, the checked path's records are the ones sent.

No Django here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from brokers.api.record_format import (
    ACKS,
    FORMATS,
    InvalidRecords,
    TooManyRecords,
    check_produce_body,
    compact_json,
)

__all__ = ("decode_good_body", "parse_produce_request")

_INT64_MAX = (1 << 63) - 1
_NOT_GIVEN = msgspec.Raw(b"")
_JSON_NULL = msgspec.Raw(b"null")


class _Envelope(msgspec.Struct):
    """The body around the records, which stay undecoded until their formats are known."""

    records: msgspec.Raw = _NOT_GIVEN
    key_format: str = "string"
    value_format: str = "json"
    acks: Literal[0, 1, -1, "0", "1", "-1", "all"] = 1


# A key or value in each format: a string, any JSON text kept as given, base64 as bytes.
_FIELD_TYPES: dict[str, Any] = {
    "string": str | None,
    "json": msgspec.Raw,
    "base64": bytes | None,
}
_HEADERS = dict[str, str | None] | list[tuple[str, str | None]] | None


def _records_decoder(key_format: str, value_format: str) -> msgspec.json.Decoder:
    record = msgspec.defstruct(
        f"ProduceRecord_{key_format}_{value_format}",
        [
            ("key", _FIELD_TYPES[key_format],
             _NOT_GIVEN if key_format == "json" else None),
            ("value", _FIELD_TYPES[value_format],
             _NOT_GIVEN if value_format == "json" else None),
            ("headers", _HEADERS, None),
            ("timestamp_ms", Annotated[int, msgspec.Meta(ge=0, le=_INT64_MAX)] | None,
             msgspec.field(name="timestamp", default=None)),
            ("partition", Annotated[int, msgspec.Meta(ge=0)] | None, None),
        ],
        forbid_unknown_fields=True,
    )
    return msgspec.json.Decoder(list[record])


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_RECORDS = {(k, v): _records_decoder(k, v) for k in FORMATS for v in FORMATS}


def parse_produce_request(
    raw: bytes, partition_count: int, max_records: int
) -> tuple[list[Any], str]:
    """A produce body's records, ready for the wire, and its acks ("0", "1" or "all").

    Each record has ``key``, ``value`` (bytes or None), ``headers`` (list of (name, bytes or
    None) or None), ``timestamp_ms`` and ``partition`` (int or None). Raises TooManyRecords
    beyond ``max_records``, InvalidRecords with field errors for anything else wrong.
    """
    decoded = decode_good_body(raw, partition_count, max_records)
    if decoded is not None:
        return decoded
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRecords({"non_field_errors": [f"Not valid JSON: {exc}"]}) from None
    except UnicodeDecodeError as exc:
        raise InvalidRecords({"non_field_errors": [
            f"Not valid JSON: not UTF-8 text (byte {exc.start})."
        ]}) from None
    except RecursionError:
        raise InvalidRecords({"non_field_errors": ["Not valid JSON: nested too deeply."]}) from None
    return check_produce_body(body, partition_count, max_records)


def decode_good_body(
    raw: bytes, partition_count: int, max_records: int
) -> tuple[list[Any], str] | None:
    """The records of a good body; None for anything msgspec or the checks below refuse."""
    try:
        # msgspec checks UTF-8 in the strings it decodes, not in the JSON text it keeps.
        raw.decode()
        envelope = _ENVELOPE.decode(raw)
        decoder = _RECORDS.get((envelope.key_format, envelope.value_format))
        if decoder is None or not envelope.records:
            return None
        records = decoder.decode(envelope.records)
        if not records:
            return None
        if len(records) > max_records:
            raise TooManyRecords(len(records), max_records)
        if not _to_wire(records, envelope.key_format, envelope.value_format, partition_count):
            return None
    # DecodeError (ValidationError included), UnicodeError (a ValueError), and a JSON value
    # nested deeper than the parser goes: the checked path says what is wrong.
    except (msgspec.DecodeError, ValueError, RecursionError):
        return None
    return records, ACKS[envelope.acks]


def _to_wire(records: list[Any], key_format: str, value_format: str,
             partition_count: int) -> bool:
    """Keys and values as bytes, headers as (name, bytes) pairs, in place; False for a
    partition the topic does not have."""
    for record in records:
        key, value = record.key, record.value
        if key is not None:
            if key_format == "string":
                record.key = key.encode()
            elif key_format == "json":
                # A key decides the partition and what compaction keeps: the same key must be
                # the same bytes however a client spaced or escaped it, so keys are made
                # compact (values are kept as given).
                record.key = (None if key == _JSON_NULL or not key
                              else compact_json(msgspec.json.decode(key)))
        if value is not None:
            if value_format == "string":
                record.value = value.encode()
            elif value_format == "json":
                record.value = None if value == _JSON_NULL or not value else bytes(value)
        if record.headers is not None:
            pairs = record.headers.items() if type(record.headers) is dict else record.headers
            record.headers = [(n, None if v is None else v.encode()) for n, v in pairs]
        if record.partition is not None and record.partition >= partition_count:
            return False
    return True
