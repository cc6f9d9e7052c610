"""The coordinator's settings: Kafka's group.* and offsets.* broker configs, Kafka's defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GroupSettings:
    min_session_timeout_ms: int = 6_000
    """group.min.session.timeout.ms: a JoinGroup below it is INVALID_SESSION_TIMEOUT."""
    max_session_timeout_ms: int = 1_800_000
    """group.max.session.timeout.ms: a JoinGroup above it is INVALID_SESSION_TIMEOUT."""
    initial_rebalance_delay_ms: int = 3_000
    """group.initial.rebalance.delay.ms: the first rebalance of an empty group waits this long
    (and again, up to the rebalance timeout, while new members keep arriving)."""
    max_group_size: int = 2**31 - 1
    """group.max.size: a join beyond it is GROUP_MAX_SIZE_REACHED."""
    max_offset_metadata_bytes: int = 4096
    """offset.metadata.max.bytes: a longer commit metadata string is OFFSET_METADATA_TOO_LARGE."""
    offsets_retention_ms: int = 7 * 24 * 60 * 60 * 1000
    """offsets.retention.minutes (7 days): how long a group's committed offsets outlive it being
    Empty, or a standalone group's offset its commit (KIP-211; brokers/groups/offsets.py)."""
    offsets_retention_check_interval_ms: int = 600_000
    """offsets.retention.check.interval.ms: how often the coordinator expires offsets."""
