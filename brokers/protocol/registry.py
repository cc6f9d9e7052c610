"""The handler registry: which API keys this broker answers, at which versions, with what.

One module per API key (as franz-go's kfake). A handler module exports:

    API_KEY: int                     # Kafka's API key, e.g. 18 for ApiVersions
    MIN_VERSION: int                 # inclusive range this module implements; ApiVersions
    MAX_VERSION: int                 # advertises exactly this range
    async def handle(ctx: RequestContext, request) -> response | EncodedBody | None
    def error_response(version, request, error_code) -> response    # optional

`handle` gets the kio request object of the negotiated version and returns the kio response
of the same version, an EncodedBody (pre-encoded chunks, e.g. Fetch), or None for no response
(Produce with acks=0). `error_response` is what the server answers when `handle` raises; without
it the connection is closed. Add a module by listing it in HANDLER_MODULES below.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from . import codec

HANDLER_MODULES: tuple[str, ...] = (
    "brokers.protocol.api_versions",
    "brokers.protocol.sasl_handshake",
    "brokers.protocol.sasl_authenticate",
    "brokers.protocol.produce",
    "brokers.protocol.fetch",
    "brokers.protocol.list_offsets",
    "brokers.protocol.metadata",
    "brokers.protocol.create_topics",
    "brokers.protocol.delete_topics",
    "brokers.protocol.create_partitions",
    "brokers.protocol.describe_configs",
    "brokers.protocol.alter_configs",
    "brokers.protocol.incremental_alter_configs",
    "brokers.protocol.find_coordinator",
    "brokers.protocol.join_group",
    "brokers.protocol.sync_group",
    "brokers.protocol.heartbeat",
    "brokers.protocol.leave_group",
    "brokers.protocol.offset_commit",
    "brokers.protocol.offset_fetch",
    "brokers.protocol.list_groups",
    "brokers.protocol.describe_groups",
    "brokers.protocol.delete_groups",
    "brokers.protocol.offset_delete",
    "brokers.protocol.init_producer_id",
)
"""Modules whose handlers every broker registers, in API-key order of appearance."""

Handle = Callable[[Any, Any], Awaitable[Any]]
ErrorResponse = Callable[[int, Any, int], Any]


@dataclass(frozen=True, slots=True)
class ApiHandler:
    api_key: int
    min_version: int
    max_version: int
    handle: Handle
    error_response: ErrorResponse | None = None

    @property
    def name(self) -> str:
        return codec.api_name(self.api_key)

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version

    @classmethod
    def from_module(cls, module: ModuleType) -> ApiHandler:
        return cls(
            api_key=module.API_KEY,
            min_version=module.MIN_VERSION,
            max_version=module.MAX_VERSION,
            handle=module.handle,
            error_response=getattr(module, "error_response", None),
        )


class Registry:
    """API key to handler; iteration is in API-key order, as ApiVersions lists them."""

    def __init__(self, handlers: Iterable[ApiHandler] = ()) -> None:
        self._handlers: dict[int, ApiHandler] = {}
        for handler in handlers:
            self.register(handler)

    def register(self, handler: ApiHandler) -> None:
        """Add or replace the handler of an API key; every version must exist in the codec."""
        if handler.min_version > handler.max_version:
            raise ValueError(f"{handler.name}: empty version range")
        for version in range(handler.min_version, handler.max_version + 1):
            codec.request_type(handler.api_key, version)  # raises UnknownMessage
            codec.response_type(handler.api_key, version)
        self._handlers[handler.api_key] = handler

    def register_module(self, module: ModuleType | str) -> None:
        if isinstance(module, str):
            module = importlib.import_module(module)
        self.register(ApiHandler.from_module(module))

    def get(self, api_key: int) -> ApiHandler | None:
        return self._handlers.get(api_key)

    def __iter__(self) -> Iterator[ApiHandler]:
        return iter(sorted(self._handlers.values(), key=lambda handler: handler.api_key))

    def __len__(self) -> int:
        return len(self._handlers)


def default_registry() -> Registry:
    """A fresh registry of every module in HANDLER_MODULES."""
    registry = Registry()
    for module in HANDLER_MODULES:
        registry.register_module(module)
    return registry
