"""The Celery bootstep that turns a worker into a broker node, and its command-line options.

``celery -A djafka worker --broker-id 1 --kafka-port 9092`` starts a worker that also registers
broker 1, opens its replicas, serves the Kafka protocol and consumes the queue ``broker.1`` for
control commands. Without ``--broker-id`` the worker is a plain worker (controller, connectors).
"""

import logging

import click
from celery import Celery, bootsteps

log = logging.getLogger(__name__)

OPTIONS = [
    click.Option(["--broker-id"], type=int, default=None, help="Run as broker node with this id."),
    click.Option(["--kafka-host"], default="127.0.0.1", help="Kafka listener address."),
    click.Option(["--kafka-port"], type=int, default=9092, help="Kafka listener port (0: any)."),
    click.Option(["--advertised-host"], default=None, help="Host clients connect to."),
    click.Option(["--advertised-port"], type=int, default=None, help="Port clients connect to."),
    click.Option(["--rack"], default="", help="Rack (or zone) of this broker node."),
    click.Option(["--data-dir"], default=None, help="Where replicas live (default under var/)."),
]


class BrokerNodeStep(bootsteps.StartStopStep):
    """Starts the broker node beside the worker's consumer and stops it before the pool."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: object, broker_id: int | None = None, **options: object) -> None:
        super().__init__(worker, **options)
        self.broker_id = broker_id
        self.options = options
        self.node = None
        if broker_id is not None:
            # The node's own control queue, beside whatever -Q named.
            worker.app.amqp.queues.select_add(f"broker.{broker_id}")

    def include_if(self, worker: object) -> bool:
        return self.broker_id is not None

    def start(self, worker: object) -> None:
        from brokers.node.node import BrokerNode, NodeSettings

        settings = NodeSettings.from_options(self.broker_id, self.options)
        self.node = BrokerNode(settings)
        self.node.start()

    def stop(self, worker: object) -> None:
        if self.node is not None:
            self.node.stop()
            self.node = None


def install(app: Celery) -> None:
    """Add the broker-node options and bootstep to ``app``'s worker."""
    for option in OPTIONS:
        app.user_options["worker"].add(option)
    app.steps["worker"].add(BrokerNodeStep)
