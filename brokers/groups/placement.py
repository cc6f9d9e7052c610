"""Which live broker coordinates a group: a stable choice every broker computes alike.

Kafka maps a group to a partition of __consumer_offsets and its leader coordinates the group.
We have no such topic; instead every broker ranks the live brokers by a hash of (tenant, group,
broker id) and picks the highest (rendezvous hashing). All brokers agree as long as their
snapshots list the same live brokers, and a broker joining or leaving moves only the groups it
gains or held, not most of them (as `hash % n` would). BLAKE2b (well mixed, unlike CRC32
over near-equal keys), never Python's salted hash().
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def coordinator_for(tenant: str, group_id: str, live_broker_ids: Iterable[int]) -> int | None:
    """The coordinator's broker id, or None when no broker is alive."""
    key = f"{tenant}/{group_id}/".encode()
    best: tuple[int, int] | None = None
    for broker_id in live_broker_ids:
        digest = hashlib.blake2b(key + str(broker_id).encode(), digest_size=8).digest()
        score = (int.from_bytes(digest, "big"), -broker_id)
        if best is None or score > best:
            best = score
    return None if best is None else -best[1]
