"""Replica placement spreads leaders and replicas over broker nodes and racks."""

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.controller.placement import BrokerSlot, PlacementError, assign_replicas


def brokers(n: int, racks: int = 0) -> list[BrokerSlot]:
    return [BrokerSlot(i + 1, f"r{i % racks}" if racks else "") for i in range(n)]


def test_leaders_go_round_robin_over_brokers():
    assignment = assign_replicas(brokers(3), 6, 1, start=0)
    assert [replicas[0] for replicas in assignment.values()] == [1, 2, 3, 1, 2, 3]


def test_new_partitions_continue_after_existing_ones():
    assignment = assign_replicas(brokers(3), 2, 1, first_partition=6, start=0)
    assert list(assignment) == [6, 7]


def test_replication_factor_above_broker_count_is_refused():
    with pytest.raises(PlacementError, match="larger than the 2 live"):
        assign_replicas(brokers(2), 1, 3)


def test_replicas_of_a_partition_take_distinct_racks_first():
    slots = brokers(6, racks=3)
    rack_of = {b.id: b.rack for b in slots}
    for replicas in assign_replicas(slots, 12, 3).values():
        assert len({rack_of[b] for b in replicas}) == 3


@given(
    n=st.integers(1, 9),
    rf=st.integers(1, 9),
    partitions=st.integers(1, 40),
    racks=st.integers(0, 4),
    start=st.integers(0, 100),
)
def test_every_partition_gets_rf_distinct_live_brokers(n, rf, partitions, racks, start):
    slots = brokers(n, racks)
    if rf > n:
        with pytest.raises(PlacementError):
            assign_replicas(slots, partitions, rf, start=start)
        return
    assignment = assign_replicas(slots, partitions, rf, start=start)
    ids = {b.id for b in slots}
    assert len(assignment) == partitions
    for replicas in assignment.values():
        assert len(replicas) == len(set(replicas)) == rf
        assert set(replicas) <= ids
    # Leaders are balanced: no broker leads more than one partition above another.
    leaders = Counter(replicas[0] for replicas in assignment.values())
    counts = [leaders.get(i, 0) for i in ids]
    assert max(counts) - min(counts) <= 1
