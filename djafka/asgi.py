"""ASGI entry point: HTTP (admin, REST, pages) and, through Channels, websockets."""

import os

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djafka.settings")

# Django must be set up before anything imports models (websocket routes will).
django_asgi_app = get_asgi_application()

application = ProtocolTypeRouter({"http": django_asgi_app})
