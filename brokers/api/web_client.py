"""The web process's Kafka client: one event loop on a thread of its own for every tenant.

Django's views are synchronous: they hand the loop a produce (kafka_producer.py) or a read
(kafka_reader.py) and wait for its answer. A websocket consumer, itself on an event loop,
awaits the same work through ``asyncio.wrap_future`` instead, so no thread waits for it.
A tenant's leaders and connections (a TenantCluster) live on the loop and serve both.

No Django here: the caller passes a bootstrap lookup and each tenant's credentials.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import random
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from brokers.api import kafka_producer, kafka_reader
from brokers.api.kafka_client import Credentials, KafkaClientError, TenantCluster
from brokers.api.kafka_producer import ProduceResult
from brokers.api.produce_batches import build_partition_batches

__all__ = ("WebClient",)

T = TypeVar("T")


class WebClient:
    """The web process's Kafka client: an event loop on its own thread, a TenantCluster each."""

    def __init__(
        self, bootstrap: Callable[[], list[tuple[str, int]]],
        credentials: Callable[[str], Credentials],
    ):
        # Both are called on the calling thread (they may query the database), never on the
        # loop's.
        self._bootstrap = bootstrap
        self._credentials = credentials
        self._clusters: dict[str, TenantCluster] = {}
        self._lock = threading.Lock()
        self._sticky = itertools.count(random.randrange(1 << 16))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="djafka-web-client", daemon=True
        )
        self._thread.start()

    def _cluster(self, tenant: str) -> TenantCluster:
        cluster = self._clusters.get(tenant)
        if cluster is None:
            with self._lock:
                cluster = self._clusters.get(tenant)
                if cluster is None:
                    cluster = self._clusters[tenant] = TenantCluster(
                        tenant, self._credentials(tenant), f"djafka-web/{tenant}"
                    )
        return cluster

    def needs_bootstrap(self, tenant: str) -> bool:
        """True until ``tenant``'s cluster has addresses to ask (the async calls need them)."""
        cluster = self._cluster(tenant)
        return cluster.needs_bootstrap and not cluster.bootstrap

    def bootstrap(self, tenant: str) -> None:
        """Look up where to ask for ``tenant``'s metadata now (may query the database)."""
        # A list swapped whole: the loop sees the old one or the new one.
        self._cluster(tenant).bootstrap = self._bootstrap()

    def _submit(
        self, tenant: str, work: Callable[[TenantCluster], Coroutine[Any, Any, T]],
        look_up_bootstrap: bool = True,
    ) -> concurrent.futures.Future[T]:
        """Run ``work(cluster)`` on the loop; the bootstrap lookup, if due, on this thread."""
        cluster = self._cluster(tenant)
        if look_up_bootstrap and cluster.needs_bootstrap:
            self.bootstrap(tenant)
        return asyncio.run_coroutine_threadsafe(work(cluster), self._loop)

    @staticmethod
    def _wait(future: concurrent.futures.Future[T], timeout_s: float, late: str) -> T:
        try:
            # The coroutine keeps its own deadline; this wait only guards against a stuck loop.
            return future.result(timeout_s + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise KafkaClientError("REQUEST_TIMED_OUT", late) from None

    def produce(
        self, tenant: str, topic: str, records: Sequence[Any], partition_count: int,
        acks: int, max_batch_bytes: int, timeout_s: float,
    ) -> list[ProduceResult]:
        """Produce ``records`` as ``tenant``; each one's partition and offset, or its error.

        Called from any thread; builds the batches on the calling thread and waits for the
        leaders' answers (acks 0, 1 or -1) at most ``timeout_s``. Raises KafkaClientError when
        the request failed before anything was sent, and REQUEST_TIMED_OUT when it did not
        finish in time (records may then have been written, as with any Kafka client).
        """
        if not records:
            return []
        shares = build_partition_batches(
            records, partition_count, max_batch_bytes, next(self._sticky) % partition_count
        )
        results: list[ProduceResult | None] = [None] * len(records)
        deadline = time.monotonic() + timeout_s

        async def send(cluster: TenantCluster) -> None:
            await kafka_producer.produce(cluster, topic, shares, acks, deadline, results)

        self._wait(self._submit(tenant, send), timeout_s,
                   f"Not acknowledged within {timeout_s:g} s.")
        if None in results:  # cannot happen while produce() keeps its promise; never answer None
            raise KafkaClientError(
                "UNKNOWN_SERVER_ERROR", f"{results.count(None)} record(s) got no answer."
            )
        return results  # type: ignore[return-value]

    # --- Reads (kafka_reader.py): ``timeout_s`` bounds the metadata lookups and retries ---

    def list_offsets(
        self, tenant: str, topic_partitions: Mapping[str, Sequence[int]], timestamp: int,
        timeout_s: float,
    ) -> dict[tuple[str, int], int]:
        """Offsets at ``timestamp`` (kafka_reader.EARLIEST/LATEST_TIMESTAMP or ms)."""
        deadline = time.monotonic() + timeout_s
        future = self._submit(tenant, lambda cluster: kafka_reader.list_offsets(
            cluster, topic_partitions, timestamp, deadline))
        return self._wait(future, timeout_s, f"No offsets within {timeout_s:g} s.")

    def watermarks(
        self, tenant: str, topic: str, partitions: Sequence[int], timeout_s: float,
    ) -> dict[int, tuple[int, int]]:
        """(log start offset, log end offset) of each partition."""
        deadline = time.monotonic() + timeout_s
        future = self._submit(tenant, lambda cluster: kafka_reader.watermarks(
            cluster, topic, partitions, deadline))
        return self._wait(future, timeout_s, f"No offsets within {timeout_s:g} s.")

    def fetch(
        self, tenant: str, topic: str, partition: int, start: kafka_reader.StartAt,
        max_records: int, max_bytes: int, wait_s: float, timeout_s: float,
    ) -> kafka_reader.FetchResult:
        """Records of one partition (kafka_reader.fetch), waiting up to ``wait_s`` at the log
        end; raises OffsetOutOfRangeError or KafkaClientError."""
        future = self._submit(tenant, self._fetch_work(
            topic, partition, start, max_records, max_bytes, wait_s, timeout_s))
        return self._wait(future, wait_s + timeout_s, f"No records within {timeout_s:g} s.")

    async def fetch_async(
        self, tenant: str, topic: str, partition: int, start: kafka_reader.StartAt,
        max_records: int, max_bytes: int, wait_s: float, timeout_s: float,
    ) -> kafka_reader.FetchResult:
        """``fetch`` awaited from another event loop: no thread waits while it runs.

        Never looks up the bootstrap addresses (a database query): call ``bootstrap`` off the
        event loop first while ``needs_bootstrap``. Cancelling it cancels the fetch.
        """
        future = self._submit(tenant, self._fetch_work(
            topic, partition, start, max_records, max_bytes, wait_s, timeout_s,
        ), look_up_bootstrap=False)
        return await asyncio.wrap_future(future)

    @staticmethod
    def _fetch_work(
        topic: str, partition: int, start: kafka_reader.StartAt, max_records: int,
        max_bytes: int, wait_s: float, timeout_s: float,
    ) -> Callable[[TenantCluster], Coroutine[Any, Any, kafka_reader.FetchResult]]:
        # The deadline is taken on the calling thread, when the caller started waiting.
        deadline = time.monotonic() + wait_s + timeout_s
        return lambda cluster: kafka_reader.fetch(
            cluster, topic, partition, start, max_records, max_bytes, wait_s, deadline)

    def close(self) -> None:
        """Close every connection and stop the loop's thread."""

        async def shut_down() -> None:
            for cluster in self._clusters.values():
                cluster.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(shut_down(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
