"""Helpers for the group tests: tenants' principals, a coordinator over a store, and consumer
subscriptions as clients write them."""

from __future__ import annotations

import struct
from collections.abc import Callable

from brokers.groups.coordinator import GroupCoordinator
from brokers.groups.records import GroupStore
from brokers.groups.settings import GroupSettings
from brokers.protocol.services import BrokerEndpoint, Principal

ACME = Principal("acme-key", tenant="acme")
GLOBEX = Principal("globex-key", tenant="globex")
SETTINGS = GroupSettings(initial_rebalance_delay_ms=0, min_session_timeout_ms=100)


def coordinator(
    store: GroupStore,
    brokers: tuple[int, ...] = (1,),
    node_id: int = 1,
    *,
    settings: GroupSettings = SETTINGS,
    clock: Callable[[], float] | None = None,
) -> GroupCoordinator:
    """Broker `node_id`'s coordinator among live `brokers`; the wall clock unless `clock`."""
    endpoints = [BrokerEndpoint(b, "127.0.0.1", 9000 + b) for b in brokers]
    return GroupCoordinator(
        node_id,
        brokers=lambda: endpoints,
        tenant_of=lambda p: p.tenant if p is not None and p.tenant else "acme",
        store=store,
        settings=settings,
        **({"clock_ms": clock} if clock is not None else {}),
    )


def subscription(topics: list[str], *, version: int = 1, tail: bytes = b"") -> bytes:
    """ConsumerProtocolSubscription: version, topics, user data (null), then `tail` (the fields
    later versions add: owned partitions, generation, rack)."""
    data = struct.pack(">hi", version, len(topics))
    for topic in topics:
        data += struct.pack(">h", len(topic.encode())) + topic.encode()
    return data + struct.pack(">i", -1) + tail
