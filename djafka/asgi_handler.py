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
the loop. A streaming response (a static file) is read on its request's thread, as a WSGI
server reads it, each chunk handed to the loop to send as it is read (Django's async path
would read it whole into memory, on asgiref's one shared thread), and closed there.

A request holds one pool thread while its view runs, as under a threaded WSGI server: a REST
long poll holds one for its wait (brokers/api/long_polls.py keeps those to a share of the
pool). ``DJAFKA_WEB_THREADS`` sizes the pool (requests beyond it queue; none is refused).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
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
            response = await loop.run_in_executor(
                self._executor, self._respond, scope, body_file, send, loop
            )
            if response is not None:
                await self.send_response(response, send)
        finally:
            body_file.close()

    def _respond(
        self, scope: dict, body_file: Any, send: Any, loop: asyncio.AbstractEventLoop
    ) -> HttpResponseBase | None:
        """The response, closed with its content in memory; None once a streaming response
        has been sent (from this thread) and closed."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
        response._handler_class = self.__class__
        try:
            if not response.streaming:
                return response
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size  # as Django's handler: 64 KiB reads
            self._stream(response, send, loop)
            return None
        finally:
            response.close()  # request_finished: database connections tidied on this thread

    def _stream(
        self, response: HttpResponseBase, send: Any, loop: asyncio.AbstractEventLoop
    ) -> None:
        """Send a streaming response chunk by chunk as it is read, each send awaited (the
        socket's pace sets the reading's)."""

        def deliver(message: dict) -> None:
            asyncio.run_coroutine_threadsafe(send(message), loop).result()

        headers = [
            (name.encode("ascii") if isinstance(name, str) else bytes(name),
             value.encode("latin1") if isinstance(value, str) else bytes(value))
            for name, value in response.items()
        ]
        headers.extend(
            (b"Set-Cookie", cookie.output(header="").encode("ascii").strip())
            for cookie in response.cookies.values()
        )
        deliver({"type": "http.response.start", "status": response.status_code,
                 "headers": headers})
        for part in response:
            for chunk, _last in self.chunk_bytes(part):
                deliver({"type": "http.response.body", "body": chunk, "more_body": True})
        deliver({"type": "http.response.body"})
