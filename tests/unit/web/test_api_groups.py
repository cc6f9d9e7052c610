"""REST consumer groups: tenant scoping, members' assignments and lag, with the wire faked."""

import struct

import pytest
from rest_framework.test import APIClient

from brokers import services
from brokers.api import wire
from brokers.api.groups import decode_assignment
from brokers.models import CommittedOffset, ConsumerGroup, GroupMember

pytestmark = pytest.mark.django_db


def assignment_bytes(topics: dict[str, list[int]], user_data: bytes | None = None) -> bytes:
    """Kafka's ConsumerProtocolAssignment v0, written by hand as a client would."""
    out = struct.pack(">hi", 0, len(topics))
    for topic, partitions in topics.items():
        out += struct.pack(">h", len(topic)) + topic.encode()
        out += struct.pack(f">i{len(partitions)}i", len(partitions), *partitions)
    if user_data is None:
        return out + struct.pack(">i", -1)
    return out + struct.pack(">i", len(user_data)) + user_data


@pytest.fixture
def billing(tenant):
    topic = services.create_topic(tenant, name="orders", partition_count=2)
    group = ConsumerGroup.objects.create(
        tenant=tenant, group_id="billing", state="Stable", protocol_type="consumer",
        protocol_name="range", generation_id=3, leader_member_id="m1",
    )
    GroupMember.objects.create(
        group=group, member_id="m1", client_id="c1",
        assignment=assignment_bytes({"orders": [0, 1]}, b"ud"),
    )
    CommittedOffset.objects.create(group=group, topic=topic, partition=0, offset=30)
    CommittedOffset.objects.create(group=group, topic=topic, partition=1, offset=50)
    return group


@pytest.fixture
def log_ends(monkeypatch):
    def fake_list_offsets(tenant, topic_partitions, timestamp, timeout_s=None):
        assert timestamp == wire.LATEST_TIMESTAMP
        return {(t, p): 50 for t, ps in topic_partitions.items() for p in ps}

    monkeypatch.setattr(wire, "list_offsets", fake_list_offsets)


def test_group_detail_has_assignments_offsets_and_lag(api, billing, log_ends):
    body = api.get("/api/v1/groups/billing").json()
    assert body["state"] == "Stable" and body["generation_id"] == 3
    assert body["members"][0]["assignment"] == {"orders": [0, 1]}
    offsets = [(o["partition"], o["committed_offset"], o["log_end_offset"], o["lag"])
               for o in body["offsets"]]
    assert offsets == [(0, 30, 50, 20), (1, 50, 50, 0)]
    assert body["lag"] == 20


def test_group_list_is_the_tenants_groups_with_total_lag(api, billing, log_ends):
    body = api.get("/api/v1/groups").json()
    assert [(g["group_id"], g["member_count"], g["lag"]) for g in body] == [("billing", 1, 20)]


def test_lag_is_null_when_brokers_cannot_be_reached(api, billing, monkeypatch):
    def unreachable(*args, **kwargs):
        raise wire.WireError("BROKER_NOT_AVAILABLE", "No broker node is alive.")

    monkeypatch.setattr(wire, "list_offsets", unreachable)
    body = api.get("/api/v1/groups/billing").json()
    assert body["offsets"][0]["log_end_offset"] is None and body["lag"] is None


def test_other_tenants_groups_are_invisible(other_api, billing, log_ends):
    assert other_api.get("/api/v1/groups/billing").status_code == 404
    assert other_api.get("/api/v1/groups").json() == []


def test_unknown_group_is_a_404_and_no_key_a_401(api, billing):
    assert api.get("/api/v1/groups/nope").status_code == 404
    assert APIClient().get("/api/v1/groups").status_code == 401
    assert APIClient().get("/api/v1/groups/billing").status_code == 401


def test_undecodable_assignment_is_null():
    assert decode_assignment(b"\x00\x00\x00\x00\x00\x05\x00") is None
    assert decode_assignment(b"") == {}
    assert decode_assignment(assignment_bytes({"a": [2], "b": []})) == {"a": [2], "b": []}


def test_every_data_plane_endpoint_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema/?format=json").json()
    for path in [
        "/api/v1/topics/{name}/records/",
        "/api/v1/topics/{name}/partitions/",
        "/api/v1/topics/{name}/partitions/{partition}/records/",
        "/api/v1/groups/",
        "/api/v1/groups/{group_id}/",
    ]:
        assert path in schema["paths"], path
