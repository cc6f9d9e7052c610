"""The live feed's websocket protocol: client messages checked into requests, server frames.

Plain Python, no Django. Client messages (JSON text frames):

- ``{"action": "subscribe", "id": "s1", "topic": "orders", "partitions": [0, 2],
  "from": "latest" | "earliest" | {"offset": n} | {"timestamp": ms}, "key": "user-1",
  "key_format": "string", "value_format": "json"}``: only ``topic`` is required; ``id``
  defaults to the topic's name, ``partitions`` to all, ``from`` to ``"latest"``, the formats to
  REST's (keys as strings, values as JSON). ``key`` keeps only records with exactly that key
  (given in ``key_format``). With ``{"offset": n}`` every asked partition starts at ``n``; a map
  ``{"offsets": {"0": 10, "1": 20}}`` starts each partition at its own offset.
- ``{"action": "subscribe", "id": "g1", "topic": "orders", "group": "workers",
  "from": "earliest" | "latest"}``: a member of the tenant's consumer group ``group``, sharing
  the topic's partitions with the group's other members (Kafka clients, REST members, other
  sockets). The group assigns partitions, so ``partitions``, ``key`` and offset or time starts
  are refused; ``from`` is the reset policy of partitions without a committed offset.
  ``assigned``/``revoked`` frames say which partitions it holds (see ``group_feed``).
- ``{"action": "unsubscribe", "id": "s1"}``.

Server frames: ``subscribed``, ``records``, ``skipped``, ``unsubscribed``, ``error``, and for a
group subscription ``assigned`` and ``revoked`` (see
``brokers/live/README.md``). Records come in batches, one ``records`` frame per subscription
each time its socket's outbox is drained:
``{"type": "records", "subscription": "s1", "records": [{"partition": 0, "offset": 7,
"timestamp": ..., "timestamp_type": ..., "key": ..., "value": ..., "headers": [...]}, ...]}``,
each element a record as REST answers it (with ``key_format``/``value_format`` when they
differ from the asked ones), at most ``MAX_FRAME_RECORDS`` records and ``MAX_FRAME_BYTES``
bytes of records a frame (a single larger record goes alone).
"""

from dataclasses import dataclass
from typing import Any

import orjson

from brokers.api.record_format import FORMATS, _encode

MAX_ID_LENGTH = 200
MAX_GROUP_ID_LENGTH = 249  # as Kafka's topic names; a group id longer than this is a mistake
# A ``records`` frame holds at most this many records and bytes of records (a record larger
# than MAX_FRAME_BYTES goes alone), so a client's frames stay bounded however far behind it is.
MAX_FRAME_RECORDS = 1000
MAX_FRAME_BYTES = 1024 * 1024


class ProtocolError(Exception):
    """A client message that cannot be served; answered with an error frame, socket kept."""

    def __init__(self, message: str, subscription: Any = None):
        super().__init__(message)
        self.message = message
        self.subscription = subscription


@dataclass(frozen=True, slots=True)
class StartFrom:
    """Where a subscription starts: a position, one offset for all, offsets, or a time."""

    position: str | None = None  # "latest" | "earliest"
    offset: int | None = None
    offsets: dict[int, int] | None = None
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Subscribe:
    id: Any
    topic: str
    partitions: tuple[int, ...] | None
    start: StartFrom
    key: bytes | None
    key_format: str
    value_format: str
    group: str | None = None  # a consumer group's member: the group assigns the partitions


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    id: Any


def _is_count(value: Any) -> bool:
    return type(value) is int and 0 <= value < 1 << 63


def _subscription_id(message: dict, default: Any) -> Any:
    sub_id = message.get("id", default)
    if isinstance(sub_id, bool) or not isinstance(sub_id, (str, int)):
        raise ProtocolError("Give 'id' as a string or an integer.")
    if isinstance(sub_id, str) and not 0 < len(sub_id) <= MAX_ID_LENGTH:
        raise ProtocolError(f"Give 'id' as 1 to {MAX_ID_LENGTH} characters.")
    return sub_id


def _start(raw: Any, sub_id: Any) -> StartFrom:
    if raw in (None, "latest"):
        return StartFrom(position="latest")
    if raw == "earliest":
        return StartFrom(position="earliest")
    if isinstance(raw, dict) and len(raw) == 1:
        if _is_count(raw.get("offset")):
            return StartFrom(offset=raw["offset"])
        if _is_count(raw.get("timestamp")):
            return StartFrom(timestamp_ms=raw["timestamp"])
        offsets = raw.get("offsets")
        if isinstance(offsets, dict) and offsets:
            parsed = {}
            for partition, offset in offsets.items():
                if not (str(partition).isdigit() and _is_count(offset)):
                    break
                parsed[int(partition)] = offset
            else:
                return StartFrom(offsets=parsed)
    raise ProtocolError(
        'Give \'from\' as "latest", "earliest", {"offset": n}, {"offsets": {"<partition>": n}} '
        'or {"timestamp": ms}.',
        sub_id,
    )


def parse_message(text: str | bytes | None) -> Subscribe | Unsubscribe:
    """A client message as a request; raises ProtocolError saying what is wrong."""
    if text is None:
        raise ProtocolError("Send JSON text frames.")
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError("Not valid JSON.") from None
    if not isinstance(message, dict):
        raise ProtocolError("Send a JSON object with an 'action'.")
    action = message.get("action")
    if action == "unsubscribe":
        if "id" not in message:
            raise ProtocolError("Give the 'id' of the subscription to end.")
        return Unsubscribe(_subscription_id(message, None))
    if action != "subscribe":
        raise ProtocolError("Give 'action' as 'subscribe' or 'unsubscribe'.")

    topic = message.get("topic")
    if not isinstance(topic, str) or not topic:
        raise ProtocolError("Give the 'topic' to subscribe to.", message.get("id"))
    sub_id = _subscription_id(message, topic)
    partitions = message.get("partitions")
    if partitions is not None:
        if not (
            isinstance(partitions, list) and partitions and all(_is_count(p) for p in partitions)
        ):
            raise ProtocolError(
                "Give 'partitions' as a non-empty list of partition numbers.", sub_id
            )
        partitions = tuple(sorted(set(partitions)))
    start = _start(message.get("from"), sub_id)
    key_format = message.get("key_format", "string")
    value_format = message.get("value_format", "json")
    for field, fmt in (("key_format", key_format), ("value_format", value_format)):
        if fmt not in FORMATS:
            raise ProtocolError(f"Give '{field}' as one of {', '.join(FORMATS)}.", sub_id)
    key = None
    if message.get("key") is not None:
        try:
            key = _encode(message["key"], key_format)
        except ValueError as exc:
            raise ProtocolError(f"'key': {exc}", sub_id) from None
    group = _group(message, sub_id)
    if group is not None:
        for field in ("partitions", "key"):
            if message.get(field) is not None:
                raise ProtocolError(
                    f"A group subscription cannot choose '{field}': the group assigns "
                    "partitions.", sub_id,
                )
        if start.position is None:
            raise ProtocolError(
                'A group subscription starts at its committed offsets: give \'from\' as '
                '"earliest" or "latest" (where partitions without one start).', sub_id,
            )
    return Subscribe(sub_id, topic, partitions, start, key, key_format, value_format, group)


def _group(message: dict, sub_id: Any) -> str | None:
    group = message.get("group")
    if group is None:
        return None
    if not isinstance(group, str) or not 0 < len(group) <= MAX_GROUP_ID_LENGTH:
        raise ProtocolError(
            f"Give 'group' as a group id of 1 to {MAX_GROUP_ID_LENGTH} characters.", sub_id
        )
    return group


def frame(kind: str, **fields: Any) -> str:
    """A server frame of type ``kind``, as JSON text."""
    return orjson.dumps({"type": kind, **fields}).decode()


def records_frame_prefix(sub_id: Any) -> bytes:
    """The start of every ``records`` frame of one subscription; record bodies follow it.

    A record's body (``record_answer`` as JSON) is made once per record and format and shared
    by all subscribers, so fan-out costs a join per subscriber and frame, not a serialization.
    """
    return b'{"type":"records","subscription":' + orjson.dumps(sub_id) + b',"records":['


def records_frame(prefix: bytes, bodies: list[bytes]) -> str:
    """A ``records`` frame: ``prefix`` and record bodies (or comma-joined runs of them)."""
    return (prefix + b",".join(bodies) + b"]}").decode()
