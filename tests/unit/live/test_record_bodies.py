"""Record bodies: made once per format for all subscribers, joined into frame-sized runs."""

import orjson
from live_test_support import record

from brokers.api.record_format import record_answer
from brokers.live.record_bodies import SharedRecords


def test_bodies_are_records_as_rest_answers_them():
    records = [record(0, key=b"k"), record(1, value=b"not json")]
    formatted = SharedRecords(records).formatted("string", "json")
    assert [orjson.loads(b) for b in formatted.bodies()] == [
        record_answer(r, "string", "json") for r in records
    ]
    assert orjson.loads(formatted.bodies()[1])["value_format"] == "string"


def test_each_format_pair_is_made_once_for_every_subscriber():
    shared = SharedRecords([record(0)])
    assert shared.formatted("string", "json") is shared.formatted("string", "json")
    base64 = shared.formatted("string", "base64")
    assert base64 is not shared.formatted("string", "json")
    assert orjson.loads(base64.bodies()[0])["value"] == "eyJuIjogMH0="


def test_runs_join_all_bodies_in_order_within_the_record_bound():
    records = [record(o) for o in range(10, 17)]
    formatted = SharedRecords(records, max_records=3).formatted("string", "json")
    runs = formatted.runs()
    assert [(r.first_offset, r.last_offset, r.count) for r in runs] == [
        (10, 12, 3), (13, 15, 3), (16, 16, 1)
    ]
    joined = [orjson.loads(b"[" + r.data + b"]") for r in runs]
    assert [a["offset"] for run in joined for a in run] == list(range(10, 17))


def test_runs_keep_within_the_byte_bound_and_a_larger_record_is_a_run_alone():
    small = [record(o, value=b'"%s"' % (b"x" * 90)) for o in range(3)]
    large = record(3, value=b'"%s"' % (b"y" * 1000))
    size = len(orjson.dumps(record_answer(small[0], "string", "json"))) + 1
    formatted = SharedRecords([*small, large, record(4)], max_bytes=2 * size).formatted(
        "string", "json"
    )
    runs = formatted.runs()
    assert [(r.first_offset, r.last_offset) for r in runs] == [(0, 1), (2, 2), (3, 3), (4, 4)]
    assert all(len(r.data) <= 2 * size for r in runs if r.count > 1)
