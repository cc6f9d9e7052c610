"""Fixtures for the group coordinator's unit tests: an in-memory GroupStore."""

from __future__ import annotations

import pytest

from brokers.groups.memory_store import InMemoryGroupStore

TOPICS = {("acme", "events"): 6, ("acme", "audit"): 2, ("globex", "orders"): 2}


@pytest.fixture
def store() -> InMemoryGroupStore:
    return InMemoryGroupStore(lambda tenant, topic: TOPICS.get((tenant, topic)))
