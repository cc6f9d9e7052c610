"""Replica placement: which broker nodes hold each new partition, and which leads it.

Follows the shape of Kafka's assignment for new topics: leaders go round-robin over the brokers
from a random start, followers are shifted so that replicas of consecutive partitions spread
over different brokers, and when brokers have racks each partition's replicas take distinct
racks before any rack is used twice.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BrokerSlot:
    """What placement needs to know of a broker node."""

    id: int
    rack: str = ""


class PlacementError(ValueError):
    """More replicas asked for than there are live broker nodes."""


def interleave_by_rack(brokers: Sequence[BrokerSlot]) -> list[BrokerSlot]:
    """Order brokers so that consecutive ones sit in different racks: a1, b1, c1, a2, b2, ..."""
    racks: dict[str, list[BrokerSlot]] = {}
    for broker in sorted(brokers, key=lambda b: b.id):
        racks.setdefault(broker.rack, []).append(broker)
    columns = [racks[name] for name in sorted(racks)]
    ordered: list[BrokerSlot] = []
    for i in range(max((len(c) for c in columns), default=0)):
        ordered.extend(column[i] for column in columns if i < len(column))
    return ordered


def assign_replicas(
    brokers: Sequence[BrokerSlot],
    partition_count: int,
    replication_factor: int,
    first_partition: int = 0,
    start: int | None = None,
    rng: random.Random | None = None,
) -> dict[int, list[int]]:
    """Replica lists (preferred leader first) for partitions ``first_partition`` onwards."""
    if replication_factor < 1:
        raise PlacementError("Replication factor must be at least 1.")
    if replication_factor > len(brokers):
        raise PlacementError(
            f"Replication factor {replication_factor} is larger than the "
            f"{len(brokers)} live broker node(s)."
        )
    rng = rng or random.Random()
    ordered = interleave_by_rack(brokers)
    n = len(ordered)
    if start is None:
        start, shift = rng.randrange(n), rng.randrange(max(n - 1, 1))
    else:
        start, shift = start % n, 0
    assignment: dict[int, list[int]] = {}
    for partition in range(first_partition, first_partition + partition_count):
        leader_index = (start + partition) % n
        # After each full turn of leaders, shift followers so the same pairs don't repeat.
        shift_now = shift + partition // n
        chosen = [ordered[leader_index]]
        used_racks = {ordered[leader_index].rack}
        candidates = (
            [ordered[(leader_index + 1 + (shift_now + j) % (n - 1)) % n] for j in range(n - 1)]
            if n > 1
            else []
        )
        # Prefer a broker in a rack not used yet; fall back to any broker in order.
        for prefer_new_rack in (True, False):
            for broker in candidates:
                if len(chosen) == replication_factor:
                    break
                if broker in chosen or (prefer_new_rack and broker.rack in used_racks):
                    continue
                chosen.append(broker)
                used_racks.add(broker.rack)
        assignment[partition] = [b.id for b in chosen]
    return assignment
