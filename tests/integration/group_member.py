"""One consumer-group member in its own OS process, for tests/integration/test_consumer_groups.py.

    python tests/integration/group_member.py '{"client": "kafka-python", "events": ..., ...}'

It subscribes to a topic with one of kafka-python, aiokafka or confluent-kafka and writes what
happens to it as JSON lines to the ``events`` file, each with ``t`` (time.monotonic(), which is
one clock for every process on Linux): ``assigned`` (an epoch: its partitions and, where the
client shows it, the generation), ``revoked``, ``consumed`` (records whose commit succeeded),
``discarded`` (processed records whose commit failed and could not be retried before the
partitions went: whoever gets them next reads them again), ``stray`` (a record of a partition
it did not hold: always a failure), ``idle``, ``closing``, ``closed``.

Exactly once, honestly: Kafka promises at-least-once across a crash. A record counts as consumed
only once the synchronous commit covering it succeeded, every batch is committed before the next
poll, and the rebalance/revoke callback commits the member's processed position before the
partitions go. So a record is counted twice only if the broker accepted a commit it should have
fenced or handed out an offset other than the committed one.

Signals: SIGUSR1 stops polling once nothing is processed-but-uncommitted and reports ``idle``
(the test then SIGKILLs it, so it dies with nothing to lose and its session expires); SIGUSR2
stops pacing (a 0.1 s "processing time" per batch, which keeps the group busy while the test
changes its membership); SIGTERM commits, closes (LeaveGroup) and exits 0.
"""

import asyncio
import json
import signal
import sys
import time

BATCH = 50
FAST_BATCH = 500
PACE_S = 0.1


class Ledger:
    """What this member holds, has processed and has had committed."""

    def __init__(self, path: str, paced: bool) -> None:
        self.out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life
        self.paced = paced
        self.idle_requested = False
        self.leave_requested = False
        self.epoch = -1
        self.held: set[int] = set()
        self.positions: dict[int, int] = {}
        """partition → the offset after the last processed record (what to commit)."""
        self.pending: list[tuple[int, int]] = []
        """Processed records whose commit has not succeeded yet."""

    @property
    def batch(self) -> int:
        return BATCH if self.paced else FAST_BATCH

    def install_signals(self) -> None:
        signal.signal(signal.SIGUSR1, lambda *_: setattr(self, "idle_requested", True))
        signal.signal(signal.SIGUSR2, lambda *_: setattr(self, "paced", False))
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "leave_requested", True))

    def emit(self, event: str, **fields) -> None:
        self.out.write(json.dumps({"e": event, "t": time.monotonic(), **fields}) + "\n")

    def assigned(self, partitions, generation: int | None) -> None:
        self.epoch += 1
        self.held = set(partitions)
        self.emit("assigned", epoch=self.epoch, partitions=sorted(self.held), gen=generation)

    def revoked(self, partitions) -> None:
        self.emit("revoked", epoch=self.epoch, partitions=sorted(partitions))

    def after_revoke(self, partitions, commit_succeeded: bool) -> None:
        if not commit_succeeded and self.pending:
            self.emit("discarded", epoch=self.epoch, records=self.pending)
            self.pending = []
        for partition in partitions:
            self.positions.pop(partition, None)
        self.held -= set(partitions)

    def process(self, partition: int, offset: int) -> None:
        if partition not in self.held:
            self.emit("stray", epoch=self.epoch, partition=partition, offset=offset)
            return
        self.pending.append((partition, offset))
        self.positions[partition] = offset + 1

    def to_commit(self) -> dict[int, int]:
        return {p: o for p, o in self.positions.items() if p in self.held}

    def committed(self) -> None:
        if self.pending:
            self.emit("consumed", epoch=self.epoch, records=self.pending)
            self.pending = []

    def commit_failed(self, error: BaseException) -> None:
        # Keep the records pending: the revoke that follows (or the next commit) decides.
        self.emit("commit_failed", epoch=self.epoch, error=repr(error), pending=len(self.pending))


def run_kafka_python(config: dict, ledger: Ledger) -> None:
    from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    topic = config["topic"]

    def offsets() -> dict:
        return {
            TopicPartition(topic, p): OffsetAndMetadata(o, "", -1)
            for p, o in ledger.to_commit().items()
        }

    class Listener(AsyncConsumerRebalanceListener):
        # kafka-python 3 runs listeners on its IO thread, where the blocking commit() may not
        # be called: an async listener awaits the commit's future instead.
        async def on_partitions_revoked(self, revoked):
            partitions = {tp.partition for tp in revoked}
            ledger.revoked(partitions)
            ok = True
            if ledger.to_commit():
                try:
                    await consumer.commit_async(offsets())
                    ledger.committed()
                except KafkaError as exc:
                    ledger.commit_failed(exc)
                    ok = False
            ledger.after_revoke(partitions, ok)

        async def on_partitions_assigned(self, assigned):
            generation = consumer._coordinator._generation.generation_id
            ledger.assigned({tp.partition for tp in assigned}, generation)

    consumer = KafkaConsumer(
        **config["sasl_kafka_python"],
        group_id=config["group"],
        client_id=config["name"],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        max_poll_interval_ms=20000,
        max_poll_records=FAST_BATCH,
    )
    consumer.subscribe([topic], listener=Listener())
    while not ledger.leave_requested:
        if ledger.idle_requested and not ledger.pending:
            ledger.emit("idle", epoch=ledger.epoch)
            while True:  # heartbeats go on in the IO thread until the test kills us
                time.sleep(1)
        for messages in consumer.poll(timeout_ms=500, max_records=ledger.batch).values():
            for m in messages:
                ledger.process(m.partition, m.offset)
        if ledger.pending:
            try:
                consumer.commit(offsets())
                ledger.committed()
            except KafkaError as exc:
                ledger.commit_failed(exc)
            if ledger.paced:
                time.sleep(PACE_S)
    ledger.emit("closing", epoch=ledger.epoch)
    consumer.close()  # revokes (the listener commits) and leaves the group
    ledger.emit("closed")


def run_aiokafka(config: dict, ledger: Ledger) -> None:
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
    from aiokafka.errors import KafkaError

    topic = config["topic"]

    async def main() -> None:
        lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, setattr, ledger, "idle_requested", True)
        loop.add_signal_handler(signal.SIGUSR2, setattr, ledger, "paced", False)
        loop.add_signal_handler(signal.SIGTERM, setattr, ledger, "leave_requested", True)

        async def commit() -> bool:
            # The rebalance runs in its own task: a commit from the loop and one from the
            # revoke callback must not interleave.
            async with lock:
                offsets = {TopicPartition(topic, p): o for p, o in ledger.to_commit().items()}
                if not offsets:
                    return True
                try:
                    await consumer.commit(offsets)
                except KafkaError as exc:
                    ledger.commit_failed(exc)
                    return False
                ledger.committed()
                return True

        class Listener(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked):
                partitions = {tp.partition for tp in revoked}
                ledger.revoked(partitions)
                ledger.after_revoke(partitions, await commit())

            async def on_partitions_assigned(self, assigned):
                generation = consumer._coordinator.generation
                ledger.assigned({tp.partition for tp in assigned}, generation)

        consumer = AIOKafkaConsumer(
            **config["sasl_kafka_python"],
            group_id=config["group"],
            client_id=config["name"],
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            max_poll_interval_ms=20000,
            rebalance_timeout_ms=10000,
        )
        consumer.subscribe([topic], listener=Listener())
        await consumer.start()
        while not ledger.leave_requested:
            if ledger.idle_requested and not ledger.pending:
                ledger.emit("idle", epoch=ledger.epoch)
                await asyncio.Event().wait()  # heartbeats go on until the test kills us
            batches = await consumer.getmany(timeout_ms=500, max_records=ledger.batch)
            for messages in batches.values():
                for m in messages:
                    ledger.process(m.partition, m.offset)
            if ledger.pending:
                await commit()
                if ledger.paced:
                    await asyncio.sleep(PACE_S)
        ledger.emit("closing", epoch=ledger.epoch)
        await commit()
        await consumer.stop()  # leaves the group
        ledger.emit("closed")

    asyncio.run(main())


def run_confluent(config: dict, ledger: Ledger) -> None:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    topic = config["topic"]

    def commit(consumer) -> bool:
        offsets = [TopicPartition(topic, p, o) for p, o in ledger.to_commit().items()]
        if not offsets:
            return True
        try:
            results = consumer.commit(offsets=offsets, asynchronous=False)
            errors = [tp.error for tp in results or () if tp.error is not None]
            if errors:
                raise KafkaException(errors[0])
        except KafkaException as exc:
            ledger.commit_failed(exc)
            return False
        ledger.committed()
        return True

    def on_assign(consumer, partitions):
        ledger.assigned({tp.partition for tp in partitions}, None)

    def on_revoke(consumer, partitions):
        revoked = {tp.partition for tp in partitions}
        ledger.revoked(revoked)
        ledger.after_revoke(revoked, commit(consumer))

    consumer = Consumer(
        {
            **config["sasl_confluent"],
            "group.id": config["group"],
            "client.id": config["name"],
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            "max.poll.interval.ms": 20000,
        }
    )
    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    while not ledger.leave_requested:
        if ledger.idle_requested and not ledger.pending:
            ledger.emit("idle", epoch=ledger.epoch)
            while True:  # librdkafka heartbeats from its own threads until the test kills us
                time.sleep(1)
        for m in consumer.consume(num_messages=ledger.batch, timeout=0.5):
            if m.error() is not None:
                ledger.emit("error", error=str(m.error()))
                continue
            ledger.process(m.partition(), m.offset())
        if ledger.pending:
            commit(consumer)
            if ledger.paced:
                time.sleep(PACE_S)
    ledger.emit("closing", epoch=ledger.epoch)
    consumer.close()  # revokes (on_revoke commits) and leaves the group
    ledger.emit("closed")


def main() -> None:
    config = json.loads(sys.argv[1])
    ledger = Ledger(config["events"], paced=config["paced"])
    ledger.install_signals()
    runner = {
        "kafka-python": run_kafka_python,
        "aiokafka": run_aiokafka,
        "confluent-kafka": run_confluent,
    }[config["client"]]
    runner(config, ledger)


if __name__ == "__main__":
    main()
