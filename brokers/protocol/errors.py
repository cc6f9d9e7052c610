"""Kafka error codes: kio's ErrorCode enum (generated from Kafka's Errors.java), by Kafka's names.

Use the enum in handlers (`ErrorCode.not_leader_or_follower`, it is what kio's response fields
take); use `ERROR_CODES["NOT_LEADER_OR_FOLLOWER"]` where Kafka's upper-case name is at hand.
Each member also says whether a client may retry (`ErrorCode.request_timed_out.retriable`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from kio.schema.errors import ErrorCode

ERROR_CODES: Mapping[str, ErrorCode] = MappingProxyType(
    {member.name.upper(): member for member in ErrorCode}
)
"""Kafka's error name (as in Errors.java and the protocol guide) to its code."""


def error_name(code: int) -> str:
    """Kafka's name for an error code, e.g. 58 -> "SASL_AUTHENTICATION_FAILED"."""
    return ErrorCode(code).name.upper()


__all__ = ("ERROR_CODES", "ErrorCode", "error_name")
