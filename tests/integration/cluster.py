"""A real Djafka cluster for integration tests: its own database, controller and broker nodes.

Every process is started as the README starts it (`manage.py broker_node`, the controller's
Celery worker with beat), against a fresh database: a SQLite file in a temp dir, or a new
PostgreSQL database when DATABASE_URL points at PostgreSQL.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

from tests.integration.conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def fresh_database(var_dir: Path) -> Iterator[str]:
    """A DATABASE_URL for an empty database, dropped afterwards."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield f"sqlite:///{var_dir / 'cluster.sqlite3'}"
        return
    parts = urlparse(url)
    name = f"djafka_it_{uuid.uuid4().hex[:12]}"
    admin_url = urlunparse(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20) -> int | None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        return self.popen.returncode


@dataclass
class Cluster:
    """Processes of one test cluster and the environment they share."""

    var_dir: Path
    env: dict[str, str]
    processes: dict[str, Process] = field(default_factory=dict)
    broker_ports: dict[int, int] = field(default_factory=dict)
    base_url: str = ""  # set by start_web
    ws_url: str = ""

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.broker_ports.values())

    def manage(self, *args: str) -> str:
        """Run a management command against this cluster's database; its stdout."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120,
        )
        if done.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def spawn(self, name: str, argv: list[str]) -> Process:
        log_path = self.var_dir / f"{name}.log"
        popen = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = Process(name, popen, log_path)
        self.processes[name] = process
        return process

    def start_controller(self) -> Process:
        return self.spawn(
            "controller",
            [sys.executable, "-m", "celery", "-A", "djafka", "worker", "--beat", "-Q",
             "controller", "--pool", "solo", "--hostname", f"controller-{uuid.uuid4().hex[:6]}@%h",
             "--without-mingle", "--without-gossip", "--loglevel", "INFO",
             "--schedule", str(self.var_dir / "beat-schedule")],
        )

    def start_broker(self, broker_id: int, port: int | None = None) -> Process:
        port = port or self.broker_ports.get(broker_id) or free_port()
        self.broker_ports[broker_id] = port
        process = self.spawn(
            f"broker{broker_id}",
            [sys.executable, "manage.py", "broker_node", "--id", str(broker_id), "--port",
             str(port)],
        )
        wait_for(lambda: self._is_listening(process, port), 60, f"broker {broker_id} listening")
        return process

    def start_web(self) -> Process:
        """The web tier (uvicorn on djafka.asgi) on a free port; sets base_url and ws_url."""
        import httpx

        port = free_port()
        web = self.spawn(
            "web",
            [sys.executable, "-m", "uvicorn", "djafka.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--no-access-log",
             "--ws-per-message-deflate", os.environ.get("DJAFKA_WS_DEFLATE", "false")],
        )
        self.base_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/ws/v1/live"

        def is_up() -> bool:
            if web.popen.poll() is not None:
                raise AssertionError(f"web exited:\n{web.log()}")
            return httpx.get(f"{self.base_url}/api/schema/").status_code == 200

        wait_for(is_up, 60, "web up")
        return web

    def rest_client(self, token: str):  # type: ignore[no-untyped-def]
        """An httpx client for the REST API under /api/v1 acting with API key ``token``."""
        import httpx

        return httpx.Client(
            base_url=f"{self.base_url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    def kafka_config(self, token: str, bootstrap: str | None = None) -> dict:
        """confluent-kafka settings that log in with API key ``token`` (SASL/PLAIN: the key's
        prefix as username, its secret as password), to every node or to ``bootstrap``."""
        username, password = token.split(".", 1)
        return {
            "bootstrap.servers": bootstrap or self.bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": username,
            "sasl.password": password,
        }

    def knows_topic(self, token: str, port: int, name: str, partitions: int | None = None) -> bool:
        """Whether the node at ``port`` has the topic's metadata (with a leader for each
        partition, and ``partitions`` of them if given), asked by a new client."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(self.kafka_config(token, f"127.0.0.1:{port}"))
        topic = admin.list_topics(name, timeout=5).topics.get(name)
        return (
            topic is not None and topic.error is None and bool(topic.partitions)
            and (partitions is None or len(topic.partitions) == partitions)
            and all(p.leader >= 0 for p in topic.partitions.values())
        )

    def _is_listening(self, process: Process, port: int) -> bool:
        import socket

        if process.popen.poll() is not None:
            raise AssertionError(f"{process.name} exited:\n{process.log()}")
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) == 0

    def stop(self, timeout_s: float = 20) -> None:
        """SIGTERM every process at once, wait for all, SIGKILL what is left at the timeout."""
        running = [p for p in self.processes.values() if p.popen.poll() is None]
        for process in running:
            with suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in running:
            try:
                process.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.stop(signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(f"===== {p.name}\n{p.log()[-6000:]}" for p in self.processes.values())


def own_redis_url(url: str) -> str:
    """``url`` on a Redis database of this test worker's own, emptied.

    Clusters on two xdist workers at once would otherwise share Celery queues (``broker.1`` is
    every cluster's first node) and take each other's control messages. One worker runs one
    cluster at a time; emptying the database drops what an earlier cluster left behind.
    """
    import redis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    parts = urlparse(url)
    own = urlunparse(parts._replace(path=f"/{1 + index % 15}"))
    redis.Redis.from_url(own).flushdb()
    return own


@contextmanager
def running_cluster(tmp_dir: Path, broker_count: int = 3) -> Iterator[Cluster]:
    """A migrated database, a controller and ``broker_count`` broker nodes, all stopped after."""
    var_dir = tmp_dir / "var"
    var_dir.mkdir(parents=True, exist_ok=True)
    with fresh_database(var_dir) as database_url:
        env = {
            **os.environ,
            "DJAFKA_VAR_DIR": str(var_dir),
            "DATABASE_URL": database_url,
            "DJAFKA_CONTROLLER_TICK_S": "0.5",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        if env.get("REDIS_URL"):
            env["REDIS_URL"] = own_redis_url(env["REDIS_URL"])
        cluster = Cluster(var_dir, env)
        cluster.manage("migrate", "--noinput", "-v0")
        try:
            cluster.start_controller()
            for broker_id in range(1, broker_count + 1):
                cluster.start_broker(broker_id)
            yield cluster
        except BaseException:
            print(cluster.logs())
            raise
        finally:
            cluster.stop()
