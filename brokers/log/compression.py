"""Kafka's record compression codecs (gzip, snappy, lz4, zstd) through cramjam.

Codec ids are Kafka's: the low three bits of a batch's attributes. Snappy arrives two ways:
xerial-framed from the Java client and kafka-python, raw from librdkafka; both decode. lz4 is
the LZ4 frame format (Kafka >= 0.10, KIP-57).
"""

from __future__ import annotations

import struct

import cramjam

from brokers.log.errors import CorruptRecordException, UnsupportedCompressionTypeException

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
CODEC_NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}
CODEC_IDS = {name: codec for codec, name in CODEC_NAMES.items()}

# xerial's SnappyOutputStream header: marker, "SNAPPY", NUL, version 1, compatible version 1.
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER_BYTES = 16
_BLOCK_LENGTH = struct.Struct(">i")


def decompress(codec: int, data: bytes | memoryview) -> bytes | memoryview:
    """The uncompressed records section of a batch compressed with ``codec``."""
    try:
        if codec == GZIP:
            return memoryview(cramjam.gzip.decompress(data))
        if codec == SNAPPY:
            return _snappy_decompress(data)
        if codec == LZ4:
            return memoryview(cramjam.lz4.decompress(data))
        if codec == ZSTD:
            return memoryview(cramjam.zstd.decompress(data))
    except cramjam.DecompressionError as exc:
        raise CorruptRecordException(f"cannot decompress {CODEC_NAMES[codec]}: {exc}") from exc
    if codec == NONE:
        return data
    raise UnsupportedCompressionTypeException(f"unknown compression codec {codec}")


def compress(codec: int, data: bytes | memoryview) -> bytes | memoryview:
    """``data`` compressed as Kafka's ``codec`` (snappy raw, as librdkafka writes it)."""
    if codec == NONE:
        return data
    if codec == GZIP:
        return memoryview(cramjam.gzip.compress(data))
    if codec == SNAPPY:
        return memoryview(cramjam.snappy.compress_raw(data))
    if codec == LZ4:
        return memoryview(cramjam.lz4.compress(data))
    if codec == ZSTD:
        return memoryview(cramjam.zstd.compress(data))
    raise UnsupportedCompressionTypeException(f"unknown compression codec {codec}")


def _snappy_decompress(data: bytes | memoryview) -> memoryview:
    view = memoryview(data)
    if bytes(view[:8]) != _XERIAL_MAGIC:
        return memoryview(cramjam.snappy.decompress_raw(view))
    out = bytearray()
    position = _XERIAL_HEADER_BYTES
    end = len(view)
    while position < end:
        if position + 4 > end:
            raise CorruptRecordException("truncated xerial snappy block length")
        (length,) = _BLOCK_LENGTH.unpack_from(view, position)
        position += 4
        if length < 0 or position + length > end:
            raise CorruptRecordException("truncated xerial snappy block")
        out += cramjam.snappy.decompress_raw(view[position : position + length])
        position += length
    return memoryview(out)
