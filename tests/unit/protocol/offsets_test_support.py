"""Test scaffolding for OffsetDelete and offset expiry: a GroupBroker with two of acme's topics
over the Django store, and raw kio calls (commit, fetch, delete, join) over a WireClient."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from data_test_support import TENANT, topic_meta
from group_test_support import FAST_GROUPS, PARTITIONS, TOPIC, GroupBroker, tenant_of
from kio.schema.join_group.v5.request import JoinGroupRequest, JoinGroupRequestProtocol
from kio.schema.offset_commit.v8.request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kio.schema.offset_delete.v0.request import (
    OffsetDeleteRequest,
    OffsetDeleteRequestPartition,
    OffsetDeleteRequestTopic,
)
from kio.schema.offset_fetch.v7.request import OffsetFetchRequest
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest
from kio.schema.sync_group.v3.request import SyncGroupRequest
from protocol_test_support import WireClient

from brokers.groups.settings import GroupSettings
from brokers.node.group_store import DjangoGroupStore
from brokers.node.metadata_view import SnapshotMetadataView
from brokers.node.snapshot import TopicMeta
from brokers.protocol.errors import ErrorCode
from brokers.protocol.services import Principal
from tests.unit.groups.group_support import subscription

AUDIT = "audit"
"""acme's second topic (2 partitions): one the test groups do not subscribe to."""
AUDIT_PARTITIONS = 2


@contextmanager
def offsets_broker(
    data_dir: Path,
    tenant: Any,
    settings: GroupSettings = FAST_GROUPS,
    *,
    users: Mapping[str, Principal] | None = None,
    more_topics: Sequence[TopicMeta] = (),
) -> Iterator[GroupBroker]:
    """A GroupBroker (Django store) with acme's topics `events` (6 partitions) and `audit`.

    With `users`, the listener requires SASL/PLAIN (password "secret") and each user acts for
    its principal's tenant: groups and topics are then scoped as on a broker node.
    """
    from brokers.models import Topic

    Topic.objects.create(tenant=tenant, name=TOPIC, partition_count=PARTITIONS)
    Topic.objects.create(tenant=tenant, name=AUDIT, partition_count=AUDIT_PARTITIONS)
    broker = GroupBroker(data_dir, DjangoGroupStore(), settings)
    if users is not None:
        _require_sasl(broker, users)
    with broker:
        snapshot = broker.snapshot
        topics = {**snapshot.topics, (TENANT, AUDIT): topic_meta(AUDIT, AUDIT_PARTITIONS)}
        topics |= {(t.tenant, t.name): t for t in more_topics}
        broker.set_snapshot(dataclasses.replace(snapshot, topics=topics))
        yield broker


def _require_sasl(broker: GroupBroker, users: Mapping[str, Principal]) -> None:
    server = broker.thread.server
    server.settings = dataclasses.replace(server.settings, requires_auth=True)

    async def authenticate_plain(username: str, password: str) -> Principal | None:
        return users.get(username) if password == "secret" else None

    services: Any = broker.services
    services.authenticate_plain = authenticate_plain
    services.metadata = SnapshotMetadataView(lambda: broker.snapshot, tenant_of)
    services.groups = broker.new_coordinator()


def commit(
    wire: WireClient,
    group_id: str,
    offsets: Mapping[tuple[str, int], int],
    member: tuple[str, int] = ("", -1),
) -> dict[tuple[str, int], int]:
    """OffsetCommit v8 (simple unless `member` is (member id, generation)): error per partition."""
    by_topic: dict[str, list[tuple[int, int]]] = {}
    for (topic, partition), offset in offsets.items():
        by_topic.setdefault(topic, []).append((partition, offset))
    response = wire.call(
        OffsetCommitRequest(
            group_id=group_id,
            generation_id_or_member_epoch=member[1],
            member_id=member[0],
            group_instance_id=None,
            topics=tuple(
                OffsetCommitRequestTopic(
                    name=topic,
                    partitions=tuple(
                        OffsetCommitRequestPartition(
                            partition_index=partition,
                            committed_offset=offset,
                            committed_leader_epoch=-1,
                            committed_metadata="",
                        )
                        for partition, offset in partitions
                    ),
                )
                for topic, partitions in by_topic.items()
            ),
        )
    )
    return {
        (topic.name, p.partition_index): p.error_code
        for topic in response.topics
        for p in topic.partitions
    }


def committed(wire: WireClient, group_id: str) -> dict[tuple[str, int], int]:
    """Every committed offset of the group, by OffsetFetch v7 (topics null: all of them)."""
    response = wire.call(OffsetFetchRequest(group_id=group_id, topics=None))
    assert response.error_code == ErrorCode.none, response
    return {
        (topic.name, p.partition_index): p.committed_offset
        for topic in response.topics
        for p in topic.partitions
    }


def delete_offsets(
    wire: WireClient, group_id: str, partitions: Mapping[str, Sequence[int]]
) -> tuple[int, dict[tuple[str, int], int]]:
    """OffsetDelete v0: (top-level error, error per partition)."""
    response = wire.call(
        OffsetDeleteRequest(
            group_id=group_id,
            topics=tuple(
                OffsetDeleteRequestTopic(
                    name=topic,
                    partitions=tuple(
                        OffsetDeleteRequestPartition(partition_index=index) for index in indexes
                    ),
                )
                for topic, indexes in partitions.items()
            ),
        )
    )
    return response.error_code, {
        (topic.name, p.partition_index): p.error_code
        for topic in response.topics
        for p in topic.partitions
    }


def join_and_sync(
    wire: WireClient, group_id: str, topics: list[str], protocol_type: str = "consumer"
) -> tuple[str, int]:
    """A member subscribed to `topics` (its JoinGroup metadata) that leads a Stable group, and
    keeps it Stable while the test runs (a 60 s session): (member id, generation)."""
    join = JoinGroupRequest(
        group_id=group_id,
        session_timeout=datetime.timedelta(seconds=60),
        rebalance_timeout=datetime.timedelta(seconds=30),
        member_id="",
        group_instance_id=None,
        protocol_type=protocol_type,
        protocols=(JoinGroupRequestProtocol(name="range", metadata=subscription(topics)),),
    )
    joined = wire.call(join)
    if joined.error_code == ErrorCode.member_id_required:
        joined = wire.call(dataclasses.replace(join, member_id=joined.member_id))
    assert joined.error_code == ErrorCode.none, joined
    synced = wire.call(
        SyncGroupRequest(
            group_id=group_id,
            generation_id=joined.generation_id,
            member_id=joined.member_id,
            group_instance_id=None,
            assignments=(),
        )
    )
    assert synced.error_code == ErrorCode.none, synced
    return joined.member_id, joined.generation_id


def sasl_login(wire: WireClient, username: str, password: str) -> None:
    assert wire.call(SaslHandshakeRequest(mechanism="PLAIN")).error_code == ErrorCode.none
    token = b"\0" + username.encode() + b"\0" + password.encode()
    response = wire.call(SaslAuthenticateRequest(auth_bytes=token))
    assert response.error_code == ErrorCode.none, response
