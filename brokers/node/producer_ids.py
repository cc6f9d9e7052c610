"""Producer ids for InitProducerId: blocks claimed from the database, handed out in memory.

As Kafka's ProducerIdManager: the cluster's next unclaimed id lives in one place
(``ClusterState.next_producer_id``); a broker node claims a block of ``BLOCK_SIZE`` ids by
advancing it atomically, then hands the block out without asking again. Ids are unique across
nodes and restarts; a restart wastes the rest of its block, as Kafka's does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.db import close_old_connections, models, transaction

from brokers.models import ClusterState

BLOCK_SIZE = 1000  # Kafka's ProducerIdsBlock size


def claim_block(size: int = BLOCK_SIZE) -> int:
    """Advance the cluster's next producer id by ``size``; the first id of the claimed block."""
    with transaction.atomic():
        ClusterState.get()  # the row exists from here on
        ClusterState.objects.filter(pk=1).update(
            next_producer_id=models.F("next_producer_id") + size
        )
        # In the same transaction: the row is ours until commit, so this reads our own update.
        end = ClusterState.objects.filter(pk=1).values_list("next_producer_id", flat=True)[0]
    return end - size


@sync_to_async(thread_sensitive=False)
def _claim_block_async(size: int) -> int:
    close_old_connections()
    return claim_block(size)


class ProducerIdAllocator:
    """One broker node's producer ids: ``await allocate()`` on the node's event loop."""

    def __init__(
        self,
        claim: Callable[[int], Awaitable[int]] = _claim_block_async,
        block_size: int = BLOCK_SIZE,
    ) -> None:
        self._claim = claim
        self._block_size = block_size
        self._next = 0
        self._end = 0  # the block is used up when _next reaches _end
        self._lock = asyncio.Lock()  # one claim at a time; others wait for its block

    async def allocate(self) -> int:
        async with self._lock:
            if self._next >= self._end:
                start = await self._claim(self._block_size)
                self._next, self._end = start, start + self._block_size
            producer_id = self._next
            self._next += 1
            return producer_id
