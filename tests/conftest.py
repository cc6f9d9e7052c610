"""Shared fixtures: tenants, their keys, and API clients acting for them.

Django is imported inside the fixtures so that the pure unit tests (the log, the protocol
codec) also run without Django (``pytest -p no:django tests/unit/log``).
"""

import pytest


@pytest.fixture
def tenant(db):
    from djafka.models import Tenant

    return Tenant.objects.create(name="acme", display_name="Acme")


@pytest.fixture
def other_tenant(db):
    from djafka.models import Tenant

    return Tenant.objects.create(name="globex", display_name="Globex")


def client_for(tenant):
    """An API client authenticated with a new key of ``tenant``."""
    from rest_framework.test import APIClient

    from djafka.models import ApiKey

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.issue(tenant, 'test').token}")
    return client


@pytest.fixture
def api(tenant):
    """An API client authenticated with a key of ``tenant``."""
    return client_for(tenant)


@pytest.fixture
def other_api(other_tenant):
    """An API client authenticated with a key of ``other_tenant``."""
    return client_for(other_tenant)
