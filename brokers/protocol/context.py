"""Per-connection state and the context a handler is called with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .services import BrokerServices, Principal

if TYPE_CHECKING:
    from .registry import Registry


@dataclass(slots=True)
class Connection:
    """One client connection's state, kept for its lifetime and shared by its requests."""

    peer: str
    requires_auth: bool
    """The listener is SASL_PLAINTEXT: until authenticated only ApiVersions and SASL pass."""
    client_id: str | None = None
    client_software_name: str | None = None
    client_software_version: str | None = None
    sasl_mechanism: str | None = None
    """Set by a successful SaslHandshake; SaslAuthenticate needs it."""
    is_legacy_sasl: bool = False
    """SaslHandshake v0 was used: the next frame is a raw SASL token, not a Kafka request."""
    principal: Principal | None = None
    close_after_response: bool = False
    """Set by a handler to drop the connection once its response is written (failed auth)."""
    attributes: dict[str, object] = field(default_factory=dict)
    """Room for handlers' own per-connection state (e.g. fetch sessions), keyed by module."""

    @property
    def is_authenticated(self) -> bool:
        return self.principal is not None

    @property
    def may_send_any_request(self) -> bool:
        return not self.requires_auth or self.is_authenticated


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a handler gets besides the decoded request."""

    services: BrokerServices
    registry: Registry
    connection: Connection
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None

    @property
    def principal(self) -> Principal | None:
        return self.connection.principal
