"""Which tenant the web pages show (djafka/tenant_choice.py), through the live tail page."""

import pytest
from django.contrib.auth.models import User

from djafka.models import Tenant, TenantMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenants():
    Tenant.objects.create(name="demo")
    Tenant.objects.create(name="retired", is_active=False)
    return Tenant.objects.create(name="acme")


def test_an_operator_sees_the_first_active_tenant_unless_they_pick_one(admin_client, tenants):
    first = admin_client.get("/live/")
    assert first.context["tenant"].name == "acme"
    assert first.context["is_operator"] is True
    assert [t.name for t in first.context["tenants"]] == ["acme", "demo"]
    assert admin_client.get("/live/?tenant=demo").context["tenant"].name == "demo"
    # Unknown and inactive tenants are not offered: the first active one instead.
    assert admin_client.get("/live/?tenant=retired").context["tenant"].name == "acme"
    assert admin_client.get("/live/?tenant=gone").context["tenant"].name == "acme"


def test_a_tenant_admin_sees_only_their_tenant_whatever_they_ask(client, tenants):
    admin = User.objects.create_user("acme-admin", password="pw-123456789", is_staff=True)
    TenantMembership.objects.create(user=admin, tenant=tenants)
    client.force_login(admin)
    response = client.get("/live/?tenant=demo")
    assert response.context["tenant"] == tenants
    assert response.context["is_operator"] is False
    assert response.context["tenants"] == []


def test_users_neither_tenant_admin_nor_operator_are_refused(client, tenants):
    client.force_login(User.objects.create_user("nobody", password="pw-123456789"))
    assert client.get("/live/").status_code == 403


def test_an_operator_with_no_tenant_yet_gets_the_page_without_one(admin_client):
    response = admin_client.get("/live/")
    assert response.status_code == 200
    assert response.context["tenant"] is None
