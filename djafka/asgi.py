"""ASGI entry point: HTTP (admin, REST, pages) and, through Channels, websockets."""

import gc
import os

import django
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djafka.settings")


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler with the middleware chain and the view run in one worker thread.

    Every view here is synchronous (DRF, admin, pages; websockets go through Channels below).
    Django's own handler builds an async chain: each async-capable middleware awaits its
    process_request/process_response in a worker thread, the chain crosses back to the event
    loop before the view, and the view runs in a thread again, several thread hops and GIL
    hand-offs per request. Built synchronously (as under WSGI) and entered once, a request
    costs one hop (measured: REST produce of 1,000-record batches through one web process,
    about 20% more records/s). An async view would still work: Django's sync path runs it
    with async_to_sync.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)


# Django must be set up before anything imports models (websocket routes will).
django.setup(set_prefix=False)
django_asgi_app = SyncChainASGIHandler()

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
