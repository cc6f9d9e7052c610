"""ASGI entry point: HTTP (admin, REST, pages) and, through Channels, websockets."""

import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djafka.settings")

# Django must be set up before anything imports models (websocket routes will).
django_asgi_app = get_asgi_application()

from brokers.live.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    # The session (for admins on the live page) is read by AuthMiddlewareStack; API keys by
    # the consumer itself (brokers/live/auth.py).
    "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
})
