"""Offset expiry (KIP-211) seen from outside: with a tiny offsets.retention, committed offsets
disappear from OffsetFetch and from the CommittedOffset rows, on a listener running the real
coordinator and on a whole broker node configured through Django settings."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime

import pytest
from group_test_support import FAST_GROUPS, TOPIC, wait_until
from kio.schema.leave_group.v3.request import LeaveGroupRequest, MemberIdentity
from offsets_test_support import AUDIT, commit, committed, join_and_sync, offsets_broker
from protocol_test_support import WireClient

from brokers.protocol.errors import ErrorCode

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

RETENTION_MS = 1_000


def stored(group_id: str) -> dict[tuple[str, int], int]:
    from brokers.models import CommittedOffset

    rows = CommittedOffset.objects.filter(group__group_id=group_id).select_related("topic")
    return {(r.topic.name, r.partition): r.offset for r in rows}


def group_row(group_id: str):  # type: ignore[no-untyped-def]
    from brokers.models import ConsumerGroup

    return ConsumerGroup.objects.filter(group_id=group_id).first()


def test_subscribed_offsets_outlive_the_retention_until_the_group_has_been_empty_that_long(
    tenant, tmp_path
):
    settings = dataclasses.replace(
        FAST_GROUPS, offsets_retention_ms=RETENTION_MS, offsets_retention_check_interval_ms=50
    )
    with offsets_broker(tmp_path, tenant, settings) as broker, broker.wire() as wire:
        member_id, generation = join_and_sync(wire, "members", [TOPIC])
        offsets = {(TOPIC, 0): 7, (AUDIT, 0): 8}
        assert set(commit(wire, "members", offsets, (member_id, generation)).values()) == {
            ErrorCode.none
        }
        assert stored("members") == offsets
        broker.run(broker.groups.start())

        # Stable, subscribed to `events`: only `audit`'s offset expires, retention after commit.
        wait_until(lambda: committed(wire, "members") == {(TOPIC, 0): 7}, timeout_s=30)
        assert stored("members") == {(TOPIC, 0): 7}
        assert group_row("members").state == "Stable"

        left = wire.call(
            LeaveGroupRequest(
                group_id="members",
                members=(MemberIdentity(member_id=member_id, group_instance_id=None),),
            )
        )
        assert left.error_code == ErrorCode.none
        broker.run(broker.groups.flush())
        emptied = group_row("members")
        assert emptied.state == "Empty"
        assert emptied.state_changed_at > datetime.datetime.now(datetime.UTC) - (
            datetime.timedelta(milliseconds=RETENTION_MS)
        )
        # Empty for the retention: its offsets go, then the group itself.
        wait_until(lambda: committed(wire, "members") == {}, timeout_s=30)
        wait_until(lambda: group_row("members") is None, timeout_s=30)
        assert stored("members") == {}


def test_broker_node_expires_standalone_offsets_by_its_django_settings(
    tenant, tmp_path, settings
):
    from brokers.models import Topic
    from brokers.node.node import BrokerNode, NodeSettings

    settings.DJAFKA_OFFSETS_RETENTION_MINUTES = RETENTION_MS / 60_000
    settings.DJAFKA_OFFSETS_RETENTION_CHECK_INTERVAL_MS = 50
    settings.DJAFKA_KAFKA_OPEN_TENANT = tenant.name
    Topic.objects.create(tenant=tenant, name=TOPIC, partition_count=3)
    node = BrokerNode(NodeSettings.from_options(1, {"data_dir": tmp_path / "broker-1"}))
    node.start()
    try:
        group_settings = node.services.groups.settings
        assert group_settings.offsets_retention_ms == RETENTION_MS
        assert group_settings.offsets_retention_check_interval_ms == 50
        with WireClient(node.server.address) as wire:
            assert commit(wire, "standalone", {(TOPIC, 1): 3}) == {(TOPIC, 1): ErrorCode.none}
            assert stored("standalone") == {(TOPIC, 1): 3}
            wait_until(lambda: committed(wire, "standalone") == {}, timeout_s=30)
        assert stored("standalone") == {}
        wait_until(lambda: group_row("standalone") is None, timeout_s=30)
    finally:
        node.stop()


def test_django_store_expiry_queries_and_guards(tenant):
    from brokers.groups.records import GroupRecord
    from brokers.models import Topic
    from brokers.node.group_store import DjangoGroupStore
    from brokers.protocol.group_services import OffsetToCommit

    Topic.objects.create(tenant=tenant, name=TOPIC, partition_count=3)
    base_ms = 1_700_000_000_123.456  # sub-millisecond: times must round-trip exactly

    async def scenario() -> None:
        store = DjangoGroupStore()
        assert await store.commit_offsets("acme", "g", [OffsetToCommit(TOPIC, 0, 1)], base_ms)
        assert await store.offset_commit_times("acme", "g") == {(TOPIC, 0): base_ms}
        assert await store.expiry_candidates(base_ms - 1) == []
        assert await store.expiry_candidates(base_ms) == [("acme", "g")]
        # Committed again after the expiry looked (at base_ms - 1): it stays, and so does g.
        partition = [(TOPIC, 0)]
        assert await store.delete_offsets("acme", "g", partition, committed_up_to_ms=base_ms - 1)
        assert not await store.delete_group_without_offsets("acme", "g")
        assert not await store.delete_offsets("acme", "g", partition, committed_up_to_ms=base_ms)
        assert await store.delete_group_without_offsets("acme", "g")
        assert await store.load_group("acme", "g") is None

        empty = GroupRecord("acme", "e", "Empty", "consumer", "", 3, "", (), base_ms + 5_000)
        await store.save_group(empty)
        assert (await store.load_group("acme", "e")).state_timestamp_ms == base_ms + 5_000
        assert await store.expiry_candidates(base_ms) == [("acme", "e")]  # Empty, no offsets
        await store.commit_offsets("acme", "e", [OffsetToCommit(TOPIC, 1, 2)], base_ms + 9_000)
        assert await store.expiry_candidates(base_ms + 4_000) == []
        assert await store.expiry_candidates(base_ms + 5_000) == [("acme", "e")]  # Empty since

    asyncio.run(scenario())
