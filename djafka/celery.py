"""The Celery app: control-plane tasks for broker nodes, the controller, connectors and streams."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djafka.settings")

app = Celery("djafka")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Broker nodes are workers started with --broker-id (see brokers/node/bootstep.py).
from brokers.node.bootstep import install as install_broker_node  # noqa: E402

install_broker_node(app)
