"""REST produce bodies into records: msgspec's decoding and the field-by-field checks agree.

No Django: the decoder is plain Python over bytes.
"""

import base64
import json

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brokers.api.produce_decoder import decode_good_body, parse_produce_request
from brokers.api.record_format import (
    FORMATS,
    InvalidRecords,
    TooManyRecords,
    check_produce_body,
)

PARTITIONS = 3


def decode(body: object | bytes, max_records: int = 100):
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return parse_produce_request(raw, PARTITIONS, max_records)


def test_json_values_are_sent_as_the_json_text_given():
    raw = b'{"records": [{"key": "k", "value": {"total" : 12, "items": [1, 2]}}]}'
    (record,), acks = decode(raw)
    assert record.value == b'{"total" : 12, "items": [1, 2]}'
    assert record.key == b"k"
    assert acks == "1"


def test_json_keys_are_the_same_bytes_however_a_client_spaced_or_escaped_them():
    spellings = [b'{"id": 1, "region": "eu"}', b'{"id":1,"region":"eu"}',
                 b'{ "\\u0069d" : 1 ,\n "region":"\\u0065u"}']
    keys = set()
    for key in spellings:
        raw = b'{"key_format": "json", "records": [{"key": %s, "value": 1}]}' % key
        (record,), _ = decode(raw)
        keys.add(record.key)
    assert keys == {b'{"id":1,"region":"eu"}'}


def test_null_and_missing_keys_and_values_are_null_in_every_format():
    for fmt in FORMATS:
        records, _ = decode({"key_format": fmt, "value_format": fmt,
                             "records": [{"key": None, "value": None}, {}]})
        assert [(r.key, r.value) for r in records] == [(None, None), (None, None)], fmt


def test_json_text_null_as_a_string_is_not_a_tombstone():
    (record,), _ = decode({"records": [{"value": "null"}]})
    assert record.value == b'"null"'


def test_formats_headers_timestamp_and_partition_are_carried():
    (record,), acks = decode({
        "key_format": "base64", "value_format": "string", "acks": "all",
        "records": [{"key": base64.b64encode(b"\x00\xff").decode(), "value": "café",
                     "headers": {"trace": "abc", "empty": None}, "timestamp": 1234,
                     "partition": 2}],
    })
    assert record.key == b"\x00\xff"
    assert record.value == "café".encode()
    assert record.headers == [("trace", b"abc"), ("empty", None)]
    assert (record.timestamp_ms, record.partition, acks) == (1234, 2, "all")
    (record,), _ = decode({"records": [{"value": 1, "headers": [["a", "b"], ["a", "c"]]}]})
    assert record.headers == [("a", b"b"), ("a", b"c")]  # repeated names kept, in order


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"records": [{"value": 1, "partiton": 1}]}, "non_field_errors", "Unknown field"),
    ({"records": [{"value": 1, "partition": 3}]}, "partition", "from 0 to 2"),
    ({"records": [{"value": 1, "timestamp": -5}]}, "timestamp", "non-negative"),
    ({"records": [{"value": 1, "timestamp": 1.5}]}, "timestamp", "non-negative"),
    ({"value_format": "string", "records": [{"value": 5}]}, "value", "Give a string"),
    ({"value_format": "base64", "records": [{"value": "no!"}]}, "value", "base64"),
    ({"records": [{"value": 1, "headers": "x"}]}, "headers", "Give headers"),
    ({"records": [{"value": 1, "headers": {"a": 1}}]}, "headers", "strings"),
])
def test_a_bad_record_is_a_field_error_at_its_index(body, field, message):
    body["records"].insert(0, {"value": "fine"})
    with pytest.raises(InvalidRecords) as caught:
        decode(body)
    errors = caught.value.errors["records"]
    assert list(errors) == ["1"]
    assert message in " ".join(errors["1"][field])


@pytest.mark.parametrize(("raw", "field"), [
    (b"not json", "non_field_errors"),
    (b'{"value_format": "string", "records": [{"value": "\xff"}]}', "non_field_errors"),
    (b'{"records": [{"value": {"a": "\xff"}}]}', "non_field_errors"),
    (b'{"records": [{"value": ' + b"[" * 5000 + b"]" * 5000 + b"}]}", "non_field_errors"),
    (b'{"records": [{}], "acks": 1.0}', "acks"),
    (b"[1, 2]", "non_field_errors"),
    (b'{"records": []}', "records"),
    (b'{"records": 7}', "records"),
    (b'{"records": [{}], "acks": 2}', "acks"),
    (b'{"records": [{}], "acks": true}', "acks"),
    (b'{"records": [{}], "value_format": "xml"}', "value_format"),
])
def test_a_bad_body_is_a_400_saying_what_is_wrong(raw, field):
    with pytest.raises(InvalidRecords) as caught:
        decode(raw)
    assert field in caught.value.errors


def test_integers_beyond_64_bits_stay_exact():
    raw = b'{"key_format": "json", "records": [{"key": 18446744073709551616, "value": [1e100]}]}'
    (record,), _ = decode(raw)
    assert (record.key, record.value) == (b"18446744073709551616", b"[1e100]")


def test_more_records_than_a_request_may_carry_is_too_many():
    with pytest.raises(TooManyRecords, match="3 records; at most 2"):
        decode({"records": [{}, {}, {}]}, max_records=2)


# --- Both paths accept the same bodies and make the same records -----------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=6,
)
field_values = st.none() | st.text(max_size=6) | st.integers(-3, 3) | json_values | st.just(
    "aGk=")  # valid base64 ("hi")
records = st.dictionaries(
    st.sampled_from(["key", "value", "headers", "timestamp", "partition", "extra"]),
    field_values | st.dictionaries(st.text(max_size=3), st.none() | st.text(max_size=3),
                                   max_size=2)
    | st.lists(st.lists(st.none() | st.text(max_size=3), min_size=2, max_size=2), max_size=2)
    | st.integers(-1, 2**70),
    max_size=4,
)
bodies = st.fixed_dictionaries(
    {"records": st.lists(records, min_size=1, max_size=4)},
    optional={"key_format": st.sampled_from([*FORMATS, "xml"]),
              "value_format": st.sampled_from(FORMATS),
              "acks": st.sampled_from([0, 1, -1, "0", "1", "-1", "all", 2, True, None])},
)


# How a client may write the same body: compact, escaped to ASCII, indented.
writers = st.sampled_from([
    msgspec.json.encode,
    lambda body: json.dumps(body).encode(),
    lambda body: json.dumps(body, indent=1, ensure_ascii=False).encode(),
])


@settings(max_examples=400, deadline=None)
@given(bodies, writers)
def test_msgspec_and_the_field_checks_accept_the_same_bodies_alike(body, write):
    raw = write(body)
    fast = decode_good_body(raw, PARTITIONS, 100)
    try:
        checked = check_produce_body(msgspec.json.decode(raw), PARTITIONS, 100)
    except InvalidRecords:
        checked = None
    assert (fast is None) == (checked is None), (body, fast, checked)
    if fast is None:
        return
    (fast_records, fast_acks), (checked_records, checked_acks) = fast, checked
    assert fast_acks == checked_acks
    value_is_json = body.get("value_format", "json") == "json"
    for mine, theirs in zip(fast_records, checked_records, strict=True):
        assert mine.key == theirs.key  # byte for byte: a key's bytes decide its partition
        # A JSON value is kept as the client wrote it: the same value, maybe spaced otherwise.
        a, b = mine.value, theirs.value
        assert (orjson.loads(a) if value_is_json and a else a) == (
            orjson.loads(b) if value_is_json and b else b)
        assert mine.headers == theirs.headers
        assert (mine.timestamp_ms, mine.partition) == (theirs.timestamp_ms, theirs.partition)
