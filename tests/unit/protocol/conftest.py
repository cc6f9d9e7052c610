"""Fixtures for the wire-protocol tests: a real KafkaServer on 127.0.0.1 in a thread of its own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The repository root (for `brokers`) and this folder (for protocol_test_support) on the path,
# whatever pytest's import mode and whichever __init__.py files exist around us.
_HERE = Path(__file__).resolve().parent
for _path in (_HERE.parents[2], _HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from protocol_test_support import ServerThread, TestServices  # noqa: E402


@pytest.fixture
def services() -> TestServices:
    return TestServices(users={"alice": "alice-secret"})


@pytest.fixture
def server(services: TestServices):
    """A plaintext listener with the default handlers plus the test Metadata handler."""
    with ServerThread(services) as running:
        yield running


@pytest.fixture
def sasl_server(services: TestServices):
    """A SASL_PLAINTEXT listener (SASL/PLAIN required), same handlers."""
    with ServerThread(services, requires_auth=True) as running:
        yield running
