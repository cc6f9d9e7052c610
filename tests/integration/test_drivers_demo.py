"""The drivers demo command against a real broker node: its records, read back with a Kafka
client, are each driver's positions keyed by its id, in one partition, in time order; and bad
options stop it with a clear error before anything is produced."""

import json
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, TopicPartition
from django.core.management import call_command
from django.core.management.base import CommandError

from djafka.drivers import CITY, HEADING_DEG, STATUSES
from tests.integration.cluster import ROOT, running_cluster
from tests.integration.conftest import wait_for

DRIVERS = 40
RATE = 4


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("drivers-demo"), broker_count=1) as cluster:
        cluster.manage("bootstrap_demo")
        cluster.token = cluster.manage("issue_api_key", "demo").strip()
        yield cluster


def read_topic(cluster, topic: str) -> list:
    """Every record of ``topic``, from the log start to the high watermark of each partition."""
    consumer = Consumer({
        **cluster.kafka_config(cluster.token), "group.id": "drivers-demo-test",
        "enable.auto.commit": False,
    })
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records, position = [], dict.fromkeys(partitions, 0)

        def caught_up() -> bool:
            for message in consumer.consume(1000, timeout=1):
                assert message.error() is None, message.error()
                records.append(message)
                position[message.partition()] = message.offset() + 1
            return all(position[p] >= ends[p] for p in partitions)

        wait_for(caught_up, 60, "all records read")
        return records
    finally:
        consumer.close()


@pytest.mark.slow
def test_each_drivers_positions_are_keyed_by_its_id_in_one_partition_in_time_order(cluster):
    output = cluster.manage(
        "drivers_demo", "--drivers", str(DRIVERS), "--rate", str(RATE), "--duration", "4",
        "--seed", "7", "--report-every", "1",
    )
    assert "Created topic 'driver-locations' with 6 partitions." in output
    assert re.search(r"records sent \(\d[\d,]*/s\)", output), output  # a progress line
    done = re.search(r"(\d[\d,]*) records sent, (\d[\d,]*) delivered .* 0 failed", output)
    assert done, output
    sent, delivered = (int(n.replace(",", "")) for n in done.groups())
    assert sent == delivered

    records = read_topic(cluster, "driver-locations")
    assert len(records) == delivered
    by_driver: dict[str, list] = defaultdict(list)
    for message in records:
        by_driver[message.key().decode()].append(message)
    # Every driver reports within its first interval (offline ones once, to say so).
    assert sorted(by_driver) == [f"driver-{n:03d}" for n in range(1, DRIVERS + 1)]
    assert len(records) > 3 * DRIVERS  # online drivers keep reporting, not once each

    for driver_id, messages in by_driver.items():
        assert len({m.partition() for m in messages}) == 1, driver_id
        messages.sort(key=lambda m: m.offset())
        values = [json.loads(m.value()) for m in messages]
        timestamps = [v["ts_ms"] for v in values]
        assert timestamps == sorted(timestamps), driver_id
        for message, value in zip(messages, values, strict=True):
            assert value["driver_id"] == driver_id
            assert message.timestamp()[1] == value["ts_ms"]
            assert CITY.is_on_street(value["x_m"], value["y_m"]), value
            assert value["district"] == CITY.district_at(value["x_m"], value["y_m"]).name
            assert value["heading_deg"] in HEADING_DEG.values()
            assert value["status"] in STATUSES
            assert value["speed_kmh"] >= 0
    # The topic's records spread over its partitions by key.
    assert len({m.partition() for m in records}) > 1


@pytest.mark.slow
def test_ctrl_c_stops_the_command_cleanly_after_flushing(cluster):
    process = subprocess.Popen(
        [sys.executable, "manage.py", "drivers_demo", "--drivers", "10", "--topic",
         "drivers-ctrl-c", "--partitions", "2", "--report-every", "0.5"],
        cwd=ROOT, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any("records sent (" in line for line in seen):
            line = process.stdout.readline()  # a progress line every half second
            assert line and time.monotonic() < deadline, "".join(seen) + process.stderr.read()
            seen.append(line)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    done = re.search(r"(\d[\d,]*) records sent, (\d[\d,]*) delivered", out)
    assert done, out
    assert done.group(1) == done.group(2) != "0"
    assert len(read_topic(cluster, "drivers-ctrl-c")) == int(done.group(2).replace(",", ""))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"drivers": 0}, r"--drivers must be at least 1; 0 was given"),
        ({"drivers": -5}, r"--drivers must be at least 1; -5 was given"),
        ({"rate": 0.0}, r"--rate must be above 0 updates per second; 0 was given"),
        ({"rate": -2.0}, r"--rate must be above 0 updates per second; -2 was given"),
        ({"duration": 0.0}, r"--duration must be above 0 seconds"),
        ({"tenant": "nobody"}, r"Unknown tenant 'nobody' \(tenants: acme\)"),
    ],
)
def test_bad_options_are_a_command_error_with_a_clear_message(tenant, options, message):
    with pytest.raises(CommandError, match=message):
        call_command("drivers_demo", **{"tenant": "acme", **options})


def test_without_a_live_broker_node_the_command_says_to_start_the_platform(tenant, settings):
    from brokers.models import Topic

    settings.DJAFKA_KAFKA_BOOTSTRAP = ""  # the live brokers' addresses, of which there are none

    with pytest.raises(CommandError, match=r"No broker node is alive.*\./dev run"):
        call_command("drivers_demo", tenant="acme")
    assert not Topic.objects.filter(tenant=tenant).exists()  # nothing made on the way out


def test_an_inactive_tenant_is_refused(tenant):
    tenant.is_active = False
    tenant.save()
    with pytest.raises(CommandError, match=r"Tenant 'acme' is inactive"):
        call_command("drivers_demo", tenant="acme")
