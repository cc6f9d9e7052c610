"""Live feed benchmark: produce-to-websocket latency, and fan-out to many websocket clients.

Starts a real cluster (controller, one broker node) and a real web process (uvicorn, started as
``Cluster.start_web`` starts it), as the integration tests do, then:

0. peer: the same producer read by a confluent-kafka consumer straight from the broker node,
   the floor under the web tier's latency (same machine, same cores).
1. latency: one subscriber; a producer process sends ``--rate`` records/s for ``--seconds``,
   each value holding its send time (``time.time_ns()``, same machine); prints p50/p99/max of
   arrival minus send time. The producer uses linger.ms=1, so that is included.
2. fan-out: ``--clients`` subscribers of one topic (spread over ``--client-procs`` processes);
   the producer sends ``--fanout-rate`` records/s; prints records/s delivered over all
   clients, how many were skipped (slow clients skipped ahead by the server), and p50/p99/max
   of produce-to-websocket latency over every record every client got.

Each phase also prints the CPU time the web process and the broker node spent on it, per
record delivered: the clients, the producer, uvicorn and the broker share this machine's
cores, so the CPU figures say more than the latencies when the machine is busy.

    .venv/bin/python bench/live_bench.py [--rate 10000] [--seconds 10] [--clients 100]
        [--no-ws-deflate] [--profile-web web.prof] [--skip-peer|--skip-latency|--skip-fanout]

``--no-ws-deflate`` starts uvicorn with ``--ws-per-message-deflate false`` (uvicorn compresses
every frame by default when the client offers it, as browsers and ``websockets`` do);
``--profile-web`` runs uvicorn under cProfile (its event loop thread) and writes the stats there.
"""

import argparse
import array
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# uvicorn under cProfile (its event loop's thread). uvicorn raises SIGTERM again once it has
# shut down; turned into SystemExit here, so that the stats are written.
PROFILED_UVICORN = """
import cProfile, signal, sys
import uvicorn

def stop(signum, frame):
    raise SystemExit(0)

signal.signal(signal.SIGTERM, stop)
profile = cProfile.Profile()
profile.enable()
try:
    uvicorn.main.main(args=sys.argv[2:], standalone_mode=False)
finally:
    profile.disable()
    profile.dump_stats(sys.argv[1])
"""


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


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Tally:
    """What one client got: records (their latencies in ms), records skipped, frames."""

    def __init__(self) -> None:
        self.latencies_ms = array.array("f")
        self.skipped = 0
        self.frames = 0
        self.last_arrival = 0.0

    def take(self, frame: dict, now_ns: int) -> int:
        """Count a frame; how many records it accounts for (got or skipped)."""
        self.frames += 1
        if frame["type"] == "records":
            append = self.latencies_ms.append
            for record in frame["records"]:
                append((now_ns - record["value"]["t"]) / 1e6)
            self.last_arrival = time.monotonic()
            return len(frame["records"])
        if frame["type"] == "skipped":
            missed = frame["to_offset"] - frame["from_offset"] + 1
            self.skipped += missed
            return missed
        return 0


def peer_consume(bootstrap: str, token: str, topic: str, expected: int, ready, results,
                 timeout_s: float) -> None:
    """A separate process: a confluent-kafka consumer of ``topic`` from its log end, straight
    from the broker node (no web tier); puts the latencies of the records it got."""
    from confluent_kafka import OFFSET_END, Consumer, TopicPartition

    username, password = token.split(".", 1)
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN", "sasl.username": username, "sasl.password": password,
        "group.id": "live-bench-peer", "enable.auto.commit": False,
        "fetch.wait.max.ms": 500, "fetch.min.bytes": 1,
    })
    consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
    consumer.poll(1.0)  # connected and positioned before the producer starts
    ready.set()
    latencies = array.array("f")
    deadline = time.monotonic() + timeout_s
    while len(latencies) < expected and time.monotonic() < deadline:
        # As the web tier's tail reads: the first message as soon as it is there, then the rest
        # already fetched (consume() with a timeout waits for all it asks for).
        first = consumer.poll(0.5)
        if first is None:
            continue
        for message in [first, *consumer.consume(10_000, timeout=0)]:
            if message.error() is None:
                sent_ns = int(message.value().split(b'"t": ', 1)[1].split(b",", 1)[0])
                latencies.append((time.time_ns() - sent_ns) / 1e6)
    consumer.close()
    results.put(latencies.tobytes())


async def _read_frames(ws, tally: Tally, expected: int, timeout_s: float) -> None:
    import orjson

    deadline = time.monotonic() + timeout_s
    seen = 0
    while seen < expected and time.monotonic() < deadline:
        try:
            text = await asyncio.wait_for(ws.recv(), 5)
        except TimeoutError:
            break
        seen += tally.take(orjson.loads(text), time.time_ns())


async def _latency_client(url: str, topic: str, expected: int, ready, timeout_s: float
                          ) -> Tally:
    import orjson
    from websockets.asyncio.client import connect

    tally = Tally()
    async with connect(url, max_size=None) as ws:
        await ws.send(subscribe_message(topic, "lat"))
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        ready.set()
        await _read_frames(ws, tally, expected, timeout_s)
    return tally


def _fanout_clients(url: str, topic: str, clients: int, expected: int, ready, results,
                    index: int, timeout_s: float) -> None:
    """A separate process holding ``clients`` sockets; puts its clients' combined tally."""
    from websockets.asyncio.client import connect

    async def one(n: int, tally: Tally, subscribed: list, started: asyncio.Event) -> None:
        async with connect(url, max_size=None) as ws:
            await ws.send(subscribe_message(topic, f"c{n}"))
            await ws.recv()
            subscribed.append(n)
            if len(subscribed) == clients:
                started.set()
            await _read_frames(ws, tally, expected, timeout_s)

    async def main() -> None:
        started = asyncio.Event()
        tally, subscribed = Tally(), []
        tasks = [asyncio.create_task(one(n + index * clients, tally, subscribed, started))
                 for n in range(clients)]
        await started.wait()
        ready.set()
        t0 = time.monotonic()
        await asyncio.gather(*tasks)
        results.put((tally.latencies_ms.tobytes(), tally.skipped, tally.frames,
                     (tally.last_arrival or time.monotonic()) - t0))

    asyncio.run(main())


def percentile(ordered, q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def latency_line(latencies_ms) -> str:
    ordered = sorted(latencies_ms)
    return (f"p50 {percentile(ordered, 0.5):.2f}  p99 {percentile(ordered, 0.99):.2f}  "
            f"max {ordered[-1] if ordered else 0:.2f}")


class CpuMeter:
    """CPU seconds the web process and the broker node spend between start() and line()."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.before: dict[str, float] = {}

    def start(self) -> None:
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def line(self, records: int) -> str:
        parts = []
        for name, pid in self.pids.items():
            spent = cpu_seconds(pid) - self.before[name]
            parts.append(f"{name} {spent:.2f} s ({spent * 1e6 / max(records, 1):.1f} µs/record)")
        return "CPU: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--fanout-rate", type=int, default=1_000)
    parser.add_argument("--fanout-seconds", type=float, default=10)
    parser.add_argument("--no-ws-deflate", action="store_true")
    parser.add_argument("--profile-web", metavar="PATH")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-fanout", action="store_true")
    args = parser.parse_args()

    import httpx

    from tests.integration.cluster import running_cluster
    from tests.integration.conftest import free_port, wait_for

    with tempfile.TemporaryDirectory(prefix="live-bench-") as tmp, running_cluster(
        Path(tmp), broker_count=1
    ) as cluster:
        port = free_port()
        uvicorn_args = ["djafka.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                        "--no-access-log", "--log-level", "warning"]
        if args.no_ws_deflate:
            uvicorn_args += ["--ws-per-message-deflate", "false"]
        if args.profile_web:
            argv = [sys.executable, "-c", PROFILED_UVICORN, args.profile_web, *uvicorn_args]
        else:
            argv = [sys.executable, "-m", "uvicorn", *uvicorn_args]
        web = cluster.spawn("web", argv)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{base}/api/schema/").status_code == 200, 60, "web up")
        token = cluster.manage("issue_api_key", "bench", "--create").strip()
        rest = httpx.Client(base_url=f"{base}/api/v1",
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)
        for topic in ("peer", "latency", "fanout"):
            assert rest.post("/topics", json={"name": topic, "partition_count": 1}
                             ).status_code == 201
            wait_for(lambda t=topic: all(
                p["leader"] for p in rest.get(f"/topics/{t}").json()["partitions"]
            ), 60, "leaders placed")
            wait_for(lambda t=topic: rest.get(f"/topics/{t}/partitions").status_code == 200,
                     60, "offsets")
        url = f"ws://127.0.0.1:{port}/ws/v1/live?api_key={token}"
        ctx = multiprocessing.get_context("spawn")
        cpu = CpuMeter({"web": web.popen.pid, "broker": cluster.processes["broker1"].popen.pid})

        if not args.skip_latency and not args.skip_peer:
            # 0. The peer: the same producer, read by a Kafka client from the broker node.
            expected = int(args.rate * args.seconds)
            results, ready = ctx.Queue(), ctx.Event()
            peer = ctx.Process(target=peer_consume, args=(
                cluster.bootstrap, token, "peer", expected, ready, results, args.seconds + 30))
            peer.start()
            ready.wait(60)
            produce_paced(cluster.bootstrap, token, "peer", args.rate, args.seconds)
            latencies = array.array("f")
            latencies.frombytes(results.get(timeout=args.seconds + 60))
            peer.join()
            print(f"peer: confluent-kafka consumer on the broker node (no web tier), "
                  f"{len(latencies)} of {expected} records at {args.rate} records/s")
            print(f"  produce-to-consumer ms: {latency_line(latencies)}")

        if not args.skip_latency:
            # 1. Latency at --rate records/s, one subscriber.
            expected = int(args.rate * args.seconds)
            ready = asyncio.Event()

            async def latency_run() -> Tally:
                client = asyncio.create_task(
                    _latency_client(url, "latency", expected, ready, args.seconds + 30)
                )
                await ready.wait()
                cpu.start()
                producer = ctx.Process(target=produce_paced, args=(
                    cluster.bootstrap, token, "latency", args.rate, args.seconds))
                producer.start()
                result = await client
                producer.join()
                return result

            tally = asyncio.run(latency_run())
            got = len(tally.latencies_ms)
            print(f"latency: {got} of {expected} records at {args.rate} records/s "
                  f"({tally.skipped} skipped) in {tally.frames} frames")
            print(f"  produce-to-websocket ms: {latency_line(tally.latencies_ms)}")
            print(f"  {cpu.line(got)}")

        if not args.skip_fanout:
            # 2. Fan-out to --clients sockets.
            expected = int(args.fanout_rate * args.fanout_seconds)
            per_proc = args.clients // args.client_procs
            results = ctx.Queue()
            readies, procs = [], []
            for index in range(args.client_procs):
                event = ctx.Event()
                proc = ctx.Process(target=_fanout_clients, args=(
                    url, "fanout", per_proc, expected, event, results, index,
                    args.fanout_seconds + 60))
                proc.start()
                readies.append(event)
                procs.append(proc)
            for event in readies:
                event.wait(120)
            started = time.monotonic()
            cpu.start()
            produce_paced(cluster.bootstrap, token, "fanout", args.fanout_rate,
                          args.fanout_seconds)
            answers = [results.get(timeout=args.fanout_seconds + 120) for _ in procs]
            for proc in procs:
                proc.join()
            latencies = array.array("f")
            for answer in answers:
                latencies.frombytes(answer[0])
            delivered = len(latencies)
            elapsed = max(a[3] for a in answers) or (time.monotonic() - started)
            skipped = sum(a[1] for a in answers)
            frames = sum(a[2] for a in answers)
            clients = per_proc * args.client_procs
            print(f"fan-out: {clients} clients, {expected} records produced at "
                  f"{args.fanout_rate}/s: {delivered} delivered in {elapsed:.1f} s = "
                  f"{delivered / elapsed:,.0f} records/s over all clients "
                  f"({delivered / (clients * expected):.1%} of all; {skipped} skipped) "
                  f"in {frames} frames")
            print(f"  produce-to-websocket ms over all clients: {latency_line(latencies)}")
            print(f"  {cpu.line(delivered)}")


if __name__ == "__main__":
    main()
