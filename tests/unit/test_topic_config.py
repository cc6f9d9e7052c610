"""Topic names and configs are checked as Kafka checks them."""

import pytest

from brokers.topic_config import (
    TOPIC_CONFIGS,
    InvalidConfig,
    InvalidTopicName,
    collision_key,
    effective_configs,
    validate_topic_configs,
    validate_topic_name,
)


@pytest.mark.parametrize("name", ["orders", "a", "A.b_c-9", "x" * 249, "__consumer_offsets_like"])
def test_legal_topic_names_are_accepted(name):
    validate_topic_name(name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        (".", "'.'"),
        ("..", "'.'"),
        ("x" * 250, "limit is 249"),
        ("has space", "only ASCII"),
        ("slash/name", "only ASCII"),
        ("ünïcode", "only ASCII"),
        ("tab\t", "only ASCII"),
    ],
)
def test_illegal_topic_names_are_rejected_with_the_reason(name, reason):
    with pytest.raises(InvalidTopicName, match=reason):
        validate_topic_name(name)


def test_dot_and_underscore_names_collide_as_in_kafka():
    assert collision_key("a.b") == collision_key("a_b")
    assert collision_key("a.b") != collision_key("a-b")


def test_valid_configs_come_back_as_kafka_strings():
    clean = validate_topic_configs(
        {"retention.ms": 3600000, "cleanup.policy": "compact,delete", "segment.bytes": "1048576"}
    )
    assert clean == {
        "retention.ms": "3600000",
        "cleanup.policy": "compact,delete",
        "segment.bytes": "1048576",
    }


@pytest.mark.parametrize(
    ("configs", "bad"),
    [
        ({"retention.ms": "soon"}, "retention.ms"),
        ({"retention.ms": -2}, "retention.ms"),
        ({"retention.bytes": "1.5"}, "retention.bytes"),
        ({"segment.bytes": 10}, "segment.bytes"),
        ({"segment.bytes": 2**31}, "segment.bytes"),
        ({"segment.ms": 0}, "segment.ms"),
        ({"cleanup.policy": "erase"}, "cleanup.policy"),
        ({"cleanup.policy": ""}, "cleanup.policy"),
        ({"max.message.bytes": -1}, "max.message.bytes"),
        ({"min.insync.replicas": 0}, "min.insync.replicas"),
        ({"message.timestamp.type": "WallClock"}, "message.timestamp.type"),
        ({"no.such.config": "1"}, "no.such.config"),
        ({"retention.ms": None}, "retention.ms"),
        ({"retention.ms": [1]}, "retention.ms"),
    ],
)
def test_bad_configs_are_rejected_naming_the_config(configs, bad):
    with pytest.raises(InvalidConfig) as caught:
        validate_topic_configs(configs)
    assert list(caught.value.errors) == [bad]


def test_every_default_passes_its_own_check():
    for definition in TOPIC_CONFIGS.values():
        assert definition.check(definition.default) is None, definition.name


def test_effective_configs_take_overrides_over_defaults():
    configs = effective_configs({"retention.ms": "1000"})
    assert configs["retention.ms"] == "1000"
    assert configs["cleanup.policy"] == "delete"
    assert set(configs) == set(TOPIC_CONFIGS)
