"""Django's HTTP side under ASGI, served as WSGI serves it: each request in one pooled thread.

Every view here is synchronous (DRF, admin, pages; websockets go through Channels). Django's own
ASGIHandler crosses between the event loop and worker threads several times per request: the
request_started signal's receivers, the middleware chain and view, and ``response.close()``
(request_finished) each run through ``sync_to_async``; and inside its per-request
``ThreadSensitiveContext`` asgiref starts a new thread for them, for every request. Under
load that is a large share of the web tier's time (measured with REST produce of
1,000-record batches through one web process: see bench/rest_bench.py).

This handler reads the body on the event loop, then does in one call on a long-lived thread
pool what Django's WSGIHandler does per request (script prefix, request_started, the
request, the middleware chain and view, the content, ``close()``), and sends the answer from
the loop. Streaming responses (static files, exports) are sent by Django's own async path,
then closed on the pool.

A request holds one pool thread while its view runs, as under a threaded WSGI server: a REST
long poll holds one for its wait. ``DJAFKA_WEB_THREADS`` sizes the pool (requests beyond it
queue; none is refused).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import HttpResponseBase
from django.urls import set_script_prefix


class PooledThreadASGIHandler(ASGIHandler):
    """Django's ASGI handler with each request served in one hop to a pool thread."""

    def __init__(self, threads: int):
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="djafka-http")
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        # The synchronous chain, as under WSGI: the whole request runs in its pool thread.
        super().load_middleware(is_async=False)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django serves only HTTP here, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(self._executor, self._respond, scope, body_file)
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:  # its content was read while sending: close it now
                    await loop.run_in_executor(self._executor, response.close)
        finally:
            body_file.close()

    def _respond(self, scope: dict, body_file: Any) -> HttpResponseBase:
        """The response; unless it streams, already closed with its content in memory."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
        response._handler_class = self.__class__
        if not response.streaming:
            response.close()  # request_finished: database connections are tidied on this thread
        return response
