"""Helpers for integration tests: free ports and waiting on conditions instead of sleeping."""

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout_s: float = 30, what: str = "condition"):
    """Poll ``condition`` until it returns a truthy value; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except AssertionError:
            raise
        except Exception as exc:  # the thing waited for may not be up yet
            last_error = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}: {last_error!r}")
