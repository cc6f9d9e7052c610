"""Topic names and topic configs, checked as Kafka checks them (no Django here).

A topic stores only the configs set on it (Kafka's dynamic topic configs); everything else
takes the broker default below. The same table answers DescribeConfigs.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

MAX_TOPIC_NAME_LENGTH = 249
_LEGAL_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


class InvalidTopicName(ValueError):
    """The name breaks Kafka's rules for topic names (Kafka's INVALID_TOPIC_EXCEPTION)."""


class InvalidConfig(ValueError):
    """A topic config is unknown or out of range (Kafka's INVALID_CONFIG).

    ``errors`` maps each bad config name to a message.
    """

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


def validate_topic_name(name: str) -> None:
    """Raise InvalidTopicName unless Kafka would accept ``name`` (Topic.validate in Kafka)."""
    if not name:
        raise InvalidTopicName("Topic name is empty.")
    if name in {".", ".."}:
        raise InvalidTopicName("Topic name cannot be '.' or '..'.")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise InvalidTopicName(
            f"Topic name is {len(name)} characters long; the limit is {MAX_TOPIC_NAME_LENGTH}."
        )
    if not _LEGAL_TOPIC_NAME.match(name):
        raise InvalidTopicName(
            "Topic name may contain only ASCII letters, digits, '.', '_' and '-'."
        )


def collision_key(name: str) -> str:
    """Kafka forbids two topics whose names differ only by '.' versus '_' (metric names clash)."""
    return name.replace(".", "_")


@dataclass(frozen=True)
class ConfigDef:
    """One topic config: its type, broker default, check, and what it means."""

    name: str
    kind: str  # "long", "int", "list", "string", "boolean"
    default: str
    doc: str
    check: Callable[[str], str | None]
    is_sensitive: bool = False


def _integer(minimum: int, maximum: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            number = int(value)
        except ValueError:
            return f"'{value}' is not a whole number."
        if not minimum <= number <= maximum:
            return f"{number} is out of range; use a value from {minimum} to {maximum}."
        return None

    return check


def _one_of(*choices: str, many: bool = False) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        items = [item.strip() for item in value.split(",")] if many else [value]
        bad = [item for item in items if item not in choices]
        if bad or not items or items == [""]:
            shown = ", ".join(choices)
            return (
                f"'{value}' is not allowed; use {'one or more of' if many else 'one of'} {shown}."
            )
        return None

    return check


_DAY_MS = 24 * 60 * 60 * 1000

TOPIC_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in [
        ConfigDef(
            "cleanup.policy",
            "list",
            "delete",
            "'delete' drops old segments; 'compact' keeps the latest record per key.",
            _one_of("delete", "compact", many=True),
        ),
        ConfigDef(
            "retention.ms",
            "long",
            str(7 * _DAY_MS),
            "How long a closed segment is kept, in ms; -1 keeps it forever.",
            _integer(-1, LONG_MAX),
        ),
        ConfigDef(
            "retention.bytes",
            "long",
            "-1",
            "Largest size a partition's log may grow to before old segments go; -1 for no limit.",
            _integer(-1, LONG_MAX),
        ),
        ConfigDef(
            "segment.bytes",
            "int",
            str(1024 * 1024 * 1024),
            "Size at which the active segment is rolled.",
            _integer(14, INT_MAX),
        ),
        ConfigDef(
            "segment.ms",
            "long",
            str(7 * _DAY_MS),
            "Age at which the active segment is rolled, even if not full.",
            _integer(1, LONG_MAX),
        ),
        ConfigDef(
            "max.message.bytes",
            "int",
            "1048588",
            "Largest record batch the topic accepts, in bytes.",
            _integer(0, INT_MAX),
        ),
        ConfigDef(
            "min.insync.replicas",
            "int",
            "1",
            "Replicas that must have a batch before an acks=all produce succeeds.",
            _integer(1, INT_MAX),
        ),
        ConfigDef(
            "message.timestamp.type",
            "string",
            "CreateTime",
            "Whose clock stamps a record: the producer's (CreateTime) or the broker's.",
            _one_of("CreateTime", "LogAppendTime"),
        ),
        ConfigDef(
            "delete.retention.ms",
            "long",
            str(_DAY_MS),
            "How long a tombstone stays in a compacted topic.",
            _integer(0, LONG_MAX),
        ),
        ConfigDef(
            "min.compaction.lag.ms",
            "long",
            "0",
            "How long a record stays uncompacted at least.",
            _integer(0, LONG_MAX),
        ),
        ConfigDef(
            "flush.messages",
            "long",
            str(LONG_MAX),
            "Records written between two fsyncs of the log.",
            _integer(1, LONG_MAX),
        ),
        ConfigDef(
            "flush.ms",
            "long",
            str(LONG_MAX),
            "Longest time between two fsyncs of the log.",
            _integer(0, LONG_MAX),
        ),
    ]
}


def validate_topic_configs(configs: Mapping[str, object]) -> dict[str, str]:
    """Check topic config overrides; return them as Kafka's string values or raise InvalidConfig."""
    errors: dict[str, str] = {}
    clean: dict[str, str] = {}
    for name, raw in configs.items():
        definition = TOPIC_CONFIGS.get(name)
        if definition is None:
            errors[name] = "Unknown topic config."
            continue
        if raw is None or isinstance(raw, (dict, list)):
            errors[name] = "Give the value as a string or a number."
            continue
        value = str(raw).lower() if isinstance(raw, bool) else str(raw).strip()
        if problem := definition.check(value):
            errors[name] = problem
            continue
        clean[name] = value
    if errors:
        raise InvalidConfig(errors)
    return clean


def effective_configs(overrides: Mapping[str, str]) -> dict[str, str]:
    """Every topic config's value: the topic's override where set, else the broker default."""
    return {name: overrides.get(name, d.default) for name, d in TOPIC_CONFIGS.items()}
