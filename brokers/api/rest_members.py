"""REST members of consumer groups: one subscribed Kafka consumer per member, held by this process.

A REST member is a real member of the tenant's Kafka consumer group: its consumer (librdkafka
through confluent-kafka, logged in as the tenant's internal credentials) joins, syncs and
heartbeats with the broker nodes' group coordinator, so REST members and Kafka-client members
of one group share its partitions by the coordinator's rules, never by the web tier's.

The consumer lives in the web process that created the member, keyed by an unguessable member
id that is only ever found together with its tenant and group. A multi-process deployment
therefore routes a member's requests to the process that holds it (sticky routing by the
``member_id`` in the path); another process answers 404, as for a member that does not exist.

Liveness follows the REST client, not librdkafka: librdkafka heartbeats on its own thread, so
a member whose client stopped polling would otherwise keep its partitions forever. The keeper
thread closes (LeaveGroup) every member not polled within its session timeout, and between a
client's polls it serves each consumer's rebalance events, so that a rebalance never waits for
a REST client's next poll. Records a consumer returns while being kept are held for the next
poll; those of partitions revoked in a rebalance are dropped (never answered, never committed:
the next owner reads them from the committed offset).
"""

import atexit
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from django.conf import settings

from brokers.api import wire

log = logging.getLogger(__name__)

# Kafka errors of a commit or poll that say "the group moved on": the client retries after a poll.
_REBALANCING_ERRORS = {"REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID"}
# A poll waits in slices this long, so a leave or the keeper never waits a whole long poll.
_POLL_SLICE_S = 0.25


class UnknownMember(Exception):
    """No member with this id in this tenant's group (here: in this web process)."""


class MemberBusy(Exception):
    """Another request of the same member holds its consumer longer than this one may wait."""


class TooManyMembers(Exception):
    """The tenant already has DJAFKA_REST_MAX_MEMBERS_PER_TENANT members in this process."""


def new_consumer(config: dict) -> Consumer:
    """A librdkafka consumer (tests replace this with a fake)."""
    return Consumer(config)


@dataclass(slots=True)
class MemberConfig:
    topics: list[str]
    session_timeout_ms: int
    auto_offset_reset: str  # "earliest" | "latest"
    key_format: str
    value_format: str


@dataclass(slots=True)
class PolledRecord:
    topic: str
    record: wire.FetchedRecord


def _polled(message: Message) -> PolledRecord:
    timestamp_type, timestamp_ms = message.timestamp()
    return PolledRecord(message.topic(), wire.FetchedRecord(
        message.partition(), message.offset(), timestamp_ms, timestamp_type,
        message.key(), message.value(), message.headers(),
    ))


@dataclass(eq=False)
class RestMember:
    """One REST member: its consumer, the records held for it, and where its client got to."""

    member_id: str
    tenant: str
    group_id: str
    config: MemberConfig
    consumer: Consumer
    last_seen: float = field(default_factory=time.monotonic)
    # One thread drives the consumer at a time (a client's poll, the keeper, the leave).
    lock: threading.Lock = field(default_factory=threading.Lock)
    is_polling: bool = False
    is_closed: bool = False
    held: deque = field(default_factory=deque)
    # Next offset after the last record answered, by (topic, partition): what an empty
    # commit commits. Only partitions the member still owns are in it.
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    _state_lock: threading.Lock = field(default_factory=threading.Lock)
    # The records a running poll is about to answer (a revoke mid-poll takes its own out).
    _answering: list | None = None
    _revocations: int = 0

    # --- called on the thread that polls (under ``lock``) -------------------------------------

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._revocations += 1
        self.held = deque(p for p in self.held if (p.topic, p.record.partition) not in revoked)
        if self._answering is not None:
            self._answering[:] = [
                p for p in self._answering if (p.topic, p.record.partition) not in revoked
            ]
        with self._state_lock:
            for key in revoked:
                self.positions.pop(key, None)

    def _fetch(self, max_records: int, timeout_s: float) -> list[Message]:
        """Messages from the consumer, none of a partition revoked while it was being called.

        consume() waits for all it asks for; poll() answers as the first message comes.
        """
        revocations = self._revocations
        if max_records == 1:
            message = self.consumer.poll(timeout_s)
            messages = [message] if message is not None else []
        else:
            messages = self.consumer.consume(max_records, timeout=timeout_s)
        if messages and self._revocations != revocations:
            # A batch can hold messages fetched before the rebalance it served.
            owned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
            messages = [
                m for m in messages
                if m.error() is not None or (m.topic(), m.partition()) in owned
            ]
        return messages

    def _take(self, messages: list[Message], into: list[PolledRecord]) -> None:
        for message in messages:
            error = message.error()
            if error is None:
                into.append(_polled(message))
            elif error.fatal():
                raise wire.WireError.from_kafka(error, "Polling the group")
            elif error.code() != KafkaError._PARTITION_EOF:
                # Consumer errors are mostly transient (a broker reconnecting); librdkafka
                # retries them itself.
                log.info("member %s of %s: %s", self.member_id[:6], self.group_id, error.str())

    def keep(self) -> None:
        """Serve the consumer's events between the client's polls; hold what it returns."""
        if len(self.held) >= settings.DJAFKA_REST_MEMBER_MAX_HELD_RECORDS:
            return
        held: list[PolledRecord] = []
        self._take(self._fetch(500, 0), held)
        self.held.extend(held)

    def poll(self, max_records: int, max_bytes: int, timeout_ms: int) -> list[PolledRecord]:
        """Records of the member's partitions: at least one if any comes within ``timeout_ms``."""
        records: list[PolledRecord] = []
        self._answering = records
        try:
            return self._poll_into(records, max_records, max_bytes, timeout_ms)
        finally:
            self._answering = None

    def _poll_into(
        self, records: list[PolledRecord], max_records: int, max_bytes: int, timeout_ms: int
    ) -> list[PolledRecord]:
        size = 0

        def add(polled: PolledRecord) -> None:
            nonlocal size
            records.append(polled)
            r = polled.record
            size += (len(r.key) if r.key else 0) + (len(r.value) if r.value else 0)

        while self.held and len(records) < max_records and size < max_bytes:
            add(self.held.popleft())
        deadline = time.monotonic() + timeout_ms / 1000
        while len(records) < max_records and size < max_bytes and not self.is_closed:
            fresh: list[PolledRecord] = []
            if records:
                # Drain what the fetches brought; never wait once there is something to answer.
                self._take(self._fetch(max_records - len(records), 0), fresh)
                if not fresh:
                    break
            else:
                remaining_s = deadline - time.monotonic()
                messages = self._fetch(1, max(min(remaining_s, _POLL_SLICE_S), 0))
                self._take(messages, fresh)
                if not messages and remaining_s <= 0:
                    break
            for index, polled in enumerate(fresh):
                if len(records) >= max_records or size >= max_bytes:
                    # Over a limit: keep the rest, in order, for the next poll.
                    self.held.extendleft(reversed(fresh[index:]))
                    break
                add(polled)
        with self._state_lock:
            for polled in records:
                self.positions[polled.topic, polled.record.partition] = polled.record.offset + 1
        return records

    # --- any thread ---------------------------------------------------------------------------

    def assignment(self) -> dict[str, list[int]]:
        assigned: dict[str, list[int]] = {}
        for tp in self.consumer.assignment():
            assigned.setdefault(tp.topic, []).append(tp.partition)
        return {topic: sorted(ps) for topic, ps in sorted(assigned.items())}

    def kafka_member_id(self) -> str | None:
        try:
            return self.consumer.memberid() or None
        except (KafkaException, RuntimeError):
            return None

    def commit(self, offsets: list[tuple[str, int, int]] | None) -> list[tuple[str, int, int]]:
        """Commit ``offsets`` (topic, partition, next offset), or the last polled ones if None."""
        if offsets is None:
            owned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
            with self._state_lock:
                offsets = [(t, p, o) for (t, p), o in self.positions.items() if (t, p) in owned]
            offsets.sort()
        if not offsets:
            return []
        try:
            answered = self.consumer.commit(
                offsets=[TopicPartition(t, p, o) for t, p, o in offsets], asynchronous=False
            )
        except KafkaException as exc:
            raise _commit_error(exc) from exc
        for tp in answered or ():
            if tp.error is not None:
                raise _commit_error(KafkaException(tp.error))
        return offsets

    def is_expired(self, now: float) -> bool:
        session_s = self.config.session_timeout_ms / 1000
        return not self.is_polling and now - self.last_seen > session_s


def _commit_error(exc: KafkaException) -> wire.WireError:
    error = wire.WireError.from_kafka(exc, "Committing offsets")
    if error.error in _REBALANCING_ERRORS:
        error.status = 409
        error.message += " (the group is rebalancing: poll, then commit again)"
    return error


def consumer_config(tenant: str, group_id: str, config: MemberConfig) -> dict:
    session_ms = config.session_timeout_ms
    return {
        **wire.client_config(tenant),
        "client.id": "djafka-rest",
        "group.id": group_id,
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": min(3000, session_ms // 3),
        # librdkafka leaves the group when the app does not poll for this long; the keeper
        # polls every few ms, and the REST session (above) is what expires a silent client.
        # It is also the rebalance timeout the coordinator waits for members to rejoin.
        "max.poll.interval.ms": max(session_ms, 30_000),
        "auto.offset.reset": config.auto_offset_reset,
        # Commits are the client's: explicit, of what it was answered.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 200,
        "queued.max.messages.kbytes": settings.DJAFKA_REST_MEMBER_PREFETCH_KBYTES,
        "topic.metadata.refresh.interval.ms": 10_000,
    }


class MemberRegistry:
    """The REST members held by this web process, and the keeper thread that keeps them."""

    def __init__(self, consumer_factory: Callable[[dict], Consumer] | None = None):
        self._consumer_factory = consumer_factory
        self._members: dict[str, RestMember] = {}
        self._lock = threading.Lock()
        self._keeper: threading.Thread | None = None

    def create(self, tenant: str, group_id: str, config: MemberConfig) -> RestMember:
        with self._lock:
            count = sum(1 for m in self._members.values() if m.tenant == tenant)
        if count >= settings.DJAFKA_REST_MAX_MEMBERS_PER_TENANT:
            raise TooManyMembers(
                f"At most {settings.DJAFKA_REST_MAX_MEMBERS_PER_TENANT} REST members per tenant."
            )
        member_id = f"rest-{secrets.token_urlsafe(24)}"
        factory = self._consumer_factory or new_consumer
        consumer = factory(consumer_config(tenant, group_id, config))
        member = RestMember(member_id, tenant, group_id, config, consumer)
        try:
            consumer.subscribe(config.topics, on_revoke=member.on_revoke)
        except KafkaException as exc:
            consumer.close()
            raise wire.WireError.from_kafka(exc, "Joining the group") from exc
        with self._lock:
            self._members[member_id] = member
            self._start_keeper()
        return member

    def get(self, tenant: str, group_id: str, member_id: str) -> RestMember:
        """The member, if it is this tenant's and this group's; UnknownMember otherwise."""
        member = self._members.get(member_id)
        if member is None or member.tenant != tenant or member.group_id != group_id:
            raise UnknownMember(member_id)
        return member

    def poll(
        self, member: RestMember, max_records: int, max_bytes: int, timeout_ms: int
    ) -> list[PolledRecord]:
        """A client's poll: also its heartbeat (it resets the member's session)."""
        wait_s = timeout_ms / 1000 + settings.DJAFKA_REST_MAX_POLL_TIMEOUT_MS / 1000
        if not member.lock.acquire(timeout=wait_s):
            raise MemberBusy("Another poll of this member is still running.")
        try:
            if member.is_closed:
                raise UnknownMember(member.member_id)
            member.is_polling = True
            member.last_seen = time.monotonic()
            try:
                return member.poll(max_records, max_bytes, timeout_ms)
            except KafkaException as exc:
                raise wire.WireError.from_kafka(exc, "Polling the group") from exc
        finally:
            member.last_seen = time.monotonic()
            member.is_polling = False
            member.lock.release()

    def leave(self, member: RestMember) -> None:
        """Take the member out and close its consumer: LeaveGroup, so the group rebalances now."""
        with self._lock:
            if self._members.pop(member.member_id, None) is None:
                raise UnknownMember(member.member_id)
        self._close(member)

    def _close(self, member: RestMember) -> None:
        member.is_closed = True  # an ongoing poll ends at its next slice
        with member.lock:
            try:
                member.consumer.close()
            except (KafkaException, RuntimeError) as exc:
                log.warning("closing member %s of %s: %s", member.member_id[:6],
                            member.group_id, exc)

    def members(self) -> list[RestMember]:
        with self._lock:
            return list(self._members.values())

    def close_all(self) -> None:
        with self._lock:
            members, self._members = list(self._members.values()), {}
        for member in members:
            self._close(member)

    # --- the keeper ---------------------------------------------------------------------------

    def _start_keeper(self) -> None:
        if self._keeper is None or not self._keeper.is_alive():
            self._keeper = threading.Thread(target=self._keep, name="rest-members", daemon=True)
            self._keeper.start()

    def _keep(self) -> None:
        interval_s = settings.DJAFKA_REST_MEMBER_KEEPER_INTERVAL_MS / 1000
        while True:
            time.sleep(interval_s)
            try:
                self.keep_once(time.monotonic())
            except Exception:  # the keeper must outlive any one member's trouble
                log.exception("keeping REST members")

    def keep_once(self, now: float) -> None:
        """Expire members not polled within their session; serve the others' events."""
        for member in self.members():
            if member.is_expired(now):
                with self._lock:
                    if self._members.pop(member.member_id, None) is None:
                        continue
                member.is_closed = True  # a poll starting now answers 404
                log.info("REST member %s of %s expired: not polled for %d ms",
                         member.member_id[:6], member.group_id, member.config.session_timeout_ms)
                # Closing waits for the LeaveGroup: off the keeper, so others are still kept.
                threading.Thread(target=self._close, args=(member,), daemon=True).start()
            elif member.lock.acquire(blocking=False):
                try:
                    if not member.is_closed:
                        member.keep()
                except (KafkaException, wire.WireError) as exc:
                    log.info("keeping member %s of %s: %s", member.member_id[:6],
                             member.group_id, exc)
                finally:
                    member.lock.release()


registry = MemberRegistry()
# A web process stopping leaves its members' groups: the others rebalance at once instead of
# after the members' session timeouts.
atexit.register(registry.close_all)
