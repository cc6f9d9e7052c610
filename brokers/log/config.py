"""LogConfig: a topic's storage configs, Kafka's names in snake_case with Kafka's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

LONG_MAX = 2**63 - 1
_DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class LogConfig:
    """The topic configs the log obeys (each field is Kafka's dotted name with '_')."""

    segment_bytes: int = 1024 * 1024 * 1024
    segment_ms: int = 7 * _DAY_MS
    segment_index_bytes: int = 10 * 1024 * 1024
    index_interval_bytes: int = 4096
    retention_ms: int = 7 * _DAY_MS
    retention_bytes: int = -1
    cleanup_policy: str = "delete"
    delete_retention_ms: int = _DAY_MS
    min_compaction_lag_ms: int = 0
    max_message_bytes: int = 1048588
    message_timestamp_type: str = "CreateTime"
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX

    @classmethod
    def from_topic_configs(cls, configs: Mapping[str, str]) -> LogConfig:
        """Build from Kafka's dotted names (``{"segment.bytes": "1024"}``); others are ignored."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, object] = {}
        for name, raw in configs.items():
            attr = name.replace(".", "_")
            field = known.get(attr)
            if field is None:
                continue
            values[attr] = str(raw).strip() if field.type == "str" else int(raw)
        if "cleanup_policy" in values:
            parts = sorted(p.strip() for p in str(values["cleanup_policy"]).split(","))
            values["cleanup_policy"] = ",".join(p for p in parts if p)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def is_compacted(self) -> bool:
        """``cleanup.policy`` includes ``compact``."""
        return "compact" in self.cleanup_policy.split(",")

    @property
    def is_delete_enabled(self) -> bool:
        """``cleanup.policy`` includes ``delete``: time and size retention apply."""
        return "delete" in self.cleanup_policy.split(",")

    @property
    def is_log_append_time(self) -> bool:
        """The broker, not the producer, stamps each batch (``LogAppendTime``)."""
        return self.message_timestamp_type == "LogAppendTime"
