"""The partition folder's checkpoint files, in Kafka's checkpoint text format.

Kafka keeps one file per data dir (``recovery-point-offset-checkpoint``,
``log-start-offset-checkpoint``); a replica here keeps its own, same name and format:
version ``0``, the entry count, then ``<topic> <partition> <offset>`` lines.
"""

from __future__ import annotations

import os

RECOVERY_POINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET = "log-start-offset-checkpoint"


def write_checkpoint(directory: str, name: str, topic: str, partition: int, offset: int) -> None:
    """Replace the checkpoint atomically (write, fsync, rename)."""
    path = os.path.join(directory, name)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as file:
        file.write(f"0\n1\n{topic} {partition} {offset}\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def read_checkpoint(directory: str, name: str) -> int | None:
    """The offset in the checkpoint, or None when it is missing or unreadable."""
    try:
        with open(os.path.join(directory, name), encoding="ascii") as file:
            lines = file.read().split("\n")
        if lines[0] != "0" or int(lines[1]) != 1:
            return None
        return int(lines[2].split(" ")[-1])
    except (OSError, ValueError, IndexError):
        return None
