"""ASGI entry point: HTTP (admin, REST, pages) and, through Channels, websockets."""

import gc
import os

import django
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djafka.settings")

# Django must be set up before anything imports models (websocket routes will).
django.setup(set_prefix=False)

from djafka.asgi_handler import PooledThreadASGIHandler  # noqa: E402

django_asgi_app = PooledThreadASGIHandler(settings.DJAFKA_WEB_THREADS)

from brokers.live.routing import websocket_urlpatterns  # noqa: E402

# A REST produce of 1,000 records allocates thousands of short-lived containers; with Python's
# default thresholds that runs the cyclic collector several times per request, each pass also
# walking Django's long-lived objects (measured: a third of the web tier's time under load).
# Everything loaded so far lives as long as the process: freeze it out of the collector's
# scans, and collect the young generation less often. (This holds in any process importing
# this module, the test runner's included; it changes when garbage is collected, not what.)
gc.freeze()
gc.set_threshold(100_000, 50, 100)

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    # The session (for admins on the live page) is read by AuthMiddlewareStack; API keys by
    # the consumer itself (brokers/live/auth.py).
    "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
})
