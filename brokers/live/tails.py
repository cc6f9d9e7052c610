"""Shared tails: one reader per (tenant, topic, partition) in a web process, fanned out locally.

A tail follows a partition's log end over the Kafka protocol and hands each new record to
every local subscriber of that partition. Tails of one tenant share one librdkafka Consumer
(``wire.live_consumer``: one long-polling fetch per leader for all of them), served by one
thread that only fetches and hands batches to the event loop; decoding and fetching happen in
librdkafka's C threads, so the loop spends its time on fan-out and websocket writes.

A tail starts at the log end when its first subscriber comes and stops when its last one
leaves; a tenant's reader thread stops with its last tail.

Everything but ``TenantReader._run`` runs on the event loop, so a tail's ``next_offset`` and
its listeners change only there: a subscriber that catches up on its own can compare its
position with the tail's and join it without a gap or a duplicate.
"""

import asyncio
import logging
import queue
import threading
from collections import defaultdict
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from brokers.api import wire
from brokers.live.sync import run_blocking

log = logging.getLogger(__name__)


class Listener(Protocol):
    def offer(self, partition: int, records: list[wire.FetchedRecord], bodies: dict) -> None: ...

    def tail_error(self, partition: int, message: str) -> None: ...


class PartitionTail:
    """The shared reader of one partition: where it is, and who listens."""

    def __init__(self, tenant: str, topic: str, partition: int):
        self.tenant = tenant
        self.topic = topic
        self.partition = partition
        self.next_offset = -1
        self.listeners: set[Listener] = set()
        self.started: asyncio.Future = asyncio.get_running_loop().create_future()

    def dispatch(self, records: list[wire.FetchedRecord]) -> None:
        fresh = [r for r in records if r.offset >= self.next_offset]
        if not fresh:
            return
        self.next_offset = fresh[-1].offset + 1
        # Formatted record bodies, made once per (format, record) for all listeners.
        bodies: dict = {}
        for listener in list(self.listeners):
            listener.offer(self.partition, fresh, bodies)


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

    async def join(self, tenant: str, topic: str, partition: int, listener: Listener
                   ) -> PartitionTail:
        """The tail of a partition, started at its log end if new, with ``listener`` added."""
        key = (tenant, topic, partition)
        tail = self.tails.get(key)
        if tail is None:
            tail = self.tails[key] = PartitionTail(tenant, topic, partition)
            try:
                ends = await run_blocking(
                    wire.list_offsets, tenant, {topic: [partition]}, wire.LATEST_TIMESTAMP
                )
                reader = await self._reader(tenant)
            except BaseException as exc:
                del self.tails[key]
                tail.started.set_exception(exc)
                tail.started.exception()  # retrieved: the caller gets it raised below
                raise
            tail.next_offset = ends[topic, partition]
            reader.assign(topic, partition, tail.next_offset)
            tail.started.set_result(None)
        else:
            await asyncio.shield(tail.started)
        tail.listeners.add(listener)
        return tail

    def leave(self, tail: PartitionTail, listener: Listener) -> None:
        tail.listeners.discard(listener)
        key = (tail.tenant, tail.topic, tail.partition)
        if tail.listeners or self.tails.get(key) is not tail or not tail.started.done():
            return
        del self.tails[key]
        reader = self.readers.get(tail.tenant)
        if reader is None:
            return
        reader.unassign(tail.topic, tail.partition)
        if reader.assigned == 0:
            reader.stop()
            del self.readers[tail.tenant]

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
            if tail is not None:
                for listener in list(tail.listeners):
                    listener.tail_error(partition, f"{name}: {text}")


_registry: TailRegistry | None = None


def registry() -> TailRegistry:
    """The tails of this process (of its running event loop)."""
    global _registry
    if _registry is None or _registry.loop is not asyncio.get_running_loop():
        _registry = TailRegistry()
    return _registry
