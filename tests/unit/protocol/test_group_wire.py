"""Every group API at every version over the wire, and the error codes bad requests get."""

from __future__ import annotations

import dataclasses
import datetime
import importlib

import pytest
from group_test_support import PARTITIONS, TOPIC, GroupBroker
from protocol_test_support import build

from brokers.node.group_store import DjangoGroupStore
from brokers.protocol import codec
from brokers.protocol.errors import ErrorCode

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

MS = datetime.timedelta(milliseconds=1)


@pytest.fixture
def broker(tenant, tmp_path):
    from brokers.models import Topic

    Topic.objects.create(tenant=tenant, name=TOPIC, partition_count=PARTITIONS)
    with GroupBroker(tmp_path, DjangoGroupStore()) as running:
        yield running


def request(api_key: int, version: int, **values):
    """A request of that version from those `values` it has; callables get the kio module."""
    cls = codec.request_type(api_key, version)
    nested = importlib.import_module(cls.__module__)
    names = {f.name for f in dataclasses.fields(cls)}
    return build(
        cls, **{k: v(nested) if callable(v) else v for k, v in values.items() if k in names}
    )


def join_group(wire, version: int, group_id: str, member_id: str = "", session_ms: int = 6000):
    return wire.call(
        request(
            11,
            version,
            group_id=group_id,
            session_timeout=session_ms * MS,
            rebalance_timeout=10_000 * MS,
            member_id=member_id,
            group_instance_id=None,
            protocol_type="consumer",
            protocols=lambda m: (m.JoinGroupRequestProtocol(name="range", metadata=b"meta"),),
            reason=None,
        )
    )


def join_until_member(wire, version: int, group_id: str):
    response = join_group(wire, version, group_id)
    if response.error_code == ErrorCode.member_id_required:
        assert version >= 4
        response = join_group(wire, version, group_id, response.member_id)
    assert response.error_code == ErrorCode.none, response
    return response


@pytest.mark.parametrize("version", range(10))
def test_join_sync_heartbeat_leave_at_every_join_version(broker, version):
    group_id = f"v{version}"
    with broker.wire() as wire:
        joined = join_until_member(wire, version, group_id)
        assert joined.leader == joined.member_id
        assert [m.metadata for m in joined.members] == [b"meta"]
        sync_version = min(version, 5)
        synced = wire.call(
            request(
                14,
                sync_version,
                group_id=group_id,
                generation_id=joined.generation_id,
                member_id=joined.member_id,
                group_instance_id=None,
                protocol_type="consumer",
                protocol_name="range",
                assignments=lambda m: (
                    m.SyncGroupRequestAssignment(member_id=joined.member_id, assignment=b"A"),
                ),
            )
        )
        assert (synced.error_code, synced.assignment) == (ErrorCode.none, b"A")
        beat = wire.call(
            request(
                12,
                min(version, 4),
                group_id=group_id,
                generation_id=joined.generation_id,
                member_id=joined.member_id,
                group_instance_id=None,
            )
        )
        assert beat.error_code == ErrorCode.none
        leave_version = min(version, 5)
        left = wire.call(
            request(
                13,
                leave_version,
                group_id=group_id,
                member_id=joined.member_id,
                members=lambda m: (
                    build(m.MemberIdentity, member_id=joined.member_id, group_instance_id=None),
                ),
            )
        )
        assert left.error_code == ErrorCode.none
        if leave_version >= 3:
            assert [m.error_code for m in left.members] == [ErrorCode.none]


@pytest.mark.parametrize("version", range(7))
def test_find_coordinator_at_every_version(broker, version):
    host, port = broker.address
    with broker.wire() as wire:
        response = wire.call(request(10, version, key="g", key_type=0, coordinator_keys=("g", "h")))
        if version >= 4:
            assert [(c.key, c.node_id, c.port) for c in response.coordinators] == [
                ("g", 1, port),
                ("h", 1, port),
            ]
        else:
            assert (response.error_code, response.node_id, response.host, response.port) == (
                ErrorCode.none,
                1,
                host,
                port,
            )
        if version >= 1:
            txn = wire.call(request(10, version, key="t", key_type=1, coordinator_keys=("t",)))
            code = txn.coordinators[0].error_code if version >= 4 else txn.error_code
            assert code == ErrorCode.coordinator_not_available


@pytest.mark.parametrize("version", range(2, 11))
def test_offset_commit_and_fetch_at_every_version(broker, version):
    topic_id = broker.snapshot.topic("acme", TOPIC).topic_id
    group_id = f"offsets-v{version}"
    with broker.wire() as wire:
        committed = wire.call(
            request(
                8,
                version,
                group_id=group_id,
                generation_id_or_member_epoch=-1,
                member_id="",
                group_instance_id=None,
                retention_time=datetime.timedelta(milliseconds=-1),
                topics=lambda m: (
                    build(
                        m.OffsetCommitRequestTopic,
                        name=TOPIC,
                        topic_id=topic_id,
                        partitions=(
                            build(
                                m.OffsetCommitRequestPartition,
                                partition_index=1,
                                committed_offset=77,
                                committed_leader_epoch=3,
                                committed_metadata="md",
                            ),
                            build(
                                m.OffsetCommitRequestPartition,
                                partition_index=PARTITIONS,  # no such partition
                                committed_offset=1,
                                committed_leader_epoch=-1,
                                committed_metadata="",
                            ),
                        ),
                    ),
                ),
            )
        )
        codes = [p.error_code for p in committed.topics[0].partitions]
        assert codes == [ErrorCode.none, ErrorCode.unknown_topic_or_partition]
        for fetch_version in {1, min(version, 10), 8, 10}:
            fetched = wire.call(
                request(
                    9,
                    fetch_version,
                    group_id=group_id,
                    require_stable=True,
                    topics=lambda m: (
                        build(
                            m.OffsetFetchRequestTopic,
                            name=TOPIC,
                            partition_indexes=(1, 2),
                        ),
                    ),
                    groups=lambda m: (
                        build(
                            m.OffsetFetchRequestGroup,
                            group_id=group_id,
                            member_id=None,
                            member_epoch=-1,
                            topics=(
                                build(
                                    m.OffsetFetchRequestTopics,
                                    name=TOPIC,
                                    topic_id=topic_id,
                                    partition_indexes=(1, 2),
                                ),
                            ),
                        ),
                    ),
                )
            )
            topics = fetched.groups[0].topics if fetch_version >= 8 else fetched.topics
            offsets = [(p.partition_index, p.committed_offset) for p in topics[0].partitions]
            assert offsets == [(1, 77), (2, -1)]


@pytest.mark.parametrize("version", range(6))
def test_list_groups_at_every_version(broker, version):
    with broker.wire() as wire:
        join_until_member(wire, 5, "listed")
        listed = wire.call(request(16, version, states_filter=(), types_filter=()))
        assert [g.group_id for g in listed.groups] == ["listed"]
        if version >= 4:
            stable = wire.call(request(16, version, states_filter=("stable",), types_filter=()))
            assert stable.groups == ()
            assert listed.groups[0].group_state == "CompletingRebalance"


@pytest.mark.parametrize("version", range(7))
def test_describe_and_delete_groups(broker, version):
    with broker.wire() as wire:
        joined = join_until_member(wire, 5, "described")
        described = wire.call(
            request(
                15, version, groups=("described", "missing"), include_authorized_operations=True
            )
        )
        present, missing = described.groups
        assert present.group_state == "CompletingRebalance"
        assert [m.member_id for m in present.members] == [joined.member_id]
        assert missing.group_state == "Dead"
        expected_missing = ErrorCode.group_id_not_found if version >= 6 else ErrorCode.none
        assert missing.error_code == expected_missing
        deleted = wire.call(request(42, min(version, 2), groups_names=("described", "missing")))
        assert [r.error_code for r in deleted.results] == [
            ErrorCode.non_empty_group,
            ErrorCode.group_id_not_found,
        ]


def test_bad_requests_get_kafkas_error_codes_and_the_listener_keeps_serving(broker):
    with broker.wire() as wire:
        assert join_group(wire, 5, "").error_code == ErrorCode.invalid_group_id
        too_short = join_group(wire, 5, "bad", session_ms=10)
        assert too_short.error_code == ErrorCode.invalid_session_timeout
        assert join_group(wire, 5, "bad", member_id="ghost").error_code == (
            ErrorCode.unknown_member_id
        )
        joined = join_until_member(wire, 5, "bad")
        wrong_generation = wire.call(
            request(
                12,
                4,
                group_id="bad",
                generation_id=99,
                member_id=joined.member_id,
                group_instance_id=None,
            )
        )
        assert wrong_generation.error_code == ErrorCode.illegal_generation
        unknown = wire.call(
            request(12, 4, group_id="bad", generation_id=1, member_id="x", group_instance_id=None)
        )
        assert unknown.error_code == ErrorCode.unknown_member_id
        commit = wire.call(
            request(
                8,
                8,
                group_id="bad",
                generation_id_or_member_epoch=joined.generation_id,
                member_id=joined.member_id,
                group_instance_id=None,
                topics=lambda m: (
                    m.OffsetCommitRequestTopic(
                        name=TOPIC,
                        partitions=(
                            m.OffsetCommitRequestPartition(
                                partition_index=0,
                                committed_offset=5,
                                committed_leader_epoch=-1,
                                committed_metadata="",
                            ),
                        ),
                    ),
                ),
            )
        )
        # The leader has not sent SyncGroup yet: the generation is not complete.
        assert commit.topics[0].partitions[0].error_code == ErrorCode.rebalance_in_progress
        versions = wire.call(request(18, 3, client_software_name="t", client_software_version="1"))
        assert versions.error_code == ErrorCode.none
        assert {11, 14, 12, 13, 8, 9, 10, 15, 16, 42} <= {a.api_key for a in versions.api_keys}
