"""librdkafka's DeleteConsumerGroupOffsets admin call, through ctypes on confluent-kafka's copy.

confluent-kafka's Python AdminClient (2.16) has no delete_consumer_group_offsets, though the
librdkafka it ships implements it (rd_kafka_DeleteConsumerGroupOffsets, OffsetDelete v0): this
calls that C function, so the request, the coordinator lookup and the response parsing are
librdkafka's own, as a C, Go (confluent-kafka-go) or .NET client would run them.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path

_ERRSTR_SIZE = 512
_PRODUCER = 0  # rd_kafka_type_t RD_KAFKA_PRODUCER: an admin client is a producer handle


class _TopicPartition(ctypes.Structure):
    """rd_kafka_topic_partition_t (rdkafka.h, stable across 1.x-2.x)."""

    _fields_ = [
        ("topic", ctypes.c_char_p),
        ("partition", ctypes.c_int32),
        ("offset", ctypes.c_int64),
        ("metadata", ctypes.c_void_p),
        ("metadata_size", ctypes.c_size_t),
        ("opaque", ctypes.c_void_p),
        ("err", ctypes.c_int),
        ("_private", ctypes.c_void_p),
    ]


class _TopicPartitionList(ctypes.Structure):
    _fields_ = [
        ("cnt", ctypes.c_int),
        ("size", ctypes.c_int),
        ("elems", ctypes.POINTER(_TopicPartition)),
    ]


def _librdkafka() -> ctypes.CDLL:
    import confluent_kafka

    package = Path(confluent_kafka.__file__).resolve().parent
    (path,) = sorted((package.parent / "confluent_kafka.libs").glob("librdkafka*.so*"))
    lib = ctypes.CDLL(str(path))
    pointer, text, size = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
    signatures = {
        "rd_kafka_conf_new": (pointer, []),
        "rd_kafka_conf_set": (ctypes.c_int, [pointer, text, text, text, size]),
        "rd_kafka_new": (pointer, [ctypes.c_int, pointer, text, size]),
        "rd_kafka_destroy": (None, [pointer]),
        "rd_kafka_queue_new": (pointer, [pointer]),
        "rd_kafka_queue_destroy": (None, [pointer]),
        "rd_kafka_queue_poll": (pointer, [pointer, ctypes.c_int]),
        "rd_kafka_topic_partition_list_new": (pointer, [ctypes.c_int]),
        "rd_kafka_topic_partition_list_add": (pointer, [pointer, text, ctypes.c_int32]),
        "rd_kafka_topic_partition_list_destroy": (None, [pointer]),
        "rd_kafka_DeleteConsumerGroupOffsets_new": (pointer, [text, pointer]),
        "rd_kafka_DeleteConsumerGroupOffsets_destroy": (None, [pointer]),
        "rd_kafka_DeleteConsumerGroupOffsets": (
            None,
            [pointer, ctypes.POINTER(pointer), size, pointer, pointer],
        ),
        "rd_kafka_event_error": (ctypes.c_int, [pointer]),
        "rd_kafka_event_error_string": (text, [pointer]),
        "rd_kafka_event_DeleteConsumerGroupOffsets_result": (pointer, [pointer]),
        "rd_kafka_event_destroy": (None, [pointer]),
        "rd_kafka_DeleteConsumerGroupOffsets_result_groups": (
            ctypes.POINTER(pointer),
            [pointer, ctypes.POINTER(size)],
        ),
        "rd_kafka_group_result_error": (pointer, [pointer]),
        "rd_kafka_group_result_partitions": (ctypes.POINTER(_TopicPartitionList), [pointer]),
        "rd_kafka_error_code": (ctypes.c_int, [pointer]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


def delete_consumer_group_offsets(
    bootstrap: str,
    group_id: str,
    partitions: Sequence[tuple[str, int]],
    timeout_ms: int = 30_000,
) -> tuple[int, dict[tuple[str, int], int]]:
    """(request or group error code, error code per partition) as librdkafka reports them."""
    lib = _librdkafka()
    errstr = ctypes.create_string_buffer(_ERRSTR_SIZE)
    conf = lib.rd_kafka_conf_new()
    for name, value in {"bootstrap.servers": bootstrap, "broker.address.family": "v4"}.items():
        if lib.rd_kafka_conf_set(conf, name.encode(), value.encode(), errstr, _ERRSTR_SIZE):
            raise RuntimeError(errstr.value.decode())
    handle = lib.rd_kafka_new(_PRODUCER, conf, errstr, _ERRSTR_SIZE)
    if not handle:
        raise RuntimeError(errstr.value.decode())
    queue = lib.rd_kafka_queue_new(handle)
    try:
        wanted = lib.rd_kafka_topic_partition_list_new(len(partitions))
        for topic, partition in partitions:
            lib.rd_kafka_topic_partition_list_add(wanted, topic.encode(), partition)
        request = lib.rd_kafka_DeleteConsumerGroupOffsets_new(group_id.encode(), wanted)
        lib.rd_kafka_topic_partition_list_destroy(wanted)
        requests = (ctypes.c_void_p * 1)(request)
        lib.rd_kafka_DeleteConsumerGroupOffsets(handle, requests, 1, None, queue)
        lib.rd_kafka_DeleteConsumerGroupOffsets_destroy(request)
        event = lib.rd_kafka_queue_poll(queue, timeout_ms)
        if not event:
            raise TimeoutError("librdkafka gave no DeleteConsumerGroupOffsets result")
        try:
            return _read_result(lib, event)
        finally:
            lib.rd_kafka_event_destroy(event)
    finally:
        lib.rd_kafka_queue_destroy(queue)
        lib.rd_kafka_destroy(handle)


def _read_result(lib: ctypes.CDLL, event: int) -> tuple[int, dict[tuple[str, int], int]]:
    error = lib.rd_kafka_event_error(event)
    if error:
        return error, {}
    result = lib.rd_kafka_event_DeleteConsumerGroupOffsets_result(event)
    count = ctypes.c_size_t()
    groups = lib.rd_kafka_DeleteConsumerGroupOffsets_result_groups(result, ctypes.byref(count))
    assert count.value == 1
    group_error = lib.rd_kafka_group_result_error(groups[0])
    if group_error:
        return lib.rd_kafka_error_code(group_error), {}
    listed = lib.rd_kafka_group_result_partitions(groups[0]).contents
    return 0, {
        (listed.elems[i].topic.decode(), listed.elems[i].partition): listed.elems[i].err
        for i in range(listed.cnt)
    }
