"""Benchmark: REST produce and read through one web process, beside Redis Streams.

Run from the repository root: .venv/bin/python bench/rest_bench.py [--records N] [--clients C]
[--rounds R] [--profile]

Starts a real cluster (controller and one broker node, SQLite, as tests/integration/cluster.py
starts it) and one web process (uvicorn, no access log), creates a 3-partition topic with an
API key, then C concurrent httpx clients POST JSON batches of 1,000 records of 100 bytes
(string values, keyed) for N records, then N more with JSON object values of about 100 bytes,
and redis-py puts the same N records through a Redis Stream on 127.0.0.1:6379 (XADD in
pipelines of 1,000): R rounds of these three, back to back, then C clients read every record
back over REST (max_records 10,000 per request) and redis-py reads the stream (XREAD in chunks
of 10,000). It ends with the medians of the rounds and REST's ratio to XADD. `--profile` runs
the web process under cProfile and prints its top functions after the produce phase.
"""

from __future__ import annotations

import argparse
import os
import pstats
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.cluster import running_cluster  # noqa: E402
from tests.integration.conftest import free_port, wait_for  # noqa: E402

BATCH = 1000
VALUE = "v" * 100
PARTITIONS = 3


def report(name: str, records: int, seconds: float) -> None:
    mb = records * 100 / 1e6
    print(f"{name:<34} {records / seconds:>12,.0f} records/s {mb / seconds:>8.1f} MB/s "
          f"({seconds:.2f} s)")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def print_cpu(processes: dict[str, int], before: dict[str, float], seconds: float) -> None:
    """Each process's share of one core over the phase: which one limits the figure."""
    shares = ", ".join(
        f"{name} {(cpu_seconds(pid) - before[name]) / seconds:.0%}"
        for name, pid in processes.items()
    )
    print(f"  CPU (of one core): {shares}")


def json_value(n: int) -> dict:
    """A JSON object of about 100 bytes, as a driver-location event would be."""
    return {"driver": f"d-{n % 1000:04}", "lat": 52.520008 + n % 97 / 1e4,
            "lon": 13.404954 - n % 89 / 1e4, "speed_kmh": 42.5, "ts": 1_700_000_000_000 + n}


def rest_produce(base: str, token: str, records: int, clients: int,
                 value_format: str = "string") -> float:
    """POST ``records`` in batches of BATCH from ``clients`` threads: the seconds it took.

    ``value_format`` "string": values are 100-character strings; "json": JSON objects of about
    100 bytes (``json_value``), which the web tier writes as the JSON text given.
    """
    bodies_per_client = records // BATCH // clients
    errors: list[str] = []

    # Bodies are encoded before the clock starts: the figure is the web tier's, not the
    # benchmark's own JSON encoding (the clients share this process's GIL).
    def value(n: int) -> object:
        return VALUE if value_format == "string" else json_value(n)

    bodies = [
        orjson.dumps({"value_format": value_format, "records": [
            {"key": f"k{(b * BATCH + i) % 1000}", "value": value(b * BATCH + i)}
            for i in range(BATCH)
        ]})
        for b in range(min(bodies_per_client * clients, 50))
    ]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def run(client_no: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            for b in range(bodies_per_client):
                body = bodies[(client_no * bodies_per_client + b) % len(bodies)]
                answer = http.post("/api/v1/topics/bench/records", content=body)
                if answer.status_code != 200 or b'"error"' in answer.content:
                    errors.append(answer.text[:300])

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        print(f"  {len(errors)} failed requests, first: {errors[0]}")
    return elapsed


def rest_read(base: str, token: str, clients: int) -> tuple[int, float]:
    counts = [0] * PARTITIONS

    def run(partition: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                          timeout=60) as http:
            offset = 0
            while True:
                body = http.get(
                    f"/api/v1/topics/bench/partitions/{partition}/records",
                    params={"offset": offset, "max_records": 10_000, "max_bytes": 8 << 20,
                            "value_format": "string"},
                ).json()
                counts[partition] += len(body["records"])
                offset = body["next_offset"]
                if offset >= body["log_end_offset"]:
                    return

    threads = [threading.Thread(target=run, args=(p,)) for p in range(PARTITIONS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts), time.perf_counter() - started


def redis_client():
    """redis-py on 127.0.0.1:6379, or None (saying so) when it does not answer."""
    import redis

    r = redis.Redis(host="127.0.0.1", port=6379)
    try:
        r.ping()
    except redis.ConnectionError:
        print("redis on 127.0.0.1:6379 not reachable: its rows are skipped")
        return None
    return r


def xadd(r, stream: str, records: int) -> float:
    """The same records into a Redis Stream, XADD in pipelines of BATCH: the seconds it took."""
    r.delete(stream)
    started = time.perf_counter()
    for first in range(0, records, BATCH):
        pipe = r.pipeline(transaction=False)
        for i in range(first, min(first + BATCH, records)):
            pipe.xadd(stream, {"k": f"k{i % 1000}", "v": VALUE})
        pipe.execute()
    return time.perf_counter() - started


def xread(r, stream: str, records: int) -> tuple[int, float]:
    """The stream read back with XREAD of 10,000 at a time: records read and seconds."""
    started = time.perf_counter()
    read, last = 0, "0"
    while read < records:
        chunk = r.xread({stream: last}, count=10_000)
        entries = chunk[0][1]
        read += len(entries)
        last = entries[-1][0]
    return read, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, running_cluster(Path(tmp), 1) as cluster:
        port = free_port()
        profile_path = Path(tmp) / "web.prof"
        serve = ["-m", "uvicorn", "djafka.asgi:application", "--host", "127.0.0.1",
                 "--port", str(port), "--no-access-log", "--log-level", "warning"]
        if args.profile:
            serve = ["-m", "cProfile", "-o", str(profile_path), *serve]
        web = cluster.spawn("web", [sys.executable, *serve])
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{base}/api/schema/").status_code == 200, 60, "web up")
        token = cluster.manage("issue_api_key", "bench", "--create").strip()
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{base}/api/v1/topics", headers=headers,
                             json={"name": "bench", "partition_count": PARTITIONS})
        assert created.status_code == 201, created.text
        wait_for(lambda: httpx.get(f"{base}/api/v1/topics/bench/partitions",
                                   headers=headers).status_code == 200, 30, "leaders")
        # Warm up: the producer and consumer connections, Django's first requests.
        rest_produce(base, token, BATCH * args.clients, args.clients)

        records = args.records // (BATCH * args.clients) * BATCH * args.clients
        print(f"{records:,} records of 100 B, batches of {BATCH}, {args.clients} clients, "
              f"one web process, one broker node")
        processes = {"web": web.popen.pid, "broker node": cluster.processes["broker1"].popen.pid,
                     "bench clients": os.getpid()}
        # This machine's speed drifts by tens of percent within minutes (shared hosts): each
        # round runs REST and its peer back to back, and the summary takes the medians.
        r = redis_client()
        stream = f"rest-bench-{os.getpid()}"
        rates: dict[str, list[float]] = {"string": [], "json": [], "xadd": []}
        for round_no in range(1, args.rounds + 1):
            print(f"round {round_no} of {args.rounds}")
            for value_format, label in (("string", "REST produce (acks=1)"),
                                        ("json", "REST produce, JSON object values")):
                before = {name: cpu_seconds(pid) for name, pid in processes.items()}
                seconds = rest_produce(base, token, records, args.clients, value_format)
                report(label, records, seconds)
                print_cpu(processes, before, seconds)
                rates[value_format].append(records / seconds)
            if r is not None:
                seconds = xadd(r, stream, records)
                report("redis XADD (pipelines of 1,000)", records, seconds)
                rates["xadd"].append(records / seconds)
        before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        read, seconds = rest_read(base, token, args.clients)
        report(f"REST read ({PARTITIONS} partitions, 10k/req)", read, seconds)
        print_cpu(processes, before, seconds)
        if args.profile:
            os.killpg(web.popen.pid, signal.SIGINT)
            web.popen.wait(30)
            stats = pstats.Stats(str(profile_path))
            stats.sort_stats("tottime").print_stats(25)
    if r is not None:
        read, seconds = xread(r, stream, records)
        report("redis XREAD (10,000 per call)", read, seconds)
        r.delete(stream)
    print(f"medians of {args.rounds} rounds:")
    for key, label in (("string", "REST produce"), ("json", "REST produce, JSON values")):
        median = statistics.median(rates[key])
        beside = (f" = {median / statistics.median(rates['xadd']):.2f}x redis XADD"
                  if rates["xadd"] else "")
        print(f"  {label:<32} {median:>12,.0f} records/s{beside}")
    if rates["xadd"]:
        print(f"  {'redis XADD':<32} {statistics.median(rates['xadd']):>12,.0f} records/s")


if __name__ == "__main__":
    main()
