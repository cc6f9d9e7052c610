"""Cross-check with librdkafka (confluent-kafka): its batches, every codec, appended as sent.

No broker of ours is needed: librdkafka's mock cluster (``test.mock.num.brokers``) listens on
a real TCP port; a producer sends to it, and a Fetch v4 request written with kafka-python's
protocol classes brings back the batches exactly as librdkafka built them.
"""

import socket
import struct

import confluent_kafka
import pytest
from kafka.protocol.old.fetch import FetchRequest_v4, FetchResponse_v4
from log_test_support import make_batch

from brokers.log import batch as b

TOPIC = "cross"


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("mock cluster closed the connection")
        data += chunk
    return bytes(data)


def fetch_raw_records(host: str, port: int, topic: str, partition: int, offset: int = 0) -> bytes:
    """The records field of a Fetch v4 response from ``offset`` (whole batches only)."""
    request = FetchRequest_v4(replica_id=-1, max_wait_ms=100, min_bytes=1, max_bytes=1 << 22,
                              isolation_level=0, topics=[(topic, [(partition, offset, 1 << 22)])])
    request.with_header(correlation_id=1, client_id="djafka-log-test")
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request.encode(header=True, framed=True))
        (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
        body = _recv_exactly(sock, size)
    response = FetchResponse_v4.decode(body[4:])  # after the correlation id
    ((_, partitions),) = response.responses
    ((_, error_code, _, _, _, records),) = partitions
    assert error_code == 0
    whole = sum(size for _, size, _, _ in b.iter_batches(memoryview(records)))
    return records[:whole]


def produce_with_librdkafka(codec: str, sent: list[tuple], idempotent: bool) -> bytes:
    producer = confluent_kafka.Producer({
        "test.mock.num.brokers": 1, "compression.type": codec, "linger.ms": 20,
        "enable.idempotence": idempotent, "log_level": 2})
    for key, value, headers in sent:
        producer.produce(TOPIC, key=key, value=value, headers=headers, partition=0,
                         timestamp=1_700_000_000_000)
    assert producer.flush(10) == 0
    metadata = producer.list_topics(TOPIC, timeout=10)
    broker = next(iter(metadata.brokers.values()))
    # Usually one batch; on a busy machine librdkafka may send the first records before the
    # rest (linger.ms runs out between produce calls), and its mock answers a batch a Fetch.
    raw, offset = b"", 0
    while offset < len(sent):
        more = fetch_raw_records(broker.host, broker.port, TOPIC, 0, offset)
        assert more, f"librdkafka's mock has nothing from offset {offset}"
        raw += more
        offset = max(last for _, _, _, last in b.iter_batches(memoryview(more))) + 1
    return raw


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
@pytest.mark.parametrize("idempotent", [False, True])
def test_log_appends_librdkafka_batches_as_sent_and_decodes_them(make_log, codec, idempotent):
    sent = [(None if i % 7 == 0 else b"key-%d" % i, None if i % 5 == 0 else b"%d" % i * 40,
             [("n", b"%d" % i)]) for i in range(60)]
    raw = produce_with_librdkafka(codec, sent, idempotent)
    batches = list(b.iter_batches(memoryview(raw)))
    assert batches, "librdkafka sent nothing"
    log = make_log(segment_bytes=1 << 20)
    log.append_batch(make_batch(1), 0)  # so librdkafka's offsets 0.. become 1..
    # Usually one batch; on a busy machine librdkafka may send the first records before the
    # rest (linger.ms runs out between produce calls). Each is appended as a Produce would.
    infos = [log.append_batch(raw[position:position + size], leader_epoch=9)
             for position, size, _, _ in batches]
    assert (infos[0].base_offset, infos[-1].last_offset) == (1, 60)
    stored = log.read(1, 1 << 22).read_bytes()
    # Stored as sent: only baseOffset and partitionLeaderEpoch differ.
    assert len(stored) == len(raw)
    for position, size, _, _ in batches:
        assert stored[position + b.POS_MAGIC : position + size] == raw[
            position + b.POS_MAGIC : position + size]
    codec_ids = {int.from_bytes(raw[p + 21 : p + 23], "big") & 7 for p, _, _, _ in batches}
    expected_codec = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[codec]
    assert codec_ids == {expected_codec}
    records = log.read_records(1, 1000)
    got = [(r.key, r.value, r.headers) for r in records]
    assert got == [(k, v, h) for k, v, h in sent]
    assert [r.offset for r in records] == list(range(1, 61))
    assert {r.timestamp for r in records} == {1_700_000_000_000}
