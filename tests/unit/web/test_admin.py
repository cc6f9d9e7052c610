"""Django admin for cluster management, for operators and for a tenant's own admins."""

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from brokers import services
from brokers.models import Broker, CommittedOffset, ConsumerGroup, GroupMember, Topic
from djafka.models import ApiKey, TenantMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(tenant, other_tenant):
    """Two tenants with a topic, a group with a member and an offset, and a key each."""
    Broker.objects.create(id=1, host="127.0.0.1", port=9092, last_heartbeat_at=timezone.now())
    for t in (tenant, other_tenant):
        topic = services.create_topic(t, f"{t.name}-orders", 3)
        group = ConsumerGroup.objects.create(tenant=t, group_id=f"{t.name}-billing")
        GroupMember.objects.create(group=group, member_id=f"{t.name}-m1")
        CommittedOffset.objects.create(group=group, topic=topic, partition=0, offset=42)
        ApiKey.issue(t, f"{t.name} key")
    return tenant, other_tenant


@pytest.fixture
def operator_client():
    client = Client()
    client.force_login(User.objects.create_superuser("op", "op@example.com", "pw"))
    return client


@pytest.fixture
def tenant_admin_client(tenant):
    user = User.objects.create_user("acme-admin", password="pw", is_staff=True)
    TenantMembership.objects.create(user=user, tenant=tenant)
    client = Client()
    client.force_login(user)
    return client


def admin_urls(tenant) -> list[str]:
    topic = Topic.objects.get(tenant=tenant)
    group = ConsumerGroup.objects.get(tenant=tenant)
    key = ApiKey.objects.get(tenant=tenant)
    return [
        "/admin/",
        "/admin/djafka/tenant/",
        f"/admin/djafka/tenant/{tenant.pk}/change/",
        "/admin/djafka/apikey/",
        "/admin/djafka/apikey/add/",
        f"/admin/djafka/apikey/{key.pk}/change/",
        "/admin/brokers/topic/",
        "/admin/brokers/topic/add/",
        f"/admin/brokers/topic/{topic.pk}/change/",
        "/admin/brokers/consumergroup/",
        f"/admin/brokers/consumergroup/{group.pk}/change/",
    ]


def test_every_admin_page_renders_for_an_operator(cluster, operator_client):
    tenant, _ = cluster
    urls = [
        *admin_urls(tenant),
        "/admin/brokers/broker/",
        "/admin/brokers/broker/1/change/",
        "/admin/djafka/tenant/add/",
        "/admin/auth/user/",
    ]
    for url in urls:
        response = operator_client.get(url)
        assert response.status_code == 200, url
    changelist = operator_client.get("/admin/brokers/topic/").content.decode()
    assert "acme-orders" in changelist and "globex-orders" in changelist


def test_topic_page_shows_partitions_with_leader_and_replicas(cluster, operator_client):
    tenant, _ = cluster
    topic = Topic.objects.get(tenant=tenant)
    page = operator_client.get(f"/admin/brokers/topic/{topic.pk}/change/").content.decode()
    assert page.count('class="field-leader_epoch"') >= 3
    assert "retention.ms" in page


def test_every_admin_page_renders_for_a_tenant_admin(cluster, tenant_admin_client):
    tenant, _ = cluster
    for url in admin_urls(tenant):
        response = tenant_admin_client.get(url)
        assert response.status_code == 200, url


def test_tenant_admin_sees_only_their_tenant(cluster, tenant_admin_client):
    _tenant, other = cluster
    for url in [
        "/admin/brokers/topic/",
        "/admin/brokers/consumergroup/",
        "/admin/djafka/apikey/",
        "/admin/djafka/tenant/",
    ]:
        page = tenant_admin_client.get(url).content.decode()
        assert "acme" in page, url
        assert "globex" not in page, url
    for url in [u for u in admin_urls(other) if u.endswith("/change/")]:
        response = tenant_admin_client.get(url)
        # Django admin answers an object outside the queryset with a redirect to the index.
        assert response.status_code == 302, url
    assert tenant_admin_client.get("/admin/brokers/broker/").status_code == 403
    assert tenant_admin_client.get("/admin/auth/user/").status_code == 403


def test_tenant_admin_cannot_change_their_tenant_or_delete_another_tenants_topic(
    cluster, tenant_admin_client
):
    tenant, other = cluster
    response = tenant_admin_client.post(
        f"/admin/djafka/tenant/{tenant.pk}/change/", {"name": "renamed", "is_active": "on"}
    )
    assert response.status_code == 403
    other_topic = Topic.objects.get(tenant=other)
    tenant_admin_client.post(
        "/admin/brokers/topic/",
        {"action": "delete_topics_action", "_selected_action": [other_topic.pk]},
    )
    assert Topic.objects.filter(pk=other_topic.pk).exists()


def test_tenant_admin_creates_a_topic_in_their_own_tenant(cluster, tenant_admin_client):
    tenant, _ = cluster
    response = tenant_admin_client.post(
        "/admin/brokers/topic/add/",
        {
            "name": "made-in-admin",
            "partition_count": 2,
            "replication_factor": 1,
            "configs": '{"retention.ms": "60000"}',
            "partitions-TOTAL_FORMS": 0,
            "partitions-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    topic = Topic.objects.get(name="made-in-admin")
    assert topic.tenant == tenant
    assert topic.partitions.count() == 2
    assert topic.configs == {"retention.ms": "60000"}


def test_admin_topic_form_shows_kafka_errors_on_fields(cluster, operator_client):
    tenant, _ = cluster
    response = operator_client.post(
        "/admin/brokers/topic/add/",
        {
            "tenant": tenant.pk,
            "name": "bad name!",
            "partition_count": 1,
            "replication_factor": 5,
            "configs": '{"retention.ms": "never"}',
            "partitions-TOTAL_FORMS": 0,
            "partitions-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "name" in errors
    response = operator_client.post(
        "/admin/brokers/topic/add/",
        {
            "tenant": tenant.pk,
            "name": "ok",
            "partition_count": 1,
            "replication_factor": 5,
            "configs": '{"retention.ms": "never"}',
            "partitions-TOTAL_FORMS": 0,
            "partitions-INITIAL_FORMS": 0,
        },
    )
    errors = response.context["adminform"].form.errors
    assert "configs" in errors
    assert not Topic.objects.filter(name="ok").exists()


def test_add_partitions_action(cluster, operator_client):
    tenant, _ = cluster
    topic = Topic.objects.get(tenant=tenant)
    confirm = operator_client.post(
        "/admin/brokers/topic/",
        {"action": "add_partitions_action", "_selected_action": [topic.pk]},
    )
    assert confirm.status_code == 200
    assert b"New partition count" in confirm.content
    operator_client.post(
        "/admin/brokers/topic/",
        {
            "action": "add_partitions_action",
            "_selected_action": [topic.pk],
            "partition_count": 5,
            "apply": "1",
        },
    )
    topic.refresh_from_db()
    assert topic.partition_count == 5
    assert topic.partitions.count() == 5


def test_delete_topic_action(cluster, operator_client):
    tenant, _ = cluster
    topic = Topic.objects.get(tenant=tenant)
    operator_client.post(
        "/admin/brokers/topic/", {"action": "delete_topics_action", "_selected_action": [topic.pk]}
    )
    assert not Topic.objects.filter(pk=topic.pk).exists()


def test_creating_a_key_in_admin_shows_the_token_once(tenant, operator_client):
    response = operator_client.post(
        "/admin/djafka/apikey/add/", {"tenant": tenant.pk, "name": "from admin"}, follow=True
    )
    page = response.content.decode()
    match = re.search(r"(dfk_[0-9a-f]{12})\.([A-Za-z0-9_-]{20,})", page)
    assert match, page[:3000]
    key = ApiKey.objects.get(name="from admin")
    assert key.prefix == match.group(1)
    assert ApiKey.authenticate(match.group(1), match.group(2)) == key
    again = operator_client.get(f"/admin/djafka/apikey/{key.pk}/change/").content.decode()
    assert match.group(2) not in again


def test_revoke_keys_action(tenant, operator_client):
    issued = ApiKey.issue(tenant, "k")
    operator_client.post(
        "/admin/djafka/apikey/",
        {"action": "revoke_keys", "_selected_action": [issued.api_key.pk]},
    )
    issued.api_key.refresh_from_db()
    assert issued.api_key.is_revoked


def test_broker_health_shows_in_admin(operator_client):
    Broker.objects.create(id=1, host="h", port=1, last_heartbeat_at=timezone.now())
    Broker.objects.create(id=2, host="h", port=2, last_heartbeat_at=None, state="dead")
    page = operator_client.get("/admin/brokers/broker/").content.decode()
    assert page.count('alt="True"') == 1
    assert page.count('alt="False"') == 1


def test_group_with_members_cannot_be_deleted(cluster, operator_client):
    tenant, _ = cluster
    group = ConsumerGroup.objects.get(tenant=tenant)
    response = operator_client.post(
        f"/admin/brokers/consumergroup/{group.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert ConsumerGroup.objects.filter(pk=group.pk).exists()


def test_dashboard_renders(cluster):
    page = Client().get("/")
    assert page.status_code == 200
    assert b"broker nodes" in page.content
