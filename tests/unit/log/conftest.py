"""Fixtures for the partition log's tests: a log in a temporary folder and a settable clock."""

import sys
from pathlib import Path

import pytest

# The repository root (for `brokers`) and this folder (for log_test_support) on the path,
# whatever pytest's import mode and whichever __init__.py files exist around us.
_HERE = Path(__file__).resolve().parent
for _path in (_HERE.parents[2], _HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from brokers.log import LogConfig, PartitionLog  # noqa: E402


class FakeClock:
    """A settable clock in ms, so segment.ms, retention and LogAppendTime are exact."""

    def __init__(self, now_ms: int = 1_700_000_000_000):
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_log(tmp_path, clock):
    """Open (or reopen) the log in ``tmp_path/topic-0`` with small segments by default."""
    opened = []

    def make(config: LogConfig | None = None, **overrides) -> PartitionLog:
        base = {"segment_bytes": 4096, "index_interval_bytes": 256}
        base.update(overrides)
        log = PartitionLog(tmp_path / "topic-0", config or LogConfig(**base), clock=clock)
        opened.append(log)
        return log

    yield make
    for log in opened:
        for segment in log.segments:
            segment._closer()
