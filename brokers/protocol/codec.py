"""The codec seam: kio's generated message classes, looked up and (de)serialised per API version.

kio was chosen over kafka-python's protocol classes by measurement (README.md). Requests are
decoded by kio's native reader; responses are written by kio's writer, except Fetch whose
records go out as chunks (fetch_encoder.py). Records fields are `bytes` and never parsed here.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import Any

from kio.index import KioIndexError, load_request_schema, load_response_schema
from kio.schema.index import api_key_map
from kio.schema.response_header.v1.header import ResponseHeader as ResponseHeaderV1
from kio.serial import entity_reader, entity_writer


class UnknownMessage(LookupError):
    """No message class for this API key and version in the codec."""


def api_name(api_key: int) -> str:
    """kio's snake_case name of an API key, e.g. 18 -> "api_versions"; "unknown" otherwise."""
    return api_key_map.get(api_key, "unknown")


@functools.cache
def request_type(api_key: int, version: int) -> type[Any]:
    return _load_message_class(load_request_schema, "request", api_key, version)


@functools.cache
def response_type(api_key: int, version: int) -> type[Any]:
    return _load_message_class(load_response_schema, "response", api_key, version)


def _load_message_class(
    load: Callable[[int, int], type[Any]], kind: str, api_key: int, version: int
) -> type[Any]:
    try:
        return load(api_key, version)
    except KioIndexError as exc:
        raise UnknownMessage(f"no {kind} class for api key {api_key} v{version}") from exc


@functools.cache
def first_flexible_version(api_key: int) -> int | None:
    """The lowest version of the API that uses compact types and tagged fields, if any.

    Versions above the codec's newest are flexible too (Kafka never un-flexes an API), which
    is what lets a too-new ApiVersions request header still be parsed (KIP-511).
    """
    version = 0
    seen_any = False
    while version < 64:
        try:
            cls = request_type(api_key, version)
        except UnknownMessage:
            if seen_any:
                return None
            version += 1
            continue
        seen_any = True
        if cls.__flexible__:
            return version
        version += 1
    return None


def is_flexible_request(api_key: int, version: int) -> bool:
    first = first_flexible_version(api_key)
    return first is not None and version >= first


@functools.cache
def _reader(cls: type[Any]) -> Any:
    return entity_reader(cls)


@functools.cache
def _writer(cls: type[Any]) -> Any:
    return entity_writer(cls)


def decode_request(api_key: int, version: int, buffer: bytes | memoryview, offset: int) -> Any:
    """Decode the request body starting at `offset`; raises on truncated or malformed bytes.

    kio's native reader takes read-only buffers only: bytes, not bytearray.
    """
    value, _size = _reader(request_type(api_key, version))(buffer, offset)
    return value


def decode_response(api_key: int, version: int, buffer: bytes | memoryview) -> Any:
    """Decode a response body (used by tests and by the web tier as a client)."""
    value, _size = _reader(response_type(api_key, version))(buffer, 0)
    return value


def encode(entity: Any) -> bytes:
    """Encode a kio message (request or response body, no header)."""
    buffer = io.BytesIO()
    _writer(type(entity))(buffer, entity)
    return buffer.getvalue()


def uses_flexible_response_header(response_cls: type[Any]) -> bool:
    """Response header v1 (with tagged fields) or v0.

    kio takes this from Kafka's generator, which keeps ApiVersions responses on header v0 at
    every version so that a client can read the error of a version it does not understand.
    """
    return response_cls.__header_schema__ is ResponseHeaderV1
