"""Which closed segments retention deletes: by age, by total size, below the log start offset.

Kafka's rules (UnifiedLog.deleteOldSegments): each rule deletes a prefix of the segments,
stopping at the first segment it would keep; the active segment is never deleted here.
"""

from __future__ import annotations

from collections.abc import Sequence

from brokers.log.config import LogConfig
from brokers.log.segment import Segment


def deletable_prefix(segments: Sequence[Segment], config: LogConfig, now_ms: int,
                     log_start_offset: int) -> int:
    """How many of the oldest segments retention removes (never the last, active one)."""
    closed = segments[:-1]
    count = _below_log_start(segments, log_start_offset)
    if config.is_delete_enabled:
        count = max(count, _past_retention_ms(closed, config.retention_ms, now_ms))
        total = sum(segment.size for segment in segments)
        count = max(count, _past_retention_bytes(closed, config.retention_bytes, total))
    return count


def _below_log_start(segments: Sequence[Segment], log_start_offset: int) -> int:
    count = 0
    for following in segments[1:]:
        if following.base_offset > log_start_offset:
            break
        count += 1
    return count


def _past_retention_ms(closed: Sequence[Segment], retention_ms: int, now_ms: int) -> int:
    if retention_ms < 0:
        return 0
    count = 0
    for segment in closed:
        if now_ms - segment.largest_timestamp <= retention_ms:
            break
        count += 1
    return count


def _past_retention_bytes(closed: Sequence[Segment], retention_bytes: int, total: int) -> int:
    if retention_bytes < 0:
        return 0
    excess = total - retention_bytes
    count = 0
    for segment in closed:
        if excess - segment.size < 0:
            break
        excess -= segment.size
        count += 1
    return count
