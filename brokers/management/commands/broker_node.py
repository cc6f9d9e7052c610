"""Start a broker node: a Celery worker with the broker-node bootstep and its own queue."""

import os
import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Start broker node ID: a Celery worker that serves the Kafka protocol on --port and "
        "consumes the control queue broker.ID. Start more with other ids and ports."
    )

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--id", type=int, required=True, help="The broker id (>= 0).")
        parser.add_argument("--host", default="127.0.0.1", help="Kafka listener address.")
        parser.add_argument("--port", type=int, default=9092, help="Kafka listener port.")
        parser.add_argument("--advertised-host", default=None)
        parser.add_argument("--advertised-port", type=int, default=None)
        parser.add_argument("--rack", default="")
        parser.add_argument("--data-dir", default=None)
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args: object, **options: object) -> None:
        broker_id = options["id"]
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "djafka",
            "worker",
            "--broker-id",
            str(broker_id),
            "--kafka-host",
            str(options["host"]),
            "--kafka-port",
            str(options["port"]),
            "--rack",
            str(options["rack"]),
            # Control commands run beside the node in its process, so a thread pool.
            "--pool",
            "threads",
            "--concurrency",
            "2",
            "-Q",
            f"broker.{broker_id}",
            "--hostname",
            f"broker{broker_id}@%h",
            "--loglevel",
            str(options["loglevel"]),
            "--without-mingle",
            "--without-gossip",
        ]
        for name in ("advertised_host", "advertised_port", "data_dir"):
            if options[name] is not None:
                argv += [f"--{name.replace('_', '-')}", str(options[name])]
        os.execv(sys.executable, argv)
