"""The Celery app: control-plane tasks for broker nodes, the controller, connectors and streams."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djafka.settings")

app = Celery("djafka")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
