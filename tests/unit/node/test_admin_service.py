"""DjangoAdminService: the protocol's AdminService over brokers/services.py and the database."""

from __future__ import annotations

import asyncio

import pytest

from brokers.models import Topic
from brokers.node.admin_service import DjangoAdminService
from brokers.protocol.create_topics import CreatedTopic
from brokers.protocol.errors import ErrorCode
from brokers.protocol.services import Principal

pytestmark = pytest.mark.django_db(transaction=True)

ACME = Principal("key", "acme")
GLOBEX = Principal("other", "globex")


def service(changes: list[str] | None = None, **kwargs) -> DjangoAdminService:
    async def on_change() -> None:
        if changes is not None:
            changes.append("changed")

    return DjangoAdminService(lambda p: p.tenant if p else "acme", on_change, **kwargs)


def run(coroutine):
    return asyncio.run(coroutine)


def test_create_takes_defaults_and_reports_what_it_made(tenant) -> None:
    changes: list[str] = []
    admin = service(changes, default_partitions=3)
    result = run(admin.create_topic(ACME, "t", -1, -1, {"retention.ms": 10}, validate_only=False))
    assert isinstance(result, CreatedTopic) and result.error_code == 0
    assert (result.num_partitions, result.replication_factor) == (3, 1)
    row = Topic.objects.get(tenant=tenant, name="t")
    assert result.topic_id == row.topic_id and row.configs == {"retention.ms": "10"}
    assert changes == ["changed"]


def test_errors_become_kafka_codes_and_nothing_changes(tenant) -> None:
    changes: list[str] = []
    admin = service(changes)
    cases = [
        (("bad name", 1, 1, {}), ErrorCode.invalid_topic_exception),
        (("zero", 0, 1, {}), ErrorCode.invalid_partitions),
        (("rf", 1, 0, {}), ErrorCode.invalid_replication_factor),
        (("cfg", 1, 1, {"nope": "1"}), ErrorCode.invalid_config),
        (("null", 1, 1, {"retention.ms": None}), ErrorCode.invalid_config),
    ]
    for args, code in cases:
        result = run(admin.create_topic(ACME, *args, validate_only=False))
        assert result.error_code == code, args
        assert result.error_message
    run(admin.create_topic(ACME, "dup", 1, 1, {}, validate_only=False))
    again = run(admin.create_topic(ACME, "dup", 1, 1, {}, validate_only=False))
    assert again.error_code == ErrorCode.topic_already_exists
    assert changes == ["changed"]


def test_unknown_tenant_may_not_create(db) -> None:
    result = run(service().create_topic(ACME, "t", 1, 1, {}, validate_only=False))
    assert result.error_code == ErrorCode.topic_authorization_failed


def test_other_tenants_topics_are_unknown(tenant, other_tenant) -> None:
    admin = service()
    run(admin.create_topic(ACME, "mine", 1, 1, {}, validate_only=False))
    assert run(admin.delete_topic(GLOBEX, "mine")).error_code == 3
    assert run(admin.create_partitions(GLOBEX, "mine", 2, validate_only=False)).error_code == 3
    result, entries = run(admin.describe_topic_configs(GLOBEX, "mine", None))
    assert (result.error_code, entries) == (3, ())
    altered = run(
        admin.alter_topic_configs(GLOBEX, "mine", {}, (), replace_all=True, validate_only=False)
    )
    assert altered.error_code == 3
    assert Topic.objects.filter(tenant=tenant, name="mine").exists()


def test_describe_and_alter_configs(tenant) -> None:
    admin = service()
    run(admin.create_topic(ACME, "c", 1, 1, {"retention.ms": "5"}, validate_only=False))
    result, entries = run(
        admin.describe_topic_configs(ACME, "c", ["retention.ms", "cleanup.policy"])
    )
    assert result.error_code == 0
    by_name = {e.name: e for e in entries}
    assert (by_name["retention.ms"].value, by_name["retention.ms"].source) == ("5", 1)
    assert not by_name["retention.ms"].is_default
    assert (by_name["cleanup.policy"].value, by_name["cleanup.policy"].source) == ("delete", 5)
    assert by_name["cleanup.policy"].config_type == 7 and by_name["retention.ms"].config_type == 5
    run(
        admin.alter_topic_configs(
            ACME, "c", {"segment.ms": "9"}, (), replace_all=False, validate_only=False
        )
    )
    assert Topic.objects.get(name="c").configs == {"retention.ms": "5", "segment.ms": "9"}
    run(
        admin.alter_topic_configs(
            ACME, "c", {"flush.ms": "1"}, (), replace_all=True, validate_only=False
        )
    )
    assert Topic.objects.get(name="c").configs == {"flush.ms": "1"}
    run(
        admin.alter_topic_configs(
            ACME, "c", {}, ["flush.ms"], replace_all=False, validate_only=True
        )
    )
    assert Topic.objects.get(name="c").configs == {"flush.ms": "1"}


def test_broker_configs_are_static_and_truthful() -> None:
    admin = DjangoAdminService(
        lambda p: "acme", default_partitions=4, auto_create_topics_enable=False
    )
    configs = {e.name: e for e in admin.broker_configs()}
    assert configs["num.partitions"].value == "4"
    assert configs["auto.create.topics.enable"].value == "false"
    assert configs["message.max.bytes"].value == "1048588"
    assert configs["log.retention.ms"].value == str(7 * 24 * 3600 * 1000)
    assert all(e.read_only and e.source == 4 for e in configs.values())
