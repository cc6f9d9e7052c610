"""The web tier's HTTP handler: each request served in one pooled thread, as WSGI serves it.

Driven through the ASGI interface with httpx (no server), against the project's real URLs,
middleware and views.
"""

import asyncio
import threading

import httpx
import pytest
from django.core import signals

from djafka.asgi_handler import PooledThreadASGIHandler


@pytest.fixture
def handler():
    return PooledThreadASGIHandler(threads=2)


def get(handler: PooledThreadASGIHandler, *paths: str, **headers: str) -> list[httpx.Response]:
    """GET ``paths`` concurrently through ``handler``."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return await asyncio.gather(*(http.get(p, headers=headers) for p in paths))

    return asyncio.run(run())


def test_a_view_is_answered_with_its_content_and_headers(handler):
    (answer,) = get(handler, "/api/schema/", Accept="application/vnd.oai.openapi+json")
    assert answer.status_code == 200
    assert answer.json()["paths"]["/api/v1/topics/{name}/records/"]["post"]
    # SecurityMiddleware ran: the whole middleware chain serves each request.
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def record_request_signals() -> tuple[list[tuple[str, str]], object]:
    """(event, thread name) of each request_started/finished from now, and an undo."""
    seen: list[tuple[str, str]] = []

    def started(**_kwargs):
        seen.append(("started", threading.current_thread().name))

    def finished(**_kwargs):
        seen.append(("finished", threading.current_thread().name))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)

    def undo() -> None:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)

    return seen, undo


def test_a_streaming_response_is_read_and_closed_on_its_requests_thread(handler, recwarn):
    # whitenoise serves static files as streaming FileResponses; this one is several chunks.
    from django.contrib.staticfiles import finders

    path = "admin/js/vendor/jquery/jquery.js"
    with open(finders.find(path), "rb") as f:
        expected = f.read()
    assert len(expected) > 3 * handler.chunk_size
    seen, undo = record_request_signals()
    try:
        (answer,) = get(handler, f"/static/{path}")
    finally:
        undo()
    assert answer.status_code == 200
    assert answer.content == expected
    assert [event for event, _ in seen] == ["started", "finished"]
    assert seen[0][1] == seen[1][1] and seen[0][1].startswith("djafka-http")
    # Not Django's async path, which reads a sync iterator whole into memory and says so.
    assert not [w for w in recwarn if "consume synchronous iterators" in str(w.message)]


def test_unknown_paths_are_404s_not_errors(handler):
    (answer,) = get(handler, "/no/such/page/")
    assert answer.status_code == 404


def test_request_signals_fire_once_each_on_the_serving_thread(handler):
    seen, undo = record_request_signals()
    try:
        get(handler, "/api/schema/")
    finally:
        undo()
    assert [event for event, _ in seen] == ["started", "finished"]
    # request_finished closes database connections: it must run where the request ran.
    assert seen[0][1] == seen[1][1]
    assert seen[0][1].startswith("djafka-http")


def test_more_requests_than_threads_are_all_answered_even_first_schema_requests(handler):
    from djafka.schema import SchemaView

    # Generated concurrently, drf-spectacular's schema fails (its state is global): the view
    # generates it once under a lock. Start from a process that has not generated it yet.
    for _ in range(5):
        SchemaView._generated.clear()
        answers = get(handler, *["/api/schema/"] * 8)
        assert [a.status_code for a in answers] == [200] * 8


def test_a_client_gone_before_its_body_arrived_gets_nothing_and_breaks_nothing(handler):
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/v1/topics", "raw_path": b"/api/v1/topics",
        "query_string": b"", "root_path": "", "headers": [],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
    }
    asyncio.run(handler(scope, receive, send))
    assert sent == []
    (answer,) = get(handler, "/api/schema/")
    assert answer.status_code == 200


def test_only_http_is_served(handler):
    async def never() -> dict:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="websocket"):
        asyncio.run(handler({"type": "websocket"}, never, never))
