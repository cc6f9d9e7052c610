"""Test scaffolding for consumer groups: a listener whose services run the REAL coordinator.

`GroupBroker` extends the data-plane harness (data_test_support.DataBroker: real logs, the real
Metadata, Produce, Fetch and ListOffsets handlers) with brokers/groups' GroupCoordinator over a
store (the Django one by default) and every group handler, so real consumers can join groups.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from data_test_support import TENANT, DataBroker, topic_meta

from brokers.groups.coordinator import GroupCoordinator
from brokers.groups.records import GroupStore
from brokers.groups.settings import GroupSettings
from brokers.protocol.services import Principal

GROUP_HANDLER_MODULES = (
    "brokers.protocol.find_coordinator",
    "brokers.protocol.join_group",
    "brokers.protocol.sync_group",
    "brokers.protocol.heartbeat",
    "brokers.protocol.leave_group",
    "brokers.protocol.offset_commit",
    "brokers.protocol.offset_fetch",
    "brokers.protocol.list_groups",
    "brokers.protocol.describe_groups",
    "brokers.protocol.delete_groups",
)

# Small enough for tests to wait on, inside the clients' own bounds.
FAST_GROUPS = GroupSettings(
    min_session_timeout_ms=1000, max_session_timeout_ms=60_000, initial_rebalance_delay_ms=100
)
TOPIC = "events"
PARTITIONS = 6


def tenant_of(principal: Principal | None) -> str:
    return principal.tenant if principal is not None and principal.tenant else TENANT


class GroupBroker(DataBroker):
    """`with GroupBroker(tmp_path, store) as broker:`; topic `events` with 6 partitions."""

    def __init__(
        self,
        data_dir: Path,
        store: GroupStore,
        settings: GroupSettings = FAST_GROUPS,
    ) -> None:
        super().__init__(data_dir, [topic_meta(TOPIC, PARTITIONS)])
        self.store = store
        self.group_settings = settings
        for module in GROUP_HANDLER_MODULES:
            self.thread.server.registry.register_module(module)
        self.services.groups = self.new_coordinator()  # type: ignore[attr-defined]

    def new_coordinator(self) -> GroupCoordinator:
        return GroupCoordinator(
            self.services.node_id,
            brokers=self.services.metadata.brokers,
            tenant_of=tenant_of,
            store=self.store,
            settings=self.group_settings,
        )

    @property
    def groups(self) -> GroupCoordinator:
        return self.services.groups  # type: ignore[attr-defined]

    def run(self, coroutine: Any, timeout_s: float = 10) -> Any:
        """Await `coroutine` on the server's event loop."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.thread.loop).result(timeout_s)

    def restart_coordinator(self) -> None:
        """A new coordinator over the same store, as after every broker node restarted."""
        self.run(self.groups.close())
        self.services.groups = self.new_coordinator()  # type: ignore[attr-defined]

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.run(self.groups.close())
        finally:
            super().__exit__(*exc_info)


def wait_until(condition: Any, timeout_s: float = 20, poll: Any = None) -> Any:
    """Call `poll()` (e.g. consumers' poll) until `condition()` is truthy; its value."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        if poll is not None:
            poll()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        if poll is None:
            time.sleep(0.05)
