"""How many of a web process's HTTP requests may wait for records at once (REST long polls).

A long poll (a partition read or a group member's poll with ``timeout_ms``) holds one of the
process's HTTP threads while it waits (djafka/asgi_handler.py). Were every thread waiting, no
other request (a produce that would end those waits, an admin page) would be served until one
timed out. So at most ``DJAFKA_WEB_LONG_POLLS`` requests wait at a time (half the threads by
default); past that, a long poll answers at once with what is there, as a poll with
``timeout_ms=0`` would, and its client polls again: slower for it, never a stalled process.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

_lock = threading.Lock()
_slots: threading.BoundedSemaphore | None = None
_slot_count = 0


def _semaphore() -> threading.BoundedSemaphore:
    """The process's slots, made again when the setting changes (tests override it)."""
    global _slots, _slot_count
    wanted = max(1, settings.DJAFKA_WEB_LONG_POLLS)
    with _lock:
        if _slots is None or _slot_count != wanted:
            _slots, _slot_count = threading.BoundedSemaphore(wanted), wanted
        return _slots


@contextmanager
def allowed_wait_ms(timeout_ms: int) -> Iterator[int]:
    """The wait this request may take: ``timeout_ms`` while a slot is free, else 0."""
    if timeout_ms <= 0:
        yield 0
        return
    slots = _semaphore()
    if not slots.acquire(blocking=False):
        yield 0
        return
    try:
        yield timeout_ms
    finally:
        slots.release()
