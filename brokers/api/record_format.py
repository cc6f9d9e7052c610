"""Records between JSON and bytes: the formats, produce bodies checked field by field, fetched
records out.

Plain Python (no Django, no DRF serializer per record). Good produce bodies are decoded by
produce_decoder.py; the ones it refuses come here to be told what is wrong.

Formats, for keys and values alike:

- ``string``: a JSON string, sent as its UTF-8 bytes (answered: the bytes decoded as UTF-8).
- ``json``: any JSON value. A value is sent as its JSON text as the body gave it, a key as
  compact JSON (a key's bytes decide its partition; answered: the bytes parsed as JSON).
- ``base64``: a JSON string holding base64, sent as the decoded bytes (answered: base64).

``null`` is always a null key or value (a tombstone), never the JSON text ``null``. When a
fetched key or value cannot be answered in the asked format (not valid JSON, not UTF-8), the
record says so with ``key_format``/``value_format`` naming the format used instead: ``string``
if the bytes are UTF-8, else ``base64``.
"""

import base64
import binascii
from typing import Any

import msgspec
import orjson

from brokers.api.kafka_reader import FetchedRecord
from brokers.api.produce_batches import OutgoingRecord

FORMATS = ("string", "json", "base64")
ACKS = {0: "0", 1: "1", -1: "all", "all": "all", "0": "0", "1": "1", "-1": "all"}
# Bytes a record adds inside a batch beyond its key, value and headers (varint lengths,
# attributes, deltas), and the batch header: the check against max.message.bytes uses both.
RECORD_OVERHEAD_BYTES = 21
BATCH_OVERHEAD_BYTES = 61


class InvalidRecords(Exception):
    """Field errors of a produce request, in DRF's shape."""

    def __init__(self, errors: dict):
        super().__init__(errors)
        self.errors = errors


class TooManyRecords(Exception):
    """A produce request with more records than one request may carry (a 413)."""

    def __init__(self, count: int, max_records: int):
        super().__init__(f"The request has {count} records; at most {max_records} are taken.")
        self.count = count
        self.max_records = max_records


def _headers(data: Any) -> list[tuple[str, bytes | None]]:
    """Headers as {"name": "value"} or [["name", "value"], ...]; values are UTF-8 strings."""
    if isinstance(data, dict):
        pairs = list(data.items())
    elif isinstance(data, list):
        pairs = []
        for pair in data:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise ValueError('Give headers as {"name": "value"} or [["name", "value"], ...].')
            pairs.append(pair)
    else:
        raise ValueError('Give headers as {"name": "value"} or [["name", "value"], ...].')
    headers = []
    for name, value in pairs:
        if not isinstance(name, str) or not (value is None or isinstance(value, str)):
            raise ValueError("Header names are strings; values are strings or null.")
        headers.append((name, None if value is None else value.encode()))
    return headers


def _encode_string(data: Any) -> bytes | None:
    if data is None:
        return None
    if type(data) is str:
        return data.encode()
    raise ValueError("Give a string (or null) in format 'string'.")


def compact_json(data: Any) -> bytes:
    """``data`` as compact JSON: how a JSON key is sent, so equal keys are equal bytes.

    msgspec, as the produce body's parser: integers of any size stay exact (orjson reads those
    beyond 64 bits as floats), and its output is sized to fit (orjson's keeps its buffer's
    spare capacity, which held per record cost 2 µs instead of 0.2).
    """
    return msgspec.json.encode(data)


def _encode_json(data: Any) -> bytes | None:
    # Here the text as given is gone (parsed): the same value, as compact JSON.
    return None if data is None else compact_json(data)


def _encode_base64(data: Any) -> bytes | None:
    if data is None:
        return None
    if not isinstance(data, str):
        raise ValueError("Give base64 text (or null) in format 'base64'.")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("Not valid base64.") from None


_ENCODERS = {"string": _encode_string, "json": _encode_json, "base64": _encode_base64}
RECORD_FIELDS = ("key", "value", "headers", "timestamp", "partition")
_KEY_VALUE = frozenset(("key", "value"))


def _encode(data: Any, fmt: str) -> bytes | None:
    """``data`` (a key or value given in format ``fmt``) as bytes; ValueError says what is wrong."""
    return _ENCODERS[fmt](data)


def _record_problems(
    item: Any, encode_key: Any, encode_value: Any, partition_count: int
) -> "OutgoingRecord | dict[str, list[str]]":
    """One record checked field by field: the record, or its field errors."""
    if not isinstance(item, dict):
        return {"non_field_errors": ["Give a record as an object."]}
    problems: dict[str, list[str]] = {}
    unknown = [name for name in item if name not in RECORD_FIELDS]
    if unknown:
        problems["non_field_errors"] = [
            f"Unknown field(s) {', '.join(map(repr, sorted(unknown)))}: a record has "
            f"{', '.join(RECORD_FIELDS)}."
        ]
    key = value = None
    try:
        key = encode_key(item.get("key"))
    except ValueError as exc:
        problems["key"] = [str(exc)]
    try:
        value = encode_value(item.get("value"))
    except ValueError as exc:
        problems["value"] = [str(exc)]
    headers = None
    if (raw_headers := item.get("headers")) is not None:
        try:
            headers = _headers(raw_headers)
        except ValueError as exc:
            problems["headers"] = [str(exc)]
    timestamp = item.get("timestamp")
    if timestamp is not None and (
        type(timestamp) is not int or timestamp < 0 or timestamp >= 1 << 63
    ):
        problems["timestamp"] = ["Give milliseconds since the epoch, a non-negative integer."]
    partition = item.get("partition")
    if partition is not None and (
        type(partition) is not int or not 0 <= partition < partition_count
    ):
        problems["partition"] = [
            f"Give a partition from 0 to {partition_count - 1}; the topic has "
            f"{partition_count}."
        ]
    if problems:
        return problems
    return OutgoingRecord(key, value, headers, timestamp, partition)


def check_produce_body(
    body: Any, partition_count: int, max_records: int
) -> tuple[list[OutgoingRecord], str]:
    """A parsed produce body checked field by field: its records, ready for the wire, and its
    acks ("0", "1" or "all").

    The path of bodies produce_decoder.py refuses: raises InvalidRecords with field errors
    (per record keyed by its index), TooManyRecords beyond ``max_records``.
    """
    if not isinstance(body, dict):
        raise InvalidRecords({"non_field_errors": ["Send a JSON object with 'records'."]})
    errors: dict[str, Any] = {}
    key_format = body.get("key_format", "string")
    value_format = body.get("value_format", "json")
    for field, fmt in (("key_format", key_format), ("value_format", value_format)):
        if fmt not in FORMATS:
            errors[field] = [f"Give one of {', '.join(FORMATS)}."]
    # Exactly the ints and strings ACKS names: not True (an int) nor 1.0 (equal to 1).
    acks = ACKS.get(body.get("acks", 1)) if type(body.get("acks", 1)) in (int, str) else None
    if acks is None:
        errors["acks"] = ['Give 0, 1 or "all".']
    items = body.get("records")
    if not isinstance(items, list) or not items:
        errors["records"] = ["Give a non-empty list of records."]
    elif len(items) > max_records:
        raise TooManyRecords(len(items), max_records)
    if errors:
        raise InvalidRecords(errors)

    encode_key, encode_value = _ENCODERS[key_format], _ENCODERS[value_format]
    records: list[OutgoingRecord] = []
    append = records.append
    record_errors: dict[str, dict[str, list[str]]] = {}
    for index, item in enumerate(items):
        # The common record, {"key": ..., "value": ...} with good data, takes the first branch.
        if type(item) is dict and item.keys() <= _KEY_VALUE:
            try:
                append(OutgoingRecord(encode_key(item.get("key")), encode_value(item.get("value"))))
                continue
            except ValueError:
                pass  # said with the record's other problems below
        problems = _record_problems(item, encode_key, encode_value, partition_count)
        if isinstance(problems, OutgoingRecord):
            append(problems)
        else:
            record_errors[str(index)] = problems
    if record_errors:
        raise InvalidRecords({"records": record_errors})
    return records, acks


def record_size(record: OutgoingRecord) -> int:
    """Bytes a record takes alone in a batch, as checked against max.message.bytes."""
    size = BATCH_OVERHEAD_BYTES + RECORD_OVERHEAD_BYTES
    size += len(record.key) if record.key else 0
    size += len(record.value) if record.value else 0
    if record.headers:
        for name, value in record.headers:
            size += len(name) + (len(value) if value else 0) + 2
    return size


def _decode(data: bytes | None, fmt: str) -> tuple[Any, str | None]:
    """The answer for ``data`` in ``fmt``, and the format used instead when it did not fit."""
    if data is None:
        return None, None
    if fmt == "base64":
        return base64.b64encode(data).decode(), None
    if fmt == "json":
        try:
            return orjson.loads(data), None
        except orjson.JSONDecodeError:
            pass
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return base64.b64encode(data).decode(), "base64"
    return text, (None if fmt == "string" else "string")


def _header_value(value: bytes | None) -> str | dict | None:
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode()}


TIMESTAMP_TYPES = {0: None, 1: "CreateTime", 2: "LogAppendTime"}


def record_answer(record: FetchedRecord, key_format: str, value_format: str) -> dict:
    """A fetched record as REST answers it."""
    key, key_used = _decode(record.key, key_format)
    value, value_used = _decode(record.value, value_format)
    answer = {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp_ms,
        "timestamp_type": TIMESTAMP_TYPES.get(record.timestamp_type),
        "key": key,
        "value": value,
        "headers": [[n, _header_value(v)] for n, v in record.headers or ()],
    }
    if key_used:
        answer["key_format"] = key_used
    if value_used:
        answer["value_format"] = value_used
    return answer
