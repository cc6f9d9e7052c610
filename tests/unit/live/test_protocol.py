"""The live feed's frames and client messages."""

import orjson
import pytest

from brokers.live import protocol


def test_a_records_frame_is_its_prefix_and_the_record_bodies_as_a_json_list():
    bodies = [orjson.dumps({"partition": 0, "offset": o}) for o in range(3)]
    for sub_id in ("s1", 42, 'quote " and \\ back'):
        text = protocol.records_frame(protocol.records_frame_prefix(sub_id), bodies)
        assert orjson.loads(text) == {
            "type": "records", "subscription": sub_id,
            "records": [{"partition": 0, "offset": o} for o in range(3)],
        }


def test_runs_of_joined_bodies_make_the_same_frame_as_single_bodies():
    bodies = [orjson.dumps({"offset": o}) for o in range(4)]
    prefix = protocol.records_frame_prefix("s")
    runs = [b",".join(bodies[:3]), bodies[3]]
    assert protocol.records_frame(prefix, runs) == protocol.records_frame(prefix, bodies)


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "Not valid JSON."),
    ("[1]", "Send a JSON object with an 'action'."),
    ('{"action": "dance"}', "Give 'action' as 'subscribe' or 'unsubscribe'."),
    ('{"action": "subscribe"}', "Give the 'topic' to subscribe to."),
    ('{"action": "subscribe", "topic": "t", "partitions": []}',
     "Give 'partitions' as a non-empty list of partition numbers."),
    ('{"action": "subscribe", "topic": "t", "id": true}', "Give 'id' as a string or an integer."),
    ('{"action": "unsubscribe"}', "Give the 'id' of the subscription to end."),
])
def test_bad_client_messages_are_protocol_errors_saying_what_is_wrong(text, message):
    with pytest.raises(protocol.ProtocolError) as raised:
        protocol.parse_message(text)
    assert raised.value.message == message


def test_a_subscribe_message_with_defaults():
    request = protocol.parse_message('{"action": "subscribe", "topic": "orders"}')
    assert request == protocol.Subscribe(
        "orders", "orders", None, protocol.StartFrom(position="latest"), None, "string", "json"
    )


def test_a_group_subscribe_message_names_the_group_and_its_reset_policy():
    request = protocol.parse_message(
        '{"action": "subscribe", "id": "g1", "topic": "orders", "group": "workers",'
        ' "from": "earliest"}'
    )
    assert request.group == "workers"
    assert request.start == protocol.StartFrom(position="earliest")
    assert request.partitions is None and request.key is None
    default = protocol.parse_message('{"action": "subscribe", "topic": "t", "group": "w"}')
    assert default.start == protocol.StartFrom(position="latest")


@pytest.mark.parametrize(("fields", "words"), [
    ('"partitions": [0]', "cannot choose 'partitions'"),
    ('"key": "k"', "cannot choose 'key'"),
    ('"from": {"offset": 3}', "committed offsets"),
    ('"from": {"timestamp": 3}', "committed offsets"),
    ('"from": {"offsets": {"0": 3}}', "committed offsets"),
])
def test_a_group_subscription_refuses_what_the_group_decides(fields, words):
    with pytest.raises(protocol.ProtocolError) as raised:
        protocol.parse_message(
            '{"action": "subscribe", "id": "g", "topic": "t", "group": "w", ' + fields + "}"
        )
    assert words in raised.value.message
    assert raised.value.subscription == "g"


@pytest.mark.parametrize("group", ['7', '""', '["w"]', 'true', '"' + "g" * 250 + '"'])
def test_a_group_id_must_be_a_non_empty_string(group):
    with pytest.raises(protocol.ProtocolError) as raised:
        protocol.parse_message('{"action": "subscribe", "topic": "t", "group": ' + group + "}")
    assert "Give 'group' as a group id" in raised.value.message
