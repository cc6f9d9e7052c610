"""Request header parsing (v1, v2) and response header encoding (v0, v1).

Hand-written rather than through the codec: the header must be read before the codec knows
which message class follows, and Kafka keeps the client id a legacy (int16) string even in the
flexible header v2 (RequestHeader.json, "flexibleVersions": "none" on ClientId).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_FIXED = struct.Struct(">hhih")  # api key, api version, correlation id, client id length
_CORRELATION_ID = struct.Struct(">i")
_API_AND_CORRELATION = struct.Struct(">hhi")


class MalformedRequest(ValueError):
    """The frame does not hold a well-formed request header."""


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body_offset: int
    """Where the request body starts in the frame."""


def peek_api(frame: bytes | memoryview) -> tuple[int, int, int]:
    """(api key, api version, correlation id) without parsing the rest."""
    if len(frame) < 8:
        raise MalformedRequest(f"a request header needs 8 bytes, the frame has {len(frame)}")
    return _API_AND_CORRELATION.unpack_from(frame, 0)


def parse_request_header(frame: bytes | memoryview, flexible: bool) -> RequestHeader:
    """Header v1 (non-flexible requests) or v2 (flexible: adds tagged fields, skipped here)."""
    if len(frame) < _FIXED.size:
        raise MalformedRequest(f"a request header needs 10 bytes, the frame has {len(frame)}")
    api_key, api_version, correlation_id, client_id_length = _FIXED.unpack_from(frame, 0)
    offset = _FIXED.size
    client_id: str | None = None
    if client_id_length >= 0:
        end = offset + client_id_length
        if end > len(frame):
            raise MalformedRequest("client id runs past the end of the frame")
        try:
            client_id = bytes(frame[offset:end]).decode()
        except UnicodeDecodeError as exc:
            raise MalformedRequest("client id is not UTF-8") from exc
        offset = end
    elif client_id_length != -1:
        raise MalformedRequest(f"client id length {client_id_length}")
    if flexible:
        offset = skip_tagged_fields(frame, offset)
    return RequestHeader(api_key, api_version, correlation_id, client_id, offset)


def skip_tagged_fields(frame: bytes | memoryview, offset: int) -> int:
    """Skip a tagged-field section (KIP-482); no request header tag is defined yet."""
    count, offset = read_uvarint(frame, offset)
    for _ in range(count):
        _tag, offset = read_uvarint(frame, offset)
        size, offset = read_uvarint(frame, offset)
        offset += size
        if offset > len(frame):
            raise MalformedRequest("tagged field runs past the end of the frame")
    return offset


def read_uvarint(frame: bytes | memoryview, offset: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if offset >= len(frame):
            raise MalformedRequest("varint runs past the end of the frame")
        byte = frame[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
        if shift > 28:
            raise MalformedRequest("varint longer than 5 bytes")


def encode_response_header(correlation_id: int, flexible: bool) -> bytes:
    """Header v0 is the correlation id; v1 adds an empty tagged-field section."""
    header = _CORRELATION_ID.pack(correlation_id)
    return header + b"\x00" if flexible else header
