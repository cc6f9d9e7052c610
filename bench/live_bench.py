"""Live feed benchmark: produce-to-websocket latency, and fan-out to many websocket clients.

Starts a real cluster (controller, one broker node) and a real web process (uvicorn, started as
``Cluster.start_web`` starts it), as the integration tests do, then:

0. peer: the same producer read by a confluent-kafka consumer straight from the broker node,
   the floor under the web tier's latency (same machine, same cores).
1. latency: one subscriber; the producer sends ``--rate`` records/s for ``--seconds``, each
   value holding its send time (``time.time_ns()``, same machine), in bursts of ``--burst``
   records (it sleeps between bursts to keep the rate; linger.ms=1 is included).
2. fan-out: ``--clients`` subscribers of one topic (in ``--client-procs`` processes, one by
   default) while the producer sends ``--fanout-rate`` records/s; prints records/s delivered
   over all clients, how many were skipped (slow clients skipped ahead by the server), the
   latency over every record every client got, and where it went: per batch, from its first
   record's send to the first socket written, then on to the last socket written.

Latency is printed twice (p50/p99/max): "at the socket", the kernel's receive time of the
frame (when the web process wrote it: the server's latency), and "read by the client", when
the client's loop had it unframed and inflated. ``live_bench_clients.py`` says how and why.

Each phase also prints the CPU the web process, the broker node and the clients spent on it,
per record delivered: they share this machine's cores, so the CPU figures say more than the
latencies when the machine is busy.

    .venv/bin/python bench/live_bench.py [--rate 10000] [--seconds 10] [--clients 100]
        [--ws-deflate] [--no-client-deflate] [--profile-web web.prof]
        [--skip-peer|--skip-latency|--skip-fanout]

``--ws-deflate`` starts uvicorn with ``--ws-per-message-deflate true``, as
``DJAFKA_WS_DEFLATE=true`` starts the platform's web process (off by default: see
brokers/live/README.md, "Speed"), so every frame is compressed when the client offers it, as
browsers and ``websockets`` do;
``--no-client-deflate`` has the clients not offer it; ``--profile-web`` runs uvicorn under
cProfile (its event loop thread) and writes the stats there.
"""

import argparse
import array
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from live_bench_clients import merge_write, run_clients  # noqa: E402  (beside this file)

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


def produce_paced(bootstrap: str, token: str, topic: str, rate: int, seconds: float,
                  burst: int = 50) -> None:
    """``rate`` records/s for ``seconds``, each value its send time, in bursts of ``burst``
    records (it sleeps between bursts to keep the rate)."""
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
        if i % burst == 0:
            time.sleep(max(0.0, started + i / rate - time.monotonic()))
            producer.poll(0)
        while True:
            try:
                producer.produce(topic, value=b'{"t": %d, "i": %d}' % (time.time_ns(), i))
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(30)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


class Delivered:
    """What every client process of a phase got, and the CPU each side spent on it."""

    def __init__(self, answers: list[dict], cpu_line: str):
        self.at_socket_ms = array.array("f")
        self.read_ms = array.array("f")
        writes: dict[int, tuple[int, int, int]] = {}
        for answer in answers:
            self.at_socket_ms.frombytes(answer["at_socket_ms"])
            self.read_ms.frombytes(answer["read_ms"])
            for offset, write in answer["writes"].items():
                writes[offset] = merge_write(writes.get(offset), write)
        self.delivered = len(self.at_socket_ms)
        self.skipped = sum(a["skipped"] for a in answers)
        self.frames = sum(a["frames"] for a in answers)
        self.elapsed_s = max(a["elapsed_s"] for a in answers) or 1e-9
        self.client_cpu_s = sum(a["cpu_s"] for a in answers)
        self.has_kernel_stamps = all(a["has_kernel_stamps"] for a in answers)
        self.cpu_line = cpu_line
        # Where the time goes, per batch that every socket got as one frame: from its first
        # record's send to the first socket written (producer, broker node, the web process's
        # tail and dispatch), then from the first socket written to the last (the fan-out).
        self.first_write_ms = [(first - sent) / 1e6 for sent, first, _ in writes.values()]
        self.write_spread_ms = [(last - first) / 1e6 for _, first, last in writes.values()]

    def print_latencies(self, over: str = "") -> None:
        where = "at the socket" if self.has_kernel_stamps else (
            "at the socket (no kernel stamps here: when read from it)")
        print(f"  produce-to-websocket ms{over}, {where}: {latency_line(self.at_socket_ms)}")
        print(f"  produce-to-websocket ms{over}, read by the client: "
              f"{latency_line(self.read_ms)}")
        if over and self.has_kernel_stamps:
            print(f"    first socket written ms after a batch's first record was sent: "
                  f"{latency_line(self.first_write_ms)}")
            print(f"    then to the last socket written ms: {latency_line(self.write_spread_ms)}")
        per_record = self.client_cpu_s * 1e6 / max(self.delivered, 1)
        print(f"  {self.cpu_line}, clients {self.client_cpu_s:.2f} s "
              f"({per_record:.1f} µs/record)")


def read_while_producing(ctx, url: str, topic: str, sub_ids: list[str], procs: int,
                         expected: int, args, cpu: CpuMeter, produce) -> Delivered:
    """Subscribe ``sub_ids`` (over ``procs`` client processes), run ``produce`` and collect
    what every client got."""
    procs = max(1, min(procs, len(sub_ids)))
    results = ctx.Queue()
    readies, workers = [], []
    for index in range(procs):
        ready = ctx.Event()
        worker = ctx.Process(target=run_clients, args=(
            url, topic, sub_ids[index::procs], expected, not args.no_client_deflate, ready,
            results, args.seconds + args.fanout_seconds + 60))
        worker.start()
        readies.append(ready)
        workers.append(worker)
    for ready in readies:
        if not ready.wait(120):
            raise SystemExit("the clients did not subscribe in time")
    cpu.start()
    produce()
    answers = [results.get(timeout=args.seconds + args.fanout_seconds + 120) for _ in workers]
    delivered = sum(len(a["at_socket_ms"]) // 4 for a in answers)  # float32 each
    cpu_line = cpu.line(delivered)
    for worker in workers:
        worker.join()
    return Delivered(answers, cpu_line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--client-procs", type=int, default=1)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--fanout-rate", type=int, default=1_000)
    parser.add_argument("--fanout-seconds", type=float, default=10)
    parser.add_argument("--ws-deflate", action="store_true")
    parser.add_argument("--no-client-deflate", action="store_true")
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
                        "--no-access-log", "--log-level", "warning",
                        "--ws-per-message-deflate", "true" if args.ws_deflate else "false"]
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
            produce_paced(cluster.bootstrap, token, "peer", args.rate, args.seconds, args.burst)
            latencies = array.array("f")
            latencies.frombytes(results.get(timeout=args.seconds + 60))
            peer.join()
            print(f"peer: confluent-kafka consumer on the broker node (no web tier), "
                  f"{len(latencies)} of {expected} records at {args.rate} records/s")
            print(f"  produce-to-consumer ms: {latency_line(latencies)}")

        if not args.skip_latency:
            # 1. Latency at --rate records/s, one subscriber.
            expected = int(args.rate * args.seconds)
            got = read_while_producing(ctx, url, "latency", ["lat"], 1, expected, args, cpu,
                                       lambda: produce_paced(cluster.bootstrap, token, "latency",
                                                             args.rate, args.seconds, args.burst))
            print(f"latency: {got.delivered} of {expected} records at {args.rate} records/s "
                  f"({got.skipped} skipped) in {got.frames} frames")
            got.print_latencies()

        if not args.skip_fanout:
            # 2. Fan-out to --clients sockets.
            expected = int(args.fanout_rate * args.fanout_seconds)
            sub_ids = [f"c{n}" for n in range(args.clients)]
            got = read_while_producing(ctx, url, "fanout", sub_ids, args.client_procs, expected,
                                       args, cpu,
                                       lambda: produce_paced(cluster.bootstrap, token, "fanout",
                                                             args.fanout_rate,
                                                             args.fanout_seconds, args.burst))
            print(f"fan-out: {args.clients} clients, {expected} records produced at "
                  f"{args.fanout_rate}/s: {got.delivered} delivered in {got.elapsed_s:.1f} s = "
                  f"{got.delivered / got.elapsed_s:,.0f} records/s over all clients "
                  f"({got.delivered / (args.clients * expected):.1%} of all; {got.skipped} "
                  f"skipped) in {got.frames} frames")
            got.print_latencies(" over all clients")


if __name__ == "__main__":
    main()
