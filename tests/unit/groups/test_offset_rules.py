"""Which offsets a group may lose (brokers/groups/offsets.py): OffsetDelete's and expiry's rules,
and the state timestamp (Empty since) the group keeps for them; pure, with a hand-moved clock."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.groups.group import Group, GroupState
from brokers.groups.offsets import (
    expiry_condition,
    is_subscribed,
    plan_offset_deletion,
    subscribed_topics,
    subscription_topics,
)
from brokers.groups.settings import GroupSettings
from brokers.protocol.errors import ErrorCode
from brokers.protocol.group_services import JoinRequest, LeavingMember, SyncRequest
from tests.unit.groups.group_support import subscription

SETTINGS = GroupSettings(initial_rebalance_delay_ms=0)
RETENTION_MS = 1_000


def stable_group(
    subscriptions: dict[str, bytes], protocol_type: str = "consumer", now: float = 0
) -> Group:
    """A Stable group whose members (by client id) joined with those metadata."""
    ids = iter(range(1, 100))
    group = Group("g", SETTINGS, new_member_id=lambda prefix: f"{prefix}-{next(ids)}")
    members = []
    for client, metadata in subscriptions.items():
        outcome = group.join(
            JoinRequest(
                group_id="g",
                member_id="",
                group_instance_id=None,
                protocol_type=protocol_type,
                protocols=(("range", metadata),),
                session_timeout_ms=10_000,
                rebalance_timeout_ms=10_000,
                client_id=client,
            ),
            now,
        )
        members.append(outcome.member_id)
    for _ in range(3):  # initial delay 0 (extended once while members arrive): the barrier falls
        group.tick(now)
    assert group.state is GroupState.COMPLETING_REBALANCE
    leader = group.leader_id
    assert leader is not None
    group.sync(SyncRequest("g", group.generation_id, leader, None, None, None, {}), now)
    assert group.state is GroupState.STABLE
    return group


def test_subscription_topics_reads_every_version_as_its_v0_prefix():
    assert subscription_topics(subscription(["a", "b"], version=0)) == ("a", "b")
    # v1+ append owned partitions, generation, rack: ignored, as Kafka's coordinator does.
    assert subscription_topics(subscription(["ü"], version=3, tail=b"\x00" * 13)) == ("ü",)
    for malformed in (b"", b"\x00\x00\x00\x00\x00\x02\x00\x01a", struct.pack(">hi", -1, 0)):
        with pytest.raises(ValueError):
            subscription_topics(malformed)


@given(st.lists(st.text(max_size=20), max_size=10), st.integers(0, 3))
def test_subscription_topics_round_trip(topics: list[str], version: int):
    assert subscription_topics(subscription(topics, version=version)) == tuple(topics)


def test_stable_consumer_group_keeps_offsets_of_subscribed_topics_from_offset_delete():
    group = stable_group({"a": subscription(["events"]), "b": subscription(["events", "audit"])})
    assert subscribed_topics(group) == {"events", "audit"}
    plan = plan_offset_deletion(group, [("events", 0), ("other", 1), ("audit", 2)])
    assert plan.error_code == ErrorCode.none
    assert plan.subscribed == (("events", 0), ("audit", 2))
    assert plan.deletable == (("other", 1),)


def test_consumer_group_before_its_first_generation_counts_as_subscribed_to_everything():
    group = Group("g", SETTINGS)
    group.join(
        JoinRequest("g", "", None, "consumer", (("range", subscription(["a"])),), 10_000, 10_000),
        0,
    )
    assert group.state is GroupState.PREPARING_REBALANCE and group.protocol_name is None
    assert subscribed_topics(group) is None and is_subscribed(group, "anything")
    plan = plan_offset_deletion(group, [("anything", 0)])
    assert (plan.error_code, plan.subscribed, plan.deletable) == (0, (("anything", 0),), ())


def test_undecodable_subscription_protects_every_topic():
    group = stable_group({"a": b"\xff\xff garbage"})
    assert subscribed_topics(group) is None
    assert plan_offset_deletion(group, [("x", 0)]).subscribed == (("x", 0),)
    assert expiry_condition(group) is None  # Kafka keeps them: subscriptions unknown


def test_non_empty_group_of_another_protocol_type_refuses_offset_delete():
    group = stable_group({"a": b"connect-metadata"}, protocol_type="connect")
    assert plan_offset_deletion(group, [("x", 0)]).error_code == ErrorCode.non_empty_group
    assert expiry_condition(group) is None


def test_empty_and_standalone_groups_may_lose_every_offset_and_dead_ones_are_not_found():
    group = stable_group({"a": subscription(["events"])})
    member_id = next(iter(group.members))
    group.leave([LeavingMember(member_id)], 5_000)
    assert group.state is GroupState.EMPTY
    plan = plan_offset_deletion(group, [("events", 0)])
    assert (plan.error_code, plan.deletable, plan.subscribed) == (0, (("events", 0),), ())
    standalone = Group("simple", SETTINGS)  # created by a commit with generation -1
    assert plan_offset_deletion(standalone, [("events", 0)]).deletable == (("events", 0),)
    group.mark_dead(6_000)
    assert plan_offset_deletion(group, [("events", 0)]).error_code == (
        ErrorCode.group_id_not_found
    )
    assert expiry_condition(group) is None


def test_state_timestamp_follows_every_transition_and_survives_the_store():
    group = stable_group({"a": subscription(["events"])}, now=100)
    assert group.state_timestamp_ms == 100
    member_id = next(iter(group.members))
    group.leave([LeavingMember(member_id)], 2_500)
    assert (group.state, group.state_timestamp_ms) == (GroupState.EMPTY, 2_500)
    loaded = Group.from_record(group.record("acme"), SETTINGS, now_ms=9_999)
    assert (loaded.state, loaded.state_timestamp_ms) == (GroupState.EMPTY, 2_500)
    stable = stable_group({"a": subscription(["events"])}, now=700)
    assert Group.from_record(stable.record("acme"), SETTINGS, 9_999).state_timestamp_ms == 700


def test_empty_group_offsets_expire_retention_after_it_became_empty_whatever_their_commit():
    group = stable_group({"a": subscription(["events"])})
    group.leave([LeavingMember(next(iter(group.members)))], 5_000)
    condition = expiry_condition(group)
    assert condition is not None
    # Committed long before: still kept until the group has been Empty for the retention.
    assert not condition.is_expired("events", 0, 5_999, RETENTION_MS)
    assert condition.is_expired("events", 0, 6_000, RETENTION_MS)
    # A commit while Empty does not restart the clock (Kafka's rule, KIP-211).
    assert condition.is_expired("events", 5_900, 6_000, RETENTION_MS)


def test_standalone_group_offsets_expire_retention_after_their_own_commit():
    condition = expiry_condition(Group("simple", SETTINGS))
    assert condition is not None
    assert not condition.is_expired("events", 5_000, 5_999, RETENTION_MS)
    assert condition.is_expired("events", 5_000, 6_000, RETENTION_MS)


def test_stable_consumer_group_expires_only_offsets_of_topics_nobody_subscribes_to():
    group = stable_group({"a": subscription(["events"])})
    condition = expiry_condition(group)
    assert condition is not None
    assert not condition.is_expired("events", 0, 10**9, RETENTION_MS)
    assert not condition.is_expired("audit", 0, 999, RETENTION_MS)
    assert condition.is_expired("audit", 0, 1_000, RETENTION_MS)


def test_nothing_expires_during_a_rebalance():
    group = stable_group({"a": subscription(["events"])})
    group.join(
        JoinRequest("g", "", None, "consumer", (("range", subscription(["b"])),), 10_000, 10_000),
        10,
    )
    assert group.state is GroupState.PREPARING_REBALANCE
    assert expiry_condition(group) is None
