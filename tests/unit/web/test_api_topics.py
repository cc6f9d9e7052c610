"""REST topic CRUD: create, list, describe, add partitions, change configs, delete."""

from datetime import timedelta

import pytest
from django.utils import timezone

from brokers.models import Broker, Partition, Topic

pytestmark = pytest.mark.django_db


def live_brokers(*ids: int, rack: str = "") -> None:
    for broker_id in ids:
        Broker.objects.create(
            id=broker_id,
            host="127.0.0.1",
            port=9090 + broker_id,
            rack=rack,
            last_heartbeat_at=timezone.now(),
        )


def test_create_topic_places_partitions_on_live_brokers(api):
    live_brokers(1, 2, 3)
    response = api.post(
        "/api/v1/topics",
        {
            "name": "orders",
            "partition_count": 6,
            "replication_factor": 2,
            "configs": {"retention.ms": 3600000},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "orders"
    assert body["configs"] == {"retention.ms": "3600000"}
    assert body["effective_configs"]["cleanup.policy"] == "delete"
    assert [p["partition"] for p in body["partitions"]] == list(range(6))
    for partition in body["partitions"]:
        assert len(partition["replicas"]) == 2
        assert partition["leader"] == partition["replicas"][0]
        assert partition["isr"] == [partition["leader"]]
    assert sorted(p["leader"] for p in body["partitions"]) == [1, 1, 2, 2, 3, 3]


def test_topic_created_without_brokers_waits_for_placement(api):
    response = api.post("/api/v1/topics", {"name": "early", "partition_count": 2}, format="json")
    assert response.status_code == 201
    assert [p["leader"] for p in response.json()["partitions"]] == [None, None]


def test_dead_brokers_are_not_given_partitions(api):
    live_brokers(1)
    Broker.objects.create(
        id=2, host="h", port=1, last_heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    response = api.post(
        "/api/v1/topics",
        {"name": "t", "partition_count": 4, "replication_factor": 1},
        format="json",
    )
    assert {p["leader"] for p in response.json()["partitions"]} == {1}
    response = api.post("/api/v1/topics", {"name": "t2", "replication_factor": 2}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_REPLICATION_FACTOR"


def test_list_and_describe_topics(api):
    api.post("/api/v1/topics", {"name": "b"}, format="json")
    api.post("/api/v1/topics", {"name": "a"}, format="json")
    assert [t["name"] for t in api.get("/api/v1/topics").json()] == ["a", "b"]
    described = api.get("/api/v1/topics/a").json()
    assert described["partition_count"] == 1
    assert "partitions" in described


def test_names_with_dots_work_in_urls(api):
    assert api.post("/api/v1/topics", {"name": "app.events.v1"}, format="json").status_code == 201
    assert api.get("/api/v1/topics/app.events.v1").status_code == 200
    assert api.delete("/api/v1/topics/app.events.v1").status_code == 204


def test_add_partitions_grows_the_topic(api):
    live_brokers(1, 2)
    api.post("/api/v1/topics", {"name": "t", "partition_count": 2}, format="json")
    response = api.patch("/api/v1/topics/t", {"partition_count": 5}, format="json")
    assert response.status_code == 200, response.content
    assert [p["partition"] for p in response.json()["partitions"]] == [0, 1, 2, 3, 4]
    assert all(p["leader"] in (1, 2) for p in response.json()["partitions"])
    assert Partition.objects.filter(topic__name="t").count() == 5


def test_partitions_cannot_be_removed(api):
    api.post("/api/v1/topics", {"name": "t", "partition_count": 3}, format="json")
    response = api.patch("/api/v1/topics/t", {"partition_count": 2}, format="json")
    assert response.status_code == 400
    assert "added, not removed" in response.json()["partition_count"][0]
    assert Topic.objects.get(name="t").partition_count == 3


def test_same_partition_count_in_patch_changes_nothing(api):
    api.post("/api/v1/topics", {"name": "t", "partition_count": 3}, format="json")
    response = api.patch("/api/v1/topics/t", {"partition_count": 3}, format="json")
    assert response.status_code == 200


def test_change_configs_sets_and_removes_overrides(api):
    api.post("/api/v1/topics", {"name": "t", "configs": {"retention.ms": "1000"}}, format="json")
    response = api.patch(
        "/api/v1/topics/t",
        {"configs": {"retention.ms": None, "cleanup.policy": "compact"}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["configs"] == {"cleanup.policy": "compact"}


def test_a_failed_patch_changes_nothing(api):
    api.post("/api/v1/topics", {"name": "t", "partition_count": 3}, format="json")
    response = api.patch(
        "/api/v1/topics/t",
        {"configs": {"retention.ms": "5"}, "partition_count": 1},
        format="json",
    )
    assert response.status_code == 400
    assert Topic.objects.get(name="t").configs == {}


def test_delete_topic_removes_it_and_its_partitions(api):
    api.post("/api/v1/topics", {"name": "t", "partition_count": 3}, format="json")
    assert api.delete("/api/v1/topics/t").status_code == 204
    assert api.get("/api/v1/topics/t").status_code == 404
    assert not Partition.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "bad name"}, "name"),
        ({"name": "x" * 250}, "name"),
        ({"name": ".."}, "name"),
        ({"name": "t", "partition_count": 0}, "partition_count"),
        ({"name": "t", "partition_count": "many"}, "partition_count"),
        ({"name": "t", "partition_count": 100000}, "partition_count"),
        ({"name": "t", "replication_factor": 0}, "replication_factor"),
        ({"name": "t", "configs": {"retention.ms": "forever"}}, "configs"),
        ({"name": "t", "configs": {"unknown.thing": "1"}}, "configs"),
        ({"name": "t", "configs": "retention.ms=1"}, "configs"),
        ({"name": "t", "configs": {"retention.ms": {"a": 1}}}, "configs"),
    ],
)
def test_bad_create_input_is_a_400_naming_the_field(api, payload, field):
    response = api.post("/api/v1/topics", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Topic.objects.exists()


def test_config_errors_name_each_bad_config(api):
    response = api.post(
        "/api/v1/topics",
        {"name": "t", "configs": {"retention.ms": "x", "segment.ms": 0}},
        format="json",
    )
    assert set(response.json()["configs"]) == {"retention.ms", "segment.ms"}


def test_malformed_json_is_a_400(api):
    response = api.post("/api/v1/topics", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_duplicate_topic_is_a_409(api):
    api.post("/api/v1/topics", {"name": "t"}, format="json")
    response = api.post("/api/v1/topics", {"name": "t"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "TOPIC_ALREADY_EXISTS"


def test_names_differing_only_by_dot_and_underscore_collide(api):
    api.post("/api/v1/topics", {"name": "a.b"}, format="json")
    response = api.post("/api/v1/topics", {"name": "a_b"}, format="json")
    assert response.status_code == 400
    assert "collides" in response.json()["name"][0]


def test_tenant_partition_quota_is_enforced(api, tenant):
    tenant.max_partitions = 4
    tenant.save()
    assert (
        api.post("/api/v1/topics", {"name": "a", "partition_count": 3}, format="json").status_code
        == 201
    )
    response = api.post("/api/v1/topics", {"name": "b", "partition_count": 2}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "POLICY_VIOLATION"
    response = api.patch("/api/v1/topics/a", {"partition_count": 5}, format="json")
    assert response.status_code == 400


def test_bad_patch_input_is_a_400(api):
    api.post("/api/v1/topics", {"name": "t"}, format="json")
    assert api.patch("/api/v1/topics/t", {}, format="json").status_code == 400
    assert (
        api.patch("/api/v1/topics/t", {"configs": {"segment.ms": -5}}, format="json").status_code
        == 400
    )
    assert (
        api.patch("/api/v1/topics/missing", {"partition_count": 2}, format="json").status_code
        == 404
    )


def test_unknown_topic_is_a_404(api):
    assert api.get("/api/v1/topics/nope").status_code == 404
    assert api.delete("/api/v1/topics/nope").status_code == 404
