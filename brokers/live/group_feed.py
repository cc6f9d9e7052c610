"""A websocket subscription that is a member of a tenant's Kafka consumer group.

``{"action": "subscribe", "id": "g1", "topic": "orders", "group": "workers"}`` makes the socket
a real member of the group: a librdkafka Consumer (``wire.client_config(tenant)``, the group's
id, subscribed to the topic) joins, syncs and heartbeats with the broker nodes' coordinator,
so sockets, Kafka clients and REST members of one group share the topic's partitions by the
coordinator's rules. Each (re)assignment is told as ``assigned`` (and ``revoked``) frames.

One thread per group subscription drives its consumer (librdkafka calls block; the event loop
never waits on them). Records go to the event loop a batch at a time and into the socket's
outbox as ``records`` frames, in offset order per partition. A member never skips: its records
are never dropped from the outbox, and while the outbox is over half full (or a batch is still
on its way to it) the thread pauses its partitions and only polls to serve rebalances.

Offsets committed are those of records the socket was handed (``Outbox.confirm_sent``): they
are stored as frames are written and committed every ``COMMIT_INTERVAL_MS`` (auto-commit of
stored offsets), on revoke and on unsubscribe or socket close, before LeaveGroup. Records
queued but not yet written when partitions are revoked are dropped from the outbox and not
committed, so the next owner reads them: at least once, as Kafka's consumers are.
"""

import asyncio
import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from brokers.api import wire
from brokers.live import protocol
from brokers.live.outbox import Outbox
from brokers.live.record_bodies import SharedRecords
from brokers.live.sync import run_blocking

log = logging.getLogger(__name__)

COMMIT_INTERVAL_MS = 2000
SESSION_TIMEOUT_MS = 10_000
# A poll waits this long at most, so a close or a paused member never waits a long poll.
POLL_SLICE_S = 0.2
BATCH_RECORDS = 500
# How long a revoke waits for the event loop to drop the revoked records from the outbox.
REVOKE_WAIT_S = 5.0


_UNKNOWN_TOPIC = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC})


def _topic_exists(tenant: str, topic: str) -> bool:
    from brokers.models import Topic

    return Topic.objects.filter(tenant__name=tenant, name=topic).exists()


def new_consumer(config: dict) -> Consumer:
    """A librdkafka consumer (tests replace this with a fake)."""
    return Consumer(config)


def consumer_config(tenant: str, request: protocol.Subscribe) -> dict:
    return {
        **wire.client_config(tenant),
        "client.id": f"djafka-live/{tenant}",
        "group.id": request.group,
        "auto.offset.reset": request.start.position,
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": SESSION_TIMEOUT_MS // 3,
        # Auto-commit commits only what was stored, and only sent records are stored.
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.commit.interval.ms": COMMIT_INTERVAL_MS,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 200,
        "queued.max.messages.kbytes": 4096,
        "topic.metadata.refresh.interval.ms": 10_000,
    }


class _Generation:
    """The outbox owner of one assignment's records: a new one each rebalance.

    Records of a revoked assignment still on their way are recognised (``is_live`` False)
    and dropped; what the socket is handed after the revoke is not committed by this member.
    """

    __slots__ = ("feed", "id", "is_live", "prefix")
    is_skippable = False  # a group member waits for its client instead of skipping records

    def __init__(self, feed: "GroupSubscription"):
        self.feed = feed
        self.id = feed.id
        self.prefix = feed.prefix
        self.is_live = True

    def sent(self, partition: int, last_offset: int) -> None:
        if self.is_live:
            self.feed.sent(partition, last_offset)


_feeds: "weakref.WeakSet[GroupSubscription]" = weakref.WeakSet()


class GroupSubscription:
    def __init__(self, tenant: str, request: protocol.Subscribe, outbox: Outbox,
                 on_ended: Callable[["GroupSubscription"], None]):
        self.tenant = tenant
        self.request = request
        self.id = request.id
        self.topic = request.topic
        self.outbox = outbox
        self.on_ended = on_ended
        self.prefix = protocol.records_frame_prefix(request.id)
        self._formats = (request.key_format, request.value_format)
        self._loop = asyncio.get_running_loop()
        self._owner = _Generation(self)
        self._lock = threading.Lock()
        self._sent: dict[int, int] = {}  # partition -> next offset after the last sent record
        self._pending = 0  # batches posted to the event loop and not yet in the outbox
        self._held: list[Message] = []
        self._revocations = 0
        self._is_paused = False  # a new assignment starts unpaused (``_on_assign``)
        self._stopping = threading.Event()
        self._topic_checked_at = 0.0
        self._consumer: Consumer | None = None
        self._thread: threading.Thread | None = None
        self.closed = False

    # --- the event loop ----------------------------------------------------------------------

    async def start(self) -> None:
        """Make the consumer and subscribe it; the thread joins the group. Raises WireError."""
        config = await run_blocking(consumer_config, self.tenant, self.request)
        consumer = await run_blocking(new_consumer, config)
        try:
            await run_blocking(consumer.subscribe, [self.topic], on_assign=self._on_assign,
                               on_revoke=self._on_revoke)
        except KafkaException as exc:
            await run_blocking(consumer.close)
            raise wire.WireError.from_kafka(exc, "Joining the group") from exc
        if self.closed:  # the socket went away meanwhile
            await run_blocking(consumer.close)
            return
        self._consumer = consumer
        self._thread = threading.Thread(
            target=self._run, name=f"live-group-{self.request.group}", daemon=True
        )
        _feeds.add(self)
        self._thread.start()

    def close(self) -> None:
        """Stop: drop what is queued and unsent; the thread commits what was sent and leaves."""
        self.closed = True
        self._owner.is_live = False
        self.outbox.forget(self._owner)
        self._stopping.set()

    def sent(self, partition: int, last_offset: int) -> None:
        """The socket was handed this partition's records up to ``last_offset``."""
        with self._lock:
            self._sent[partition] = last_offset + 1

    def _queue(self, owner: _Generation, batches: dict[int, list[wire.FetchedRecord]]) -> None:
        with self._lock:
            self._pending -= 1
        if not owner.is_live:
            return  # revoked (or closed) on the way: never sent, never committed
        push = self.outbox.push_records
        for partition, records in batches.items():
            for run in SharedRecords(records).formatted(*self._formats).runs():
                push(owner, partition, run.first_offset, run.last_offset, run.data, run.count)

    def _end_on_error(self, message: str) -> None:
        if self.closed:
            return
        self.close()
        self.outbox.push_frame(protocol.frame("error", subscription=self.id, message=message))
        self.outbox.push_frame(protocol.frame("unsubscribed", subscription=self.id))
        self.on_ended(self)

    # --- the consumer's thread ---------------------------------------------------------------

    def _post(self, callback: Callable[..., Any], *args: Any) -> bool:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
            return True
        except RuntimeError:  # the event loop is gone (the process is stopping)
            self._stopping.set()
            return False

    def _can_hand(self) -> bool:
        return self._pending == 0 and self.outbox.has_room()

    def _run(self) -> None:
        consumer = self._consumer
        try:
            while not self._stopping.is_set():
                self._store_sent(consumer)
                if self._held and self._can_hand():
                    self._hand(self._held)
                    self._held = []
                is_waiting = not self._can_hand()
                if is_waiting != self._is_paused:
                    # Paused partitions are not fetched, yet polling still serves rebalances.
                    assignment = consumer.assignment()
                    if assignment:
                        (consumer.pause if is_waiting else consumer.resume)(assignment)
                    self._is_paused = is_waiting
                self._held.extend(self._fetch(consumer, is_waiting))
        except Exception as exc:  # a fatal consumer error, or a bug: end this subscription
            log.exception("live group member %s of %s failed", self.id, self.request.group)
            self._post(self._end_on_error, f"The group member failed: {exc}")
        finally:
            self._leave(consumer)

    def _fetch(self, consumer: Consumer, is_waiting: bool) -> list[Message]:
        revocations = self._revocations
        if is_waiting:
            messages = consumer.consume(BATCH_RECORDS, timeout=POLL_SLICE_S)
        else:
            first = consumer.poll(POLL_SLICE_S)
            messages = [] if first is None else [first, *consumer.consume(BATCH_RECORDS - 1, 0)]
        if messages and self._revocations != revocations:
            owned = {tp.partition for tp in consumer.assignment()}
            messages = [m for m in messages if m.error() or m.partition() in owned]
        kept = []
        for message in messages:
            error = message.error()
            if error is None:
                kept.append(message)
            elif error.fatal():
                raise KafkaException(error)
            elif error.code() in _UNKNOWN_TOPIC:
                # Deleted, or not yet known to a broker node after its creation: the database
                # says which (at most once a second).
                now = time.monotonic()
                if now - self._topic_checked_at >= 1.0:
                    self._topic_checked_at = now
                    self._post(self._end_if_topic_deleted)
            elif error.code() != KafkaError._PARTITION_EOF:
                # Mostly transient (a broker reconnecting): librdkafka retries on its own.
                log.info("live group member %s of %s: %s", self.id, self.request.group,
                         error.str())
        return kept

    def _end_if_topic_deleted(self) -> None:
        async def check() -> None:
            if not await run_blocking(_topic_exists, self.tenant, self.topic):
                self._end_on_error(f"Topic '{self.topic}' was deleted.")

        self._loop.create_task(check())

    def _hand(self, messages: list[Message]) -> None:
        """Post a batch to the event loop, which queues it in the outbox in order."""
        batches: dict[int, list[wire.FetchedRecord]] = {}
        for message in messages:
            batches.setdefault(message.partition(), []).append(wire.fetched_record(message))
        with self._lock:
            self._pending += 1
        if not self._post(self._queue, self._owner, batches):
            with self._lock:
                self._pending -= 1

    def _store_sent(self, consumer: Consumer) -> None:
        with self._lock:
            sent, self._sent = self._sent, {}
        if not sent:
            return
        try:
            consumer.store_offsets(offsets=[
                TopicPartition(self.topic, p, o) for p, o in sorted(sent.items())
            ])
        except KafkaException as exc:  # a partition revoked meanwhile: its new owner goes on
            log.info("storing offsets of live group member %s: %s", self.id, exc)

    def _commit(self, consumer: Consumer) -> None:
        self._store_sent(consumer)
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:  # nothing new to commit
                log.info("committing live group member %s: %s", self.id, exc)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        owner = self._owner = _Generation(self)
        self._is_paused = False
        with self._lock:
            self._sent.clear()
        numbers = sorted(tp.partition for tp in partitions)
        self._post(self.outbox.push_frame, protocol.frame(
            "assigned", subscription=self.id, partitions=numbers
        ), owner)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._revocations += 1
        self._held = []
        old = self._owner
        numbers = sorted(tp.partition for tp in partitions)
        if not self._stopping.is_set():
            done = threading.Event()

            def revoke() -> None:
                # On the event loop, so sent records counted before this are committed below
                # and those queued and unsent are dropped: their next owner reads them.
                old.is_live = False
                self.outbox.forget(old)
                if not self.closed:
                    self.outbox.push_frame(protocol.frame(
                        "revoked", subscription=self.id, partitions=numbers
                    ))
                done.set()

            if self._post(revoke):
                done.wait(REVOKE_WAIT_S)
        old.is_live = False
        self._commit(consumer)
        with self._lock:
            self._sent.clear()

    def _leave(self, consumer: Consumer) -> None:
        """Commit what was sent and close: LeaveGroup, so the group rebalances at once."""
        try:
            self._commit(consumer)
        except Exception:
            log.debug("final commit of live group member %s failed", self.id, exc_info=True)
        try:
            consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("closing live group member %s of %s: %s", self.id,
                        self.request.group, exc)


def describe(subscription: GroupSubscription) -> dict[str, Any]:
    """The ``subscribed`` frame's fields of a group subscription (no partitions yet)."""
    request = subscription.request
    return {
        "subscription": request.id,
        "topic": request.topic,
        "group": request.group,
        "partitions": [],
        "key_format": request.key_format,
        "value_format": request.value_format,
    }


def close_all() -> None:
    """Leave every group at exit: the others rebalance at once, not after a session timeout."""
    feeds = list(_feeds)
    for feed in feeds:
        feed._stopping.set()
    for feed in feeds:
        if feed._thread is not None:
            feed._thread.join(timeout=5)


atexit.register(close_all)
