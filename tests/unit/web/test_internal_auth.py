"""The web tier's internal login to broker nodes acts for exactly one tenant."""

import asyncio

import pytest

from brokers.node.services import _authenticate
from djafka.internal_auth import internal_credentials, internal_tenant
from djafka.models import ApiKey


def test_internal_credentials_name_their_tenant():
    username, password = internal_credentials("acme")
    assert internal_tenant(username, password) == "acme"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("__djafka_internal__/acme", "guess"),
        ("__djafka_internal__/", ""),
        ("acme", internal_credentials("acme")[1]),
    ],
)
def test_forged_internal_logins_are_refused(username, password):
    assert internal_tenant(username, password) is None


def test_one_tenants_password_does_not_open_another():
    _, acme_password = internal_credentials("acme")
    assert internal_tenant("__djafka_internal__/globex", acme_password) is None


@pytest.mark.django_db(transaction=True)
def test_broker_nodes_accept_internal_logins_and_api_keys_only(tenant):
    issued = ApiKey.issue(tenant, "k")
    by_key = asyncio.run(_authenticate(issued.api_key.prefix, issued.secret))
    assert by_key.tenant == "acme"
    assert asyncio.run(_authenticate(*internal_credentials("acme"))).tenant == "acme"
    assert asyncio.run(_authenticate(*internal_credentials("no-such-tenant"))) is None
    assert asyncio.run(_authenticate(issued.api_key.prefix, "wrong")) is None
