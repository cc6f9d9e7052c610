"""The driver-location demo's producer: simulated drivers' positions to a topic, live.

Records go to the broker nodes over the Kafka protocol with confluent-kafka, as the web tier's
clients do (``brokers.api.wire.client_config``), keyed by driver id so that each driver's
updates stay in one partition, in order.
"""

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from confluent_kafka import KafkaError, KafkaException, Producer
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.urls import reverse

from brokers.api.wire import WireError, client_config
from brokers.models import Topic
from brokers.services import TopicAlreadyExists, TopicError, create_topic
from djafka.drivers import DEFAULT_TOPIC, DEMO_TENANT, Simulation
from djafka.models import Tenant

# Simulation ticks at most this long, so updates flow evenly rather than once a second.
MAX_TICK_S = 0.05
# On exit, wait this long at most for records in flight: brokers that are down must not make
# stopping hang; what is still unsent then is reported as not delivered.
FLUSH_TIMEOUT_S = 30.0


class Deliveries:
    """Delivery reports counted as librdkafka serves them (from ``poll`` and ``flush``)."""

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0
        self.last_error: str = ""

    def report(self, error: KafkaError | None, message: object) -> None:
        if error is None:
            self.delivered += 1
        else:
            self.failed += 1
            self.last_error = error.str()


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C (and SIGTERM) ask the loop to stop; it then flushes what it has sent."""
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Command(BaseCommand):
    help = (
        "Simulate drivers moving on a city grid and produce their positions, keyed by driver "
        "id, to a topic (created if missing) until Ctrl-C or --duration. Watch them at "
        "/demo/drivers/."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--drivers", type=int, default=200, help="Drivers (default 200).")
        parser.add_argument(
            "--rate", type=float, default=1.0,
            help="Location updates per second per online driver (default 1).",
        )
        parser.add_argument(
            "--topic", default=DEFAULT_TOPIC, help=f"Topic (default {DEFAULT_TOPIC})."
        )
        parser.add_argument(
            "--tenant", default=DEMO_TENANT,
            help=f"Tenant owning the topic (default {DEMO_TENANT}).",
        )
        parser.add_argument(
            "--partitions", type=int, default=6,
            help="Partitions of the topic when it is created (default 6).",
        )
        parser.add_argument(
            "--duration", type=float, default=None, help="Stop after this many seconds."
        )
        parser.add_argument("--seed", type=int, default=None, help="Random seed (repeatable).")
        parser.add_argument(
            "--report-every", type=float, default=5.0,
            help="Seconds between progress lines (default 5).",
        )

    def handle(
        self, *args: object, drivers: int, rate: float, topic: str, tenant: str, partitions: int,
        duration: float | None, seed: int | None, report_every: float, **options: object,
    ) -> None:
        if drivers <= 0:
            raise CommandError(f"--drivers must be at least 1; {drivers} was given.")
        if not rate > 0:
            raise CommandError(f"--rate must be above 0 updates per second; {rate:g} was given.")
        if duration is not None and not duration > 0:
            raise CommandError(f"--duration must be above 0 seconds; {duration:g} was given.")
        if not report_every > 0:
            raise CommandError(f"--report-every must be above 0 seconds; {report_every:g} given.")
        owner = self._tenant(tenant)
        try:
            config = client_config(owner.name)
        except WireError as exc:
            raise CommandError(f"{exc.message} Start the platform first (./dev run).") from exc
        self._ensure_topic(owner, topic, partitions)
        # The loop needs no database: let go of the connection rather than hold it for hours.
        connections.close_all()

        producer = Producer({
            **config,
            "client.id": "djafka-drivers-demo",
            # Java's partitioner, as Kafka clients in other languages place the same keys.
            "partitioner": "murmur2_random",
            # Retries must not reorder a driver's updates within its partition.
            "enable.idempotence": True,
            "linger.ms": 20,
        })
        simulation = Simulation(drivers, update_interval_s=1 / rate, seed=seed)
        self.stdout.write(
            f"Producing {drivers} drivers at {rate:g} update(s)/s each to '{topic}' of tenant "
            f"'{owner.name}' over Kafka ({config['bootstrap.servers']}). Watch them at "
            f"{reverse('drivers-demo')} on the web tier. Ctrl-C stops."
        )
        deliveries = Deliveries()
        stop = threading.Event()
        started = time.monotonic()
        with stop_on_signals(stop):
            sent = self._run(producer, simulation, topic, deliveries, stop, duration, report_every)
        self.stdout.write(
            f"Stopping: flushing {len(producer)} record(s) in flight "
            f"(for at most {FLUSH_TIMEOUT_S:g} s)..."
        )
        left = producer.flush(FLUSH_TIMEOUT_S)
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"Done after {elapsed:.1f} s: {sent:,} records sent, {deliveries.delivered:,} "
            f"delivered to '{topic}', {deliveries.failed:,} failed."
        )
        if left or deliveries.failed:
            raise CommandError(
                f"{deliveries.failed + left:,} record(s) were not delivered"
                + (f" (last error: {deliveries.last_error})" if deliveries.last_error else "")
                + "."
            )

    def _tenant(self, name: str) -> Tenant:
        tenant = Tenant.objects.filter(name=name).first()
        if tenant is None:
            known = ", ".join(Tenant.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(
                f"Unknown tenant '{name}' (tenants: {known}). `./dev run` creates "
                f"'{DEMO_TENANT}'; make others in admin."
            )
        if not tenant.is_active:
            raise CommandError(f"Tenant '{name}' is inactive.")
        return tenant

    def _ensure_topic(self, tenant: Tenant, name: str, partitions: int) -> None:
        if Topic.objects.filter(tenant=tenant, name=name).exists():
            return
        try:
            create_topic(tenant, name, partition_count=partitions)
        except TopicAlreadyExists:
            return  # created by someone else in the meantime: fine, it is there
        except TopicError as exc:
            raise CommandError(f"Cannot create topic '{name}': {exc.message}") from exc
        self.stdout.write(f"Created topic '{name}' with {partitions} partitions.")

    def _run(
        self, producer: Producer, simulation: Simulation, topic: str, deliveries: Deliveries,
        stop: threading.Event, duration: float | None, report_every: float,
    ) -> int:
        """Step the simulation in real time and produce its updates; the records sent."""
        tick_s = min(MAX_TICK_S, simulation.update_interval_s)
        started = last = time.monotonic()
        ends = started + duration if duration is not None else float("inf")
        reported_at, sent, sent_at_report = started, 0, 0
        while not stop.is_set():
            now = time.monotonic()
            if now >= ends:
                break
            now_ms = time.time_ns() // 1_000_000
            for position in simulation.step(now - last, now_ms):
                if not self._produce(producer, topic, position.driver_id.encode(),
                                     position.encode(), now_ms, deliveries, stop):
                    break  # stopped while the local queue was full
                sent += 1
            last = now
            producer.poll(0)
            if now - reported_at >= report_every:
                rate = (sent - sent_at_report) / (now - reported_at)
                self.stdout.write(
                    f"{time.strftime('%H:%M:%S')}  {sent:,} records sent ({rate:,.0f}/s), "
                    f"{deliveries.delivered:,} delivered, {simulation.online_count()} of "
                    f"{len(simulation.drivers)} drivers online"
                    + (f", {deliveries.failed:,} failed: {deliveries.last_error}"
                       if deliveries.failed else "")
                )
                self.stdout.flush()
                reported_at, sent_at_report = now, sent
            stop.wait(max(0.0, min(now + tick_s, ends) - time.monotonic()))
        return sent

    def _produce(
        self, producer: Producer, topic: str, key: bytes, value: bytes, timestamp_ms: int,
        deliveries: Deliveries, stop: threading.Event,
    ) -> bool:
        """Queue one record; False if asked to stop while waiting for room (it is not sent)."""
        while True:
            try:
                producer.produce(
                    topic, key=key, value=value, timestamp=timestamp_ms,
                    on_delivery=deliveries.report,
                )
                return True
            except BufferError:
                # The local queue is full (brokers slow or down): serve deliveries to make
                # room, but give up when stopping, or Ctrl-C would wait for the brokers.
                if stop.is_set():
                    return False
                producer.poll(0.05)
            except KafkaException as exc:
                deliveries.report(exc.args[0], None)
                return True
