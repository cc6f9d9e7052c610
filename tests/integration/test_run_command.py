"""The README's run command, as a new user runs it: it prints a login and a key that work."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, Producer

from tests.integration.conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def platform(tmp_path):
    """`./dev run` on the embedded defaults in a fresh var dir, stopped with Ctrl-C after."""
    port = free_port()
    env = {
        **os.environ,
        "DJAFKA_VAR_DIR": str(tmp_path / "var"),
        "DJAFKA_WEB_PORT": str(port),
        "DJAFKA_KAFKA_PORT": str(free_port()),
        "DJAFKA_VENV": str(Path(sys.executable).parent.parent),
    }
    # The run command is about the embedded defaults: no PostgreSQL, no Redis.
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    log = (tmp_path / "run.log").open("w+")
    process = subprocess.Popen(
        [str(ROOT / "dev"), "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def is_up() -> bool:
        if process.poll() is not None:
            log.seek(0)
            raise AssertionError(f"./dev run exited {process.returncode}:\n{log.read()}")
        return httpx.get(f"{base}/api/schema/").status_code == 200

    try:
        try:
            wait_for(is_up, 120, "web up")
        except AssertionError:
            log.seek(0)
            raise AssertionError(log.read()) from None
        log.seek(0)
        yield base, log.read(), process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                raise
        log.close()


@pytest.mark.slow
def test_run_command_prints_working_credentials_and_stops_cleanly(platform):
    base, output, process = platform
    token = re.search(r"API key \(shown once\): (\S+)", output).group(1)
    password = re.search(r"Admin login \(shown once\): admin / (\S+)", output).group(1)
    headers = {"Authorization": f"Bearer {token}"}

    created = httpx.post(
        f"{base}/api/v1/topics", json={"name": "orders", "partition_count": 3}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert httpx.get(f"{base}/api/v1/topics/orders", headers=headers).json()["partition_count"] == 3
    assert httpx.get(f"{base}/api/v1/topics").status_code == 401

    docs = httpx.get(f"{base}/api/docs/")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    # The docs page's assets are served locally (no CDN on a closed network).
    asset = re.search(r'src="([^"]*swagger-ui-bundle[^"]*)"', docs.text).group(1)
    assert httpx.get(f"{base}{asset}").status_code == 200

    with httpx.Client(base_url=base, follow_redirects=True) as browser:
        login_page = browser.get("/admin/login/")
        csrf = browser.cookies["csrftoken"]
        assert login_page.status_code == 200
        admin = browser.post(
            "/admin/login/?next=/admin/brokers/topic/",
            data={"username": "admin", "password": password, "csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{base}/admin/login/"},
        )
        assert admin.status_code == 200
        assert "orders" in admin.text and "demo" in admin.text

    # The broker node it started serves Kafka clients with the printed credentials.
    kafka_port = int(re.search(r"Kafka bootstrap servers: 127.0.0.1:(\d+)", output).group(1))
    username = re.search(r"sasl username (\S+),", output).group(1)
    password = re.search(r"sasl username \S+, password (\S+)", output).group(1)
    config = {
        "bootstrap.servers": f"127.0.0.1:{kafka_port}",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": username,
        "sasl.password": password,
    }
    producer = Producer(config)
    producer.produce("orders", key=b"k", value=b"hello")
    assert producer.flush(30) == 0
    consumer = Consumer({**config, "group.id": "tour", "auto.offset.reset": "earliest"})
    consumer.subscribe(["orders"])
    message = wait_for(lambda: consumer.poll(1), 60, "a record")
    assert message.error() is None and message.value() == b"hello"
    consumer.close()

    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=30) in (0, -signal.SIGINT, 130)
