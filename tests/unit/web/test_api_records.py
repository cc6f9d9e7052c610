"""REST produce and read: input checks, limits and tenancy, with the wire to brokers faked."""

import base64

import orjson
import pytest
from rest_framework.test import APIClient

from brokers import services
from brokers.api import wire
from brokers.api.produce_decoder import parse_produce_request
from brokers.api.record_format import record_answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders(tenant):
    return services.create_topic(tenant, name="orders", partition_count=3)


@pytest.fixture
def sent(monkeypatch):
    """wire.produce replaced: records are 'appended' at offsets 0, 1, ... of their partition."""
    calls = []

    def fake_produce(tenant, topic, records, acks, **_limits):
        calls.append((tenant, topic, records, acks))
        return [
            wire.ProduceResult(partition=r.partition or 0, offset=None if acks == "0" else i)
            for i, r in enumerate(records)
        ]

    monkeypatch.setattr(wire, "produce", fake_produce)
    return calls


def post(api: APIClient, topic: str, body: object):
    return api.post(
        f"/api/v1/topics/{topic}/records", orjson.dumps(body), content_type="application/json"
    )


def test_produce_answers_each_record_in_order(api, orders, sent):
    response = post(api, "orders", {"records": [{"key": "a", "value": {"x": 1}}, {"value": 2}]})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "records": [{"partition": 0, "offset": 0}, {"partition": 0, "offset": 1}]
    }
    tenant, topic, records, acks = sent[0]
    assert (tenant, topic, acks) == ("acme", "orders", "1")
    assert records[0].key == b"a" and records[0].value == b'{"x":1}'
    assert records[1].key is None and records[1].value == b"2"


def test_formats_headers_timestamp_and_partition_reach_the_wire(api, orders, sent):
    body = {
        "key_format": "base64",
        "value_format": "string",
        "acks": "all",
        "records": [
            {"key": base64.b64encode(b"\x00\xff").decode(), "value": "plain",
             "headers": [["a", "1"], ["a", "2"]], "timestamp": 1_700_000_000_000, "partition": 2},
            {"key": None, "value": None, "headers": {"b": None}},
        ],
    }
    assert post(api, "orders", body).status_code == 200
    _, _, records, acks = sent[0]
    assert acks == "all"
    assert records[0].key == b"\x00\xff" and records[0].value == b"plain"
    assert records[0].headers == [("a", b"1"), ("a", b"2")]
    assert records[0].timestamp_ms == 1_700_000_000_000 and records[0].partition == 2
    assert records[1].key is None and records[1].value is None
    assert records[1].headers == [("b", None)]


def test_acks_zero_answers_null_offsets(api, orders, sent):
    response = post(api, "orders", {"records": [{"value": 1}], "acks": 0})
    assert response.json()["records"] == [{"partition": 0, "offset": None}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"records": "nope"}, "records"),
        ({"records": []}, "records"),
        ([1, 2], "non_field_errors"),
        ({"records": [{"value": 1}], "key_format": "xml"}, "key_format"),
        ({"records": [{"value": 1}], "value_format": "avro"}, "value_format"),
        ({"records": [{"value": 1}], "acks": 2}, "acks"),
        ({"records": [{"value": 1}], "acks": True}, "acks"),
    ],
)
def test_bad_produce_bodies_are_a_400(api, orders, sent, body, field):
    response = post(api, "orders", body)
    assert response.status_code == 400
    assert field in response.json()
    assert sent == []


@pytest.mark.parametrize(
    ("record", "field", "formats"),
    [
        ({"value": "!!notbase64", "key": None}, "value", {"value_format": "base64"}),
        ({"key": 5, "value": 1}, "key", {}),
        ({"value": 1, "partition": -1}, "partition", {}),
        ({"value": 1, "partition": 3}, "partition", {}),
        ({"value": 1, "partition": "1"}, "partition", {}),
        ({"value": 1, "headers": "h=v"}, "headers", {}),
        ({"value": 1, "headers": [["h"]]}, "headers", {}),
        ({"value": 1, "headers": {"h": 1}}, "headers", {}),
        ({"value": 1, "timestamp": -5}, "timestamp", {}),
        ({"value": 1, "timestamp": 1.5}, "timestamp", {}),
        # A misspelt field is not silently dropped (the record would go to another partition).
        ({"value": 1, "partiton": 2}, "non_field_errors", {}),
        ({"key": "a", "value": 1, "Key": "b"}, "non_field_errors", {}),
        ("not an object", "non_field_errors", {}),
        ({"key": "a", "value": "x"}, "value", {"value_format": "base64"}),
        ({"key": ["a"]}, "key", {"value_format": "base64"}),
    ],
)
def test_bad_records_are_a_400_with_their_index(api, orders, sent, record, field, formats):
    good = {"value": "AA=="} if formats else {"value": 0}
    response = post(api, "orders", {"records": [good, record], **formats})
    assert response.status_code == 400, response.content
    assert field in response.json()["records"]["1"]
    assert "0" not in response.json()["records"]


def test_unknown_record_fields_are_named(api, orders, sent):
    response = post(api, "orders", {"records": [{"value": 1, "partiton": 2, "hdrs": {}}]})
    message = response.json()["records"]["0"]["non_field_errors"][0]
    assert "'hdrs', 'partiton'" in message and "partition" in message


@pytest.mark.parametrize("body", [
    b"{not json",
    b'{"value_format": "string", "records": [{"value": "\xff"}]}',  # not UTF-8
    b'{"records": [{"value": {"a": "\xff"}}]}',  # not UTF-8 inside a JSON value
    b'{"records": [{"value": ' + b"[" * 3000 + b"]" * 3000 + b"}]}",  # nested too deeply
])
def test_malformed_json_is_a_400_that_says_so(api, orders, sent, body):
    response = api.post("/api/v1/topics/orders/records", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["non_field_errors"][0].startswith("Not valid JSON")
    assert sent == []


def test_too_many_records_is_a_413(api, orders, sent, settings):
    settings.DJAFKA_REST_MAX_RECORDS_PER_REQUEST = 10
    response = post(api, "orders", {"records": [{"value": 1}] * 11})
    assert response.status_code == 413
    assert "at most 10" in response.json()["detail"]


def test_too_many_bytes_is_a_413(api, orders, sent, settings):
    settings.DJAFKA_REST_MAX_REQUEST_BYTES = 1000
    response = post(api, "orders", {"records": [{"value": "x" * 2000}]})
    assert response.status_code == 413
    assert sent == []


def test_record_over_max_message_bytes_gets_its_own_error(api, tenant, sent):
    services.create_topic(tenant, name="small", configs={"max.message.bytes": "500"})
    response = post(
        api, "small", {"records": [{"value": "x" * 600}, {"value": "ok"}], "value_format": "string"}
    )
    assert response.status_code == 200
    first, second = response.json()["records"]
    assert first["error"] == "MESSAGE_TOO_LARGE" and first["offset"] is None
    assert second == {"partition": 0, "offset": 0}
    assert len(sent[0][2]) == 1
    alone = post(api, "small", {"records": [{"value": "x" * 600}], "value_format": "string"})
    assert alone.status_code == 413


def test_request_wide_kafka_errors_answer_their_status(api, orders, monkeypatch):
    def timing_out(tenant, topic, records, acks, **_limits):
        return [
            wire.ProduceResult(None, None, "REQUEST_TIMED_OUT", "Local: Message timed out")
            for _ in records
        ]

    monkeypatch.setattr(wire, "produce", timing_out)
    response = post(api, "orders", {"records": [{"value": 1}]})
    assert response.status_code == 503
    assert response.json()["error"] == "REQUEST_TIMED_OUT"

    def no_brokers(tenant, topic, records, acks, **_limits):
        raise wire.WireError("BROKER_NOT_AVAILABLE", "No broker node is alive.")

    monkeypatch.setattr(wire, "produce", no_brokers)
    assert post(api, "orders", {"records": [{"value": 1}]}).status_code == 503


def test_unknown_and_other_tenants_topics_are_a_404(api, other_api, orders, sent):
    assert post(api, "nope", {"records": [{"value": 1}]}).status_code == 404
    assert post(other_api, "orders", {"records": [{"value": 1}]}).status_code == 404
    url = "/api/v1/topics/orders/partitions/0/records?from=earliest"
    assert other_api.get(url).status_code == 404
    assert other_api.get("/api/v1/topics/orders/partitions").status_code == 404
    assert sent == []


def test_no_key_is_a_401(orders):
    client = APIClient()
    assert client.post("/api/v1/topics/orders/records", {}, format="json").status_code == 401
    url = "/api/v1/topics/orders/partitions/0/records?from=earliest"
    assert client.get(url).status_code == 401
    assert client.get("/api/v1/topics/orders/partitions").status_code == 401


@pytest.mark.parametrize(
    "query",
    [
        "",
        "offset=1&from=earliest",
        "offset=-1",
        "from=middle",
        "timestamp=abc",
        "from=earliest&max_records=0",
        "from=earliest&max_records=10001",
        "from=earliest&timeout_ms=999999",
        "from=earliest&value_format=xml",
        "from=earliest&max_bytes=0",
        "offset=9223372036854775808",  # beyond Kafka's int64 offsets
        "timestamp=99999999999999999999",
    ],
)
def test_bad_read_queries_are_a_400(api, orders, query):
    response = api.get(f"/api/v1/topics/orders/partitions/0/records?{query}")
    assert response.status_code == 400, response.content


def test_read_of_a_missing_partition_is_a_404(api, orders):
    response = api.get("/api/v1/topics/orders/partitions/3/records?from=earliest")
    assert response.status_code == 404
    assert "has 3" in response.json()["detail"]


def test_offset_out_of_range_is_a_416_with_the_valid_range(api, orders, monkeypatch):
    def out_of_range(*args, **kwargs):
        raise wire.OffsetOutOfRange(99, 0, 10)

    monkeypatch.setattr(wire, "fetch", out_of_range)
    response = api.get("/api/v1/topics/orders/partitions/0/records?offset=99")
    assert response.status_code == 416
    body = response.json()
    assert (body["log_start_offset"], body["log_end_offset"]) == (0, 10)
    assert body["error"] == "OFFSET_OUT_OF_RANGE"


def test_read_answers_records_in_the_asked_formats(api, orders, monkeypatch):
    records = [
        wire.FetchedRecord(0, 5, 1000, 1, b"k", b'{"a": 1}', [("h", b"v")]),
        wire.FetchedRecord(0, 6, 1001, 2, None, b"\xff", None),
    ]
    asked = {}

    def fake_fetch(tenant, topic, partition, start, max_records, max_bytes, timeout_ms):
        asked.update(start=start, max_records=max_records, timeout_ms=timeout_ms)
        return wire.FetchResult(records, 7, 0, 7)

    monkeypatch.setattr(wire, "fetch", fake_fetch)
    body = api.get(
        "/api/v1/topics/orders/partitions/0/records?timestamp=1000&max_records=2&timeout_ms=100"
    ).json()
    assert asked["start"] == wire.StartAt(timestamp_ms=1000)
    assert (asked["max_records"], asked["timeout_ms"]) == (2, 100)
    assert body["next_offset"] == 7 and body["log_end_offset"] == 7
    first, second = body["records"]
    assert first == {
        "partition": 0, "offset": 5, "timestamp": 1000, "timestamp_type": "CreateTime",
        "key": "k", "value": {"a": 1}, "headers": [["h", "v"]],
    }
    assert second["value"] == "/w==" and second["value_format"] == "base64"
    assert second["timestamp_type"] == "LogAppendTime" and second["key"] is None


def test_fetched_values_fall_back_from_json_to_string_then_base64():
    record = wire.FetchedRecord(0, 0, 0, 1, b"\xfe", b"not json", [("h", b"\xff")])
    answer = record_answer(record, "json", "json")
    assert answer["value"] == "not json" and answer["value_format"] == "string"
    assert answer["key"] == "/g==" and answer["key_format"] == "base64"
    assert answer["headers"] == [["h", {"base64": "/w=="}]]
    assert record_answer(record, "base64", "string")["value"] == "not json"
    assert "value_format" not in record_answer(record, "base64", "string")


def test_string_keys_are_their_utf8_bytes_as_a_kafka_client_sends_them():
    records, _ = parse_produce_request(
        orjson.dumps({"records": [{"key": "café", "value": "x"}]}), partition_count=1,
        max_records=10,
    )
    assert records[0].key == "café".encode()
    assert records[0].value == b'"x"'  # value_format json: the JSON text


def test_a_topic_changed_or_deleted_here_is_seen_by_the_next_produce(api, orders, sent):
    assert post(api, "orders", {"records": [{"value": 1}]}).status_code == 200  # remembered
    services.add_partitions(orders, 5)
    services.alter_topic_configs(orders, {"max.message.bytes": "2000"})
    big = post(api, "orders", {"records": [{"value": "x" * 3000, "partition": 4}],
                               "value_format": "string"})
    # The new partition is accepted and the new size limit applies at once.
    assert big.status_code == 413 and "2000" in big.json()["detail"]
    services.delete_topic(orders)
    assert post(api, "orders", {"records": [{"value": 1}]}).status_code == 404


def test_without_the_topic_cache_every_produce_reads_the_topic(api, orders, sent, settings):
    settings.DJAFKA_REST_TOPIC_CACHE_S = 0
    assert post(api, "orders", {"records": [{"value": 1}]}).status_code == 200
    from brokers.models import Topic

    Topic.objects.filter(pk=orders.pk).update(partition_count=1)  # no signal: only a re-read sees
    answer = post(api, "orders", {"records": [{"value": 1, "partition": 2}]})
    assert answer.status_code == 400 and "partition" in answer.json()["records"]["0"]
