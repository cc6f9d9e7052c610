"""Live feed benchmark: produce-to-websocket latency, and fan-out to many websocket clients.

Starts a real cluster (controller, one broker node) and a real web process (uvicorn), as the
integration tests do, then:

1. latency: one subscriber; a producer process sends ``--rate`` records/s for ``--seconds``,
   each value holding its send time (``time.time_ns()``, same machine); the subscriber prints
   p50/p99/max of arrival minus send time. The producer uses linger.ms=1, so that is included.
2. fan-out: ``--clients`` subscribers of one topic (spread over ``--client-procs`` processes);
   the producer sends ``--fanout-rate`` records/s; prints records/s delivered over all clients,
   and how many were skipped (slow clients skipped ahead by the server).

    .venv/bin/python bench/live_bench.py [--rate 10000] [--seconds 10] [--clients 100]
"""

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def produce_paced(bootstrap: str, token: str, topic: str, rate: int, seconds: float) -> None:
    """A separate process: ``rate`` records/s for ``seconds``, each value its send time."""
    from confluent_kafka import Producer

    username, password = token.split(".", 1)
    producer = Producer({
        "bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN", "sasl.username": username, "sasl.password": password,
        "linger.ms": 1, "acks": 1,
    })
    count = int(rate * seconds)
    started = time.monotonic()
    for i in range(count):
        if i % 50 == 0:
            time.sleep(max(0.0, started + i / rate - time.monotonic()))
            producer.poll(0)
        while True:
            try:
                producer.produce(topic, value=b'{"t": %d, "i": %d}' % (time.time_ns(), i))
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(30)


def subscribe_message(topic: str, sub_id: str) -> str:
    return json.dumps({"action": "subscribe", "topic": topic, "id": sub_id})


async def _latency_client(url: str, topic: str, expected: int, ready, timeout_s: float):
    import orjson
    from websockets.asyncio.client import connect

    latencies_ms, skipped = [], 0
    async with connect(url, max_size=None) as ws:
        await ws.send(subscribe_message(topic, "lat"))
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        ready.set()
        deadline = time.monotonic() + timeout_s
        while len(latencies_ms) + skipped < expected and time.monotonic() < deadline:
            try:
                text = await asyncio.wait_for(ws.recv(), 5)
            except TimeoutError:
                break
            now = time.time_ns()
            frame = orjson.loads(text)
            if frame["type"] == "record":
                latencies_ms.append((now - frame["value"]["t"]) / 1e6)
            elif frame["type"] == "skipped":
                skipped += frame["to_offset"] - frame["from_offset"] + 1
    return latencies_ms, skipped


def _fanout_clients(url: str, topic: str, clients: int, expected: int, ready, counts,
                    index: int, timeout_s: float) -> None:
    """A separate process holding ``clients`` sockets; puts (records, skipped, seconds)."""
    import orjson
    from websockets.asyncio.client import connect

    async def one(n: int, started: asyncio.Event, tally: list) -> None:
        async with connect(url, max_size=None) as ws:
            await ws.send(subscribe_message(topic, f"c{n}"))
            await ws.recv()
            tally[2] += 1
            if tally[2] == clients:
                started.set()
            deadline = time.monotonic() + timeout_s
            seen = 0
            while seen < expected and time.monotonic() < deadline:
                try:
                    frame = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                except TimeoutError:
                    break
                if frame["type"] == "record":
                    seen += 1
                    tally[0] += 1
                    tally[3] = time.monotonic()
                elif frame["type"] == "skipped":
                    seen += frame["to_offset"] - frame["from_offset"] + 1
                    tally[1] += frame["to_offset"] - frame["from_offset"] + 1

    async def main() -> None:
        started = asyncio.Event()
        tally = [0, 0, 0, 0.0]  # records, skipped, subscribed, last arrival
        tasks = [asyncio.create_task(one(n + index * clients, started, tally))
                 for n in range(clients)]
        await started.wait()
        ready.set()
        t0 = time.monotonic()
        await asyncio.gather(*tasks)
        counts.put((tally[0], tally[1], (tally[3] or time.monotonic()) - t0))

    asyncio.run(main())


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--fanout-rate", type=int, default=1_000)
    parser.add_argument("--fanout-seconds", type=float, default=10)
    args = parser.parse_args()

    import httpx

    from tests.integration.cluster import running_cluster
    from tests.integration.conftest import free_port, wait_for

    with tempfile.TemporaryDirectory(prefix="live-bench-") as tmp, running_cluster(
        Path(tmp), broker_count=1
    ) as cluster:
        port = free_port()
        cluster.spawn("web", [sys.executable, "-m", "uvicorn", "djafka.asgi:application",
                              "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                              "--log-level", "warning"])
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{base}/api/schema/").status_code == 200, 60, "web up")
        token = cluster.manage("issue_api_key", "bench", "--create").strip()
        rest = httpx.Client(base_url=f"{base}/api/v1",
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)
        for topic in ("latency", "fanout"):
            assert rest.post("/topics", json={"name": topic, "partition_count": 1}
                             ).status_code == 201
            wait_for(lambda t=topic: rest.get(f"/topics/{t}/partitions").status_code == 200, 30)
        url = f"ws://127.0.0.1:{port}/ws/v1/live?api_key={token}"
        ctx = multiprocessing.get_context("spawn")

        # 1. Latency at --rate records/s, one subscriber.
        expected = int(args.rate * args.seconds)
        ready = asyncio.Event()

        async def latency_run():
            client = asyncio.create_task(
                _latency_client(url, "latency", expected, ready, args.seconds + 30)
            )
            await ready.wait()
            producer = ctx.Process(target=produce_paced, args=(
                cluster.bootstrap, token, "latency", args.rate, args.seconds))
            producer.start()
            result = await client
            producer.join()
            return result

        latencies, skipped = asyncio.run(latency_run())
        latencies.sort()
        print(f"latency: {len(latencies)} of {expected} records at {args.rate} records/s "
              f"({skipped} skipped)")
        if latencies:
            print(f"  produce-to-websocket ms: p50 {percentile(latencies, 0.5):.2f}  "
                  f"p99 {percentile(latencies, 0.99):.2f}  max {latencies[-1]:.2f}")

        # 2. Fan-out to --clients sockets.
        expected = int(args.fanout_rate * args.fanout_seconds)
        per_proc = args.clients // args.client_procs
        counts = ctx.Queue()
        readies, procs = [], []
        for index in range(args.client_procs):
            event = ctx.Event()
            proc = ctx.Process(target=_fanout_clients, args=(
                url, "fanout", per_proc, expected, event, counts, index,
                args.fanout_seconds + 60))
            proc.start()
            readies.append(event)
            procs.append(proc)
        for event in readies:
            event.wait(120)
        started = time.monotonic()
        produce_paced(cluster.bootstrap, token, "fanout", args.fanout_rate, args.fanout_seconds)
        results = [counts.get(timeout=args.fanout_seconds + 120) for _ in procs]
        for proc in procs:
            proc.join()
        elapsed = max(r[2] for r in results) or (time.monotonic() - started)
        delivered = sum(r[0] for r in results)
        skipped = sum(r[1] for r in results)
        clients = per_proc * args.client_procs
        print(f"fan-out: {clients} clients, {expected} records produced at "
              f"{args.fanout_rate}/s: {delivered} delivered in {elapsed:.1f} s = "
              f"{delivered / elapsed:,.0f} records/s over all clients "
              f"({delivered / (clients * expected):.1%} of all; {skipped} skipped)")


if __name__ == "__main__":
    main()
