"""Blocking calls (the database, librdkafka's admin round trips) run off the event loop."""

from collections.abc import Callable
from typing import Any

from channels.db import DatabaseSyncToAsync


async def run_blocking(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``func(*args, **kwargs)`` in a worker thread, its database connection cleaned up.

    Not thread-sensitive: a slow ListOffsets or catch-up fetch of one socket must not queue
    every other socket's calls behind it on Django's single sync thread.
    """
    return await DatabaseSyncToAsync(func, thread_sensitive=False)(*args, **kwargs)
