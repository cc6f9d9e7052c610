"""Authentication by API key, and the tenant matrix: a tenant never reaches another's objects."""

import pytest
from rest_framework.test import APIClient

from djafka.models import ApiKey, forget_authenticated_keys

pytestmark = pytest.mark.django_db


def test_no_key_is_a_401_with_a_bearer_challenge():
    response = APIClient().get("/api/v1/topics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer dfk_nope.secret", "Bearer not-a-token", "Bearer a b", "Bearer .x"],
)
def test_bad_keys_are_a_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/v1/topics").status_code == 401


def test_right_prefix_with_wrong_secret_is_a_401(tenant):
    issued = ApiKey.issue(tenant, "k")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.api_key.prefix}.wrong")
    assert client.get("/api/v1/topics").status_code == 401


def test_revoked_key_is_a_401(tenant):
    issued = ApiKey.issue(tenant, "k")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    assert client.get("/api/v1/topics").status_code == 200
    issued.api_key.revoke()
    assert client.get("/api/v1/topics").status_code == 401


def test_inactive_tenant_keys_stop_working(tenant, api):
    assert api.get("/api/v1/topics").status_code == 200  # the key is now remembered
    tenant.is_active = False
    tenant.save()
    assert api.get("/api/v1/topics").status_code == 401


def test_a_remembered_key_still_needs_its_secret(tenant):
    issued = ApiKey.issue(tenant, "k")
    good, bad = APIClient(), APIClient()
    good.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    bad.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.api_key.prefix}.wrong")
    assert good.get("/api/v1/topics").status_code == 200
    assert bad.get("/api/v1/topics").status_code == 401


def test_a_key_is_remembered_for_the_cache_time_only(tenant, settings):
    issued = ApiKey.issue(tenant, "k")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    assert client.get("/api/v1/topics").status_code == 200
    # Revoked behind this process's back (another web process, a SQL console): trusted until
    # the cache time runs out, then refused.
    ApiKey.objects.filter(pk=issued.api_key.pk).update(revoked_at="2026-01-01T00:00:00Z")
    assert client.get("/api/v1/topics").status_code == 200
    settings.DJAFKA_API_KEY_CACHE_S = 0
    forget_authenticated_keys()
    assert client.get("/api/v1/topics").status_code == 401


def test_keys_are_stored_hashed_never_in_the_clear(tenant):
    issued = ApiKey.issue(tenant, "k")
    row = ApiKey.objects.filter(pk=issued.api_key.pk).values().get()
    assert issued.secret not in str(row)
    assert row["secret_hash"] != issued.secret
    assert len(row["secret_hash"]) == 64


def test_use_of_a_key_is_recorded(tenant):
    issued = ApiKey.issue(tenant, "k")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    client.get("/api/v1/topics")
    issued.api_key.refresh_from_db()
    assert issued.api_key.last_used_at is not None


def test_whoami_names_the_tenant(api, tenant):
    body = api.get("/api/v1/whoami").json()
    assert body["tenant"]["name"] == tenant.name


def test_two_tenants_can_both_have_a_topic_named_orders(api, other_api):
    assert api.post("/api/v1/topics", {"name": "orders"}, format="json").status_code == 201
    assert other_api.post("/api/v1/topics", {"name": "orders"}, format="json").status_code == 201


def test_tenant_cannot_list_read_change_or_delete_another_tenants_topics(api, other_api):
    api.post("/api/v1/topics", {"name": "secret-topic", "partition_count": 2}, format="json")
    assert other_api.get("/api/v1/topics").json() == []
    assert other_api.get("/api/v1/topics/secret-topic").status_code == 404
    assert (
        other_api.patch(
            "/api/v1/topics/secret-topic", {"partition_count": 4}, format="json"
        ).status_code
        == 404
    )
    assert (
        other_api.patch(
            "/api/v1/topics/secret-topic", {"configs": {"retention.ms": 1}}, format="json"
        ).status_code
        == 404
    )
    assert other_api.delete("/api/v1/topics/secret-topic").status_code == 404
    described = api.get("/api/v1/topics/secret-topic").json()
    assert described["partition_count"] == 2
    assert described["configs"] == {}


def test_tenant_cannot_list_read_or_revoke_another_tenants_keys(api, other_api, tenant):
    issued = ApiKey.issue(tenant, "mine")
    prefixes = [k["prefix"] for k in other_api.get("/api/v1/keys").json()["results"]]
    assert issued.api_key.prefix not in prefixes
    assert other_api.get(f"/api/v1/keys/{issued.api_key.prefix}").status_code == 404
    assert other_api.delete(f"/api/v1/keys/{issued.api_key.prefix}").status_code == 404
    issued.api_key.refresh_from_db()
    assert not issued.api_key.is_revoked


def test_key_created_over_api_shows_token_once_and_works(api):
    response = api.post("/api/v1/keys", {"name": "ci"}, format="json")
    assert response.status_code == 201
    token = response.json()["token"]
    listed = api.get("/api/v1/keys").json()["results"]
    assert all("token" not in k for k in listed)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/whoami").status_code == 200


def test_revoking_a_key_over_api(api, tenant):
    issued = ApiKey.issue(tenant, "old")
    assert api.delete(f"/api/v1/keys/{issued.api_key.prefix}").status_code == 204
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    assert client.get("/api/v1/topics").status_code == 401


def test_key_create_without_name_is_a_400(api):
    response = api.post("/api/v1/keys", {}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_openapi_schema_and_docs_load_without_a_key(db):
    client = APIClient()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/topics" in paths or "/api/v1/topics/" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def test_openapi_schema_is_valid_without_warnings_and_documents_the_key(tmp_path, db):
    from django.core.management import call_command

    # --fail-on-warn: an endpoint whose auth, parameters or fields the schema cannot describe
    # is a failure, not a warning nobody reads.
    out = tmp_path / "schema.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json",
                 "--file", str(out))
    import orjson

    schema = orjson.loads(out.read_bytes())
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiKey"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "prefix.secret"
    }
    produce = schema["paths"]["/api/v1/topics/{name}/records/"]["post"]
    assert {"apiKey": []} in produce["security"]


def test_the_schema_is_kept_once_whatever_version_or_language_is_asked(db):
    from djafka.schema import SchemaView

    SchemaView._generated.clear()
    client = APIClient()
    for query in ("", "?version=v1", "?version=v2", "?lang=xx-nonsense", "?lang=yy"):
        assert client.get(f"/api/schema/{query}").status_code == 200
    # Unchecked query values must not each keep a schema (anyone may ask for one).
    assert list(SchemaView._generated) == ["en"]
