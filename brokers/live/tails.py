"""Shared tails: one reader per (tenant, topic, partition) in a web process, fanned out locally.

A tail follows a partition's log end over the Kafka protocol and hands each new record to
every local subscriber of that partition. Tails of one tenant share one librdkafka Consumer
(``wire.live_consumer``: one long-polling fetch per leader for all of them), served by one
thread that only fetches and hands batches to the event loop; decoding and fetching happen in
librdkafka's C threads, so the loop spends its time on fan-out and websocket writes.

A tail starts at the log end when its first subscriber comes and stops when its last one
leaves; a tenant's reader thread stops with its last tail.

A tail belongs to one topic by its topic id, not only its name. While tails run, a watcher
reads the cluster's metadata version about once a second (at once when a reader reports the
topic unknown), and when a tailed topic is gone, or its name now belongs to a new topic, it
stops that topic's tails, frees their assignments and tells their subscribers
(``Listener.topic_deleted``). A subscriber of a topic made again under the same name never
joins the old topic's tail, so it never gets the old topic's records.

Everything but ``TenantReader._run`` runs on the event loop, so a tail's ``next_offset`` and
its listeners change only there: a subscriber that catches up on its own can compare its
position with the tail's and join it without a gap or a duplicate.
"""

import asyncio
import contextlib
import logging
import queue
import threading
import uuid
from collections import defaultdict
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from brokers.api import wire
from brokers.live import selectors
from brokers.live.record_bodies import SharedRecords
from brokers.live.sync import run_blocking

log = logging.getLogger(__name__)

# How often the watcher looks for deleted topics while tails run.
WATCH_S = 1.0
# Errors by which a reader says a tailed topic may be gone: the watcher looks at once.
_UNKNOWN_TOPIC_ERRORS = frozenset({"UNKNOWN_TOPIC_OR_PARTITION", "UNKNOWN_TOPIC_ID"})


class TopicDeleted(Exception):
    """The topic a subscriber asked for was deleted (perhaps made again) meanwhile."""

    def __init__(self, topic: str):
        super().__init__(f"Topic '{topic}' was deleted.")
        self.topic = topic


class Listener(Protocol):
    def offer(self, partition: int, shared: SharedRecords) -> None: ...

    def tail_error(self, partition: int, message: str) -> None: ...

    def topic_deleted(self, topic: str) -> None: ...


class PartitionTail:
    """The shared reader of one partition: where it is, and who listens."""

    def __init__(self, tenant: str, topic: str, topic_id: uuid.UUID, partition: int):
        self.tenant = tenant
        self.topic = topic
        self.topic_id = topic_id
        self.partition = partition
        self.next_offset = -1
        self.listeners: set[Listener] = set()
        self.started: asyncio.Future = asyncio.get_running_loop().create_future()

    def dispatch(self, records: list[wire.FetchedRecord]) -> None:
        if records[0].offset < self.next_offset:
            records = [r for r in records if r.offset >= self.next_offset]
            if not records:
                return
        self.next_offset = records[-1].offset + 1
        # Record bodies, made once per format for all listeners.
        shared = SharedRecords(records)
        for listener in list(self.listeners):
            listener.offer(self.partition, shared)


class TenantReader:
    """One Consumer and one thread fetching every tailed partition of a tenant."""

    POLL_S = 0.05

    def __init__(self, tenant: str, consumer: Any, loop: asyncio.AbstractEventLoop, deliver):
        self.tenant = tenant
        self.consumer = consumer
        self.loop = loop
        self.deliver = deliver
        self.assigned = 0
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"live-{tenant}", daemon=True)
        self._thread.start()

    def assign(self, topic: str, partition: int, offset: int) -> None:
        self.assigned += 1
        self._commands.put(("assign", TopicPartition(topic, partition, offset)))

    def unassign(self, topic: str, partition: int) -> None:
        self.assigned -= 1
        self._commands.put(("unassign", TopicPartition(topic, partition)))

    def stop(self) -> None:
        self._commands.put(("stop", None))

    def _apply(self, command: str, tp: TopicPartition | None) -> bool:
        if command == "stop":
            self.consumer.close()
            return False
        log.debug("live tail %s: %s %s-%s@%s", self.tenant, command, tp.topic, tp.partition,
                  tp.offset)
        try:
            if command == "assign":
                self.consumer.incremental_assign([tp])
            else:
                self.consumer.incremental_unassign([tp])
        except KafkaException as exc:
            log.warning("live tail %s %s-%s: %s", command, tp.topic, tp.partition, exc)
        return True

    def _run(self) -> None:
        consumer = self.consumer
        has_assignment = False
        while True:
            try:
                # Idle: sleep on the command queue; tailing: check it between fetches.
                command, tp = self._commands.get(timeout=None if not has_assignment else 0)
            except queue.Empty:
                pass
            else:
                if not self._apply(command, tp):
                    return
                has_assignment = bool(consumer.assignment())
                continue
            message = consumer.poll(self.POLL_S)
            if message is None:
                continue
            messages = [message, *consumer.consume(10_000, timeout=0)]
            batches: dict[tuple[str, int], list[wire.FetchedRecord]] = defaultdict(list)
            errors = []
            for m in messages:
                error = m.error()
                if error is None:
                    batches[m.topic(), m.partition()].append(wire.fetched_record(m))
                elif error.code() != KafkaError._PARTITION_EOF:
                    errors.append((m.topic(), m.partition(), wire.kafka_error_name(error),
                                   error.str()))
            self.loop.call_soon_threadsafe(self.deliver, self.tenant, batches, errors)


class TailRegistry:
    """The process's tails and readers, keyed by tenant, topic and partition."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.tails: dict[tuple[str, str, int], PartitionTail] = {}
        self.readers: dict[str, TenantReader] = {}
        self._reader_lock = asyncio.Lock()
        self._watcher: asyncio.Task | None = None
        self._look_now = asyncio.Event()

    async def join(self, tenant: str, topic: str, topic_id: uuid.UUID, partition: int,
                   listener: Listener) -> PartitionTail:
        """The tail of a partition, started at its log end if new, with ``listener`` added.

        Raises TopicDeleted when topic ``topic_id`` is gone.
        """
        key = (tenant, topic, partition)
        while (tail := self.tails.get(key)) is not None and tail.topic_id != topic_id:
            # One of the two topics of this name is gone: end that one's tails first.
            await self.look_for_deleted_topics()
            if self.tails.get(key) is tail:
                raise TopicDeleted(topic)
        if tail is None:
            tail = self.tails[key] = PartitionTail(tenant, topic, topic_id, partition)
            self._watch()
            try:
                ends = await run_blocking(
                    wire.list_offsets, tenant, {topic: [partition]}, wire.LATEST_TIMESTAMP
                )
                reader = await self._reader(tenant)
                if self.tails.get(key) is not tail:
                    raise TopicDeleted(topic)  # ended by the watcher meanwhile
            except BaseException as exc:
                if self.tails.get(key) is tail:
                    del self.tails[key]
                tail.started.set_exception(exc)
                tail.started.exception()  # retrieved: the caller gets it raised below
                self._stop_idle_reader(tenant)
                raise
            tail.next_offset = ends[topic, partition]
            reader.assign(topic, partition, tail.next_offset)
            tail.started.set_result(None)
        else:
            await asyncio.shield(tail.started)
            if self.tails.get(key) is not tail:
                raise TopicDeleted(topic)
        tail.listeners.add(listener)
        return tail

    def leave(self, tail: PartitionTail, listener: Listener) -> None:
        tail.listeners.discard(listener)
        key = (tail.tenant, tail.topic, tail.partition)
        if tail.listeners or self.tails.get(key) is not tail or not tail.started.done():
            return
        self._stop_tail(tail)
        self._stop_idle_reader(tail.tenant)

    def _stop_tail(self, tail: PartitionTail) -> None:
        del self.tails[tail.tenant, tail.topic, tail.partition]
        reader = self.readers.get(tail.tenant)
        if reader is not None and tail.started.done() and tail.started.exception() is None:
            reader.unassign(tail.topic, tail.partition)

    def _stop_idle_reader(self, tenant: str) -> None:
        reader = self.readers.get(tenant)
        if reader is not None and reader.assigned == 0 and not any(
            key[0] == tenant for key in self.tails
        ):
            reader.stop()
            del self.readers[tenant]

    async def _reader(self, tenant: str) -> TenantReader:
        async with self._reader_lock:
            reader = self.readers.get(tenant)
            if reader is None:
                consumer = await run_blocking(wire.live_consumer, tenant)
                reader = self.readers[tenant] = TenantReader(
                    tenant, consumer, self.loop, self._deliver
                )
            return reader

    def _deliver(self, tenant: str, batches: dict, errors: list) -> None:
        for (topic, partition), records in batches.items():
            tail = self.tails.get((tenant, topic, partition))
            if tail is not None:
                tail.dispatch(records)
        for topic, partition, name, text in errors:
            tail = self.tails.get((tenant, topic, partition))
            if tail is None:
                continue
            if name in _UNKNOWN_TOPIC_ERRORS:
                # Most likely deleted: the watcher finds out and tells the subscribers once.
                self.look_soon()
                continue
            for listener in list(tail.listeners):
                listener.tail_error(partition, f"{name}: {text}")

    # --- Deleted topics ----------------------------------------------------------------------

    def look_soon(self) -> None:
        """Have the watcher look for deleted topics now rather than at its next tick."""
        self._look_now.set()

    def _watch(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = self.loop.create_task(self._watch_topics())

    async def _watch_topics(self) -> None:
        """While tails run: every WATCH_S (or when told), end the tails of deleted topics."""
        version: int | None = None
        while self.tails:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._look_now.wait(), WATCH_S)
            if self._look_now.is_set():
                self._look_now.clear()
                version = None
            try:
                version = await self.look_for_deleted_topics(version)
            except Exception:  # the database is away for a moment: look again next time
                log.warning("live tails: could not read topic metadata", exc_info=True)

    async def look_for_deleted_topics(self, known_version: int | None = None) -> int:
        """End the tails of topics that are gone or were made again; the metadata version.

        Reads the topics only when the metadata version is not ``known_version``.
        """
        # Only tails that exist before the read are judged by it: a tail made meanwhile may
        # belong to a topic made after the read.
        topics = {(t.tenant, t.topic, t.topic_id) for t in self.tails.values()}
        names = {(tenant, topic) for tenant, topic, _ in topics}
        version, current = await run_blocking(selectors.changed_topic_ids, known_version, names)
        if current is not None:
            for tenant, topic, topic_id in topics:
                if current.get((tenant, topic)) != topic_id:
                    self._end_topic(tenant, topic, topic_id)
        return version

    def _end_topic(self, tenant: str, topic: str, topic_id: uuid.UUID) -> None:
        """Stop every tail of a deleted topic and tell each of its listeners once."""
        ended = [t for t in self.tails.values()
                 if (t.tenant, t.topic, t.topic_id) == (tenant, topic, topic_id)]
        listeners: dict[Listener, None] = {}
        for tail in ended:
            self._stop_tail(tail)
            listeners.update(dict.fromkeys(tail.listeners))
            tail.listeners.clear()
        self._stop_idle_reader(tenant)
        log.info("live: topic %s/%s was deleted: stopped its %d tail(s), freed their "
                 "assignments, ending %d subscription(s)", tenant, topic, len(ended),
                 len(listeners))
        for listener in listeners:
            listener.topic_deleted(topic)


_registry: TailRegistry | None = None


def registry() -> TailRegistry:
    """The tails of this process (of its running event loop)."""
    global _registry
    if _registry is None or _registry.loop is not asyncio.get_running_loop():
        _registry = TailRegistry()
    return _registry
