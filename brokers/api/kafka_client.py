"""A tenant's view of the cluster for the web tier: leaders from Metadata, and connections.

``TenantCluster`` keeps a topic's leaders, cached until an answer says they moved, one shared
connection per node (over kafka_connection.py, logged in as the tenant), and idle connections
for fetches that may wait. kafka_producer.py produces and kafka_reader.py reads through it, on
the web client's event loop (web_client.py).

No Django here: the caller passes addresses and credentials.
"""

from __future__ import annotations

import asyncio
import importlib
import random
import time
from dataclasses import dataclass

from brokers.api.kafka_connection import (
    ConnectionFailed,
    KafkaClientError,
    KafkaConnection,
)
from brokers.protocol import codec
from brokers.protocol.errors import ErrorCode, error_name

__all__ = ("Credentials", "KafkaClientError", "TenantCluster")

METADATA_VERSION = 12

# A Metadata answer is trusted this long without any error saying a leader moved.
METADATA_MAX_AGE_S = 30.0
# Connections kept idle per node for fetches (each fetch has one to itself while it runs).
IDLE_FETCH_CONNECTIONS_PER_NODE = 8

_metadata = importlib.import_module(codec.request_type(3, METADATA_VERSION).__module__)


@dataclass(slots=True)
class Credentials:
    username: str
    password: str


@dataclass(slots=True)
class _Leaders:
    by_partition: dict[int, int]
    fetched_at: float


class TenantCluster:
    """A tenant's leaders and connections; every method runs on the client's event loop."""

    def __init__(self, tenant: str, credentials: Credentials, client_id: str):
        self.tenant = tenant
        # Where to ask for metadata before any answer named the nodes (set by the caller).
        self.bootstrap: list[tuple[str, int]] = []
        self._credentials = credentials
        self._client_id = client_id
        self._nodes: dict[int, tuple[str, int]] = {}
        self._leaders: dict[str, _Leaders] = {}
        self._connections: dict[int | tuple[str, int], KafkaConnection] = {}
        self._connecting: dict[int | tuple[str, int], asyncio.Future] = {}
        self._idle: dict[int, list[KafkaConnection]] = {}

    @property
    def nodes(self) -> dict[int, tuple[str, int]]:
        """Node id -> address, as the last Metadata answer named them."""
        return self._nodes

    @property
    def needs_bootstrap(self) -> bool:
        """True until a Metadata answer has named the nodes (or after all of them failed)."""
        return not self._nodes

    async def _connection(
        self, key: int | tuple[str, int], address: tuple[str, int], deadline: float
    ) -> KafkaConnection:
        """The open connection for ``key`` (a node id, or an address before metadata)."""
        connection = self._connections.get(key)
        if connection is not None and not connection.closed:
            return connection
        waiting = self._connecting.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        waiting = self._connecting[key] = asyncio.get_running_loop().create_future()
        try:
            connection = await self._open(address, deadline)
        except BaseException as exc:
            waiting.set_exception(exc)
            waiting.exception()  # retrieved: only the waiters care
            raise
        finally:
            del self._connecting[key]
        self._connections[key] = connection
        waiting.set_result(connection)
        return connection

    async def _any_connection(self, deadline: float) -> KafkaConnection:
        for connection in self._connections.values():
            if not connection.closed:
                return connection
        failures = []
        candidates = list(self._nodes.items()) or [(a, a) for a in self.bootstrap]
        random.shuffle(candidates)
        for key, address in candidates:
            try:
                return await self._connection(key, address, deadline)
            except ConnectionFailed as exc:
                failures.append(exc.message)
        # Nothing known answers: the next request starts again from the caller's bootstrap.
        self._nodes = {}
        raise KafkaClientError(
            "BROKER_NOT_AVAILABLE",
            "No broker node could be reached" + (f": {failures[0]}" if failures else "."),
        )

    async def leaders(self, topic: str, deadline: float, refresh: bool = False) -> dict[int, int]:
        """Partition -> leader node id (-1 while a partition has none) of ``topic``."""
        cached = self._leaders.get(topic)
        if cached and not refresh and time.monotonic() - cached.fetched_at < METADATA_MAX_AGE_S:
            return cached.by_partition
        request = _metadata.MetadataRequest(
            topics=(_metadata.MetadataRequestTopic(topic_id=None, name=topic),),
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        )
        connection = await self._any_connection(deadline)
        answer = await connection.request(request, deadline)
        self._nodes = {int(b.node_id): (b.host, int(b.port)) for b in answer.brokers}
        for node_id, address in self._nodes.items():
            # Bootstrap connections were keyed by address; key them by node id from now on.
            known = self._connections.pop(address, None)
            if known is not None and node_id not in self._connections:
                self._connections[node_id] = known
        (described,) = answer.topics
        if described.error_code != ErrorCode.none:
            self._leaders.pop(topic, None)
            name = error_name(described.error_code)
            raise KafkaClientError(name, f"Metadata for '{topic}' answered {name}.")
        by_partition = {int(p.partition_index): int(p.leader_id) for p in described.partitions}
        self._leaders[topic] = _Leaders(by_partition, time.monotonic())
        return by_partition

    def forget_leaders(self, topic: str) -> None:
        """An answer said a leader of ``topic`` moved: ask Metadata again next time."""
        self._leaders.pop(topic, None)

    def _node(self, node_id: int) -> tuple[str, int]:
        address = self._nodes.get(node_id)
        if address is None:
            raise KafkaClientError(
                "LEADER_NOT_AVAILABLE", f"Broker {node_id} is not in the last Metadata answer."
            )
        return address

    async def connection_to(self, node_id: int, deadline: float) -> KafkaConnection:
        """The node's shared connection, for requests the broker answers at once."""
        return await self._connection(node_id, self._node(node_id), deadline)

    async def borrow_connection(self, node_id: int, deadline: float) -> KafkaConnection:
        """A connection to the node for one request at a time; ``give_back`` it after.

        A broker answers a connection's requests in order, so a Fetch that may wait (long
        poll) on the shared connection would hold up every request behind it.
        """
        idle = self._idle.get(node_id)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        return await self._open(self._node(node_id), deadline)

    async def _open(self, address: tuple[str, int], deadline: float) -> KafkaConnection:
        """A new connection to ``address``, logged in as the tenant; closed if that fails
        (a login that timed out or was cancelled would leave its socket open)."""
        connection = KafkaConnection(*address, self._client_id)
        try:
            await connection.open(self._credentials.username, self._credentials.password,
                                  deadline)
        except BaseException:
            connection.close()
            raise
        return connection

    def give_back(self, node_id: int, connection: KafkaConnection) -> None:
        """A borrowed connection with no request in flight, kept for the next fetch."""
        idle = self._idle.setdefault(node_id, [])
        if connection.closed or len(idle) >= IDLE_FETCH_CONNECTIONS_PER_NODE:
            connection.close()
        else:
            idle.append(connection)

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
