"""WSGI entry point (admin and REST only; websockets need the ASGI entry point)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djafka.settings")

application = get_wsgi_application()
