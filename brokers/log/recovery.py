"""Opening a partition folder: finish or undo interrupted swaps, load and re-check segments.

Kafka's rules: ``.cleaned`` files are half-written compaction output (delete); ``.swap`` files
are finished compaction output (complete the rename); ``.deleted`` files go. Segments below
the recovery point are trusted (indexes checked, rebuilt when insane); from the segment that
holds the recovery point on, every batch is re-checked and the log is cut at the first torn or
corrupt one, dropping every later segment.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from brokers.log.segment import Segment

SUFFIXES = (".log", ".index", ".timeindex")


def finish_interrupted_swaps(directory: str) -> None:
    """Delete ``.cleaned``/``.deleted``/``.tmp`` leftovers and complete ``.swap`` renames."""
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.endswith((".cleaned", ".deleted", ".tmp")):
            os.remove(path)
        elif name.endswith(".swap"):
            os.replace(path, path[: -len(".swap")])


def segment_base_offsets(directory: str) -> list[int]:
    """Base offsets of the ``.log`` files, sorted; orphan index files are removed."""
    bases = []
    names = os.listdir(directory)
    logs = {name[:-4] for name in names if name.endswith(".log")}
    for name in names:
        stem, _, suffix = name.partition(".")
        if not stem.isdigit() or len(stem) != 20 or "." + suffix not in SUFFIXES:
            continue
        if suffix == "log":
            bases.append(int(stem))
        elif stem not in logs:
            os.remove(os.path.join(directory, name))
    return sorted(bases)


def load_segments(directory: str, recovery_point: int,
                  new_segment: Callable[[int], Segment]) -> tuple[list[Segment], int]:
    """Open every segment; return them and the number of bytes recovery cut off."""
    finish_interrupted_swaps(directory)
    bases = segment_base_offsets(directory)
    segments: list[Segment] = []
    cut = 0
    for i, base in enumerate(bases):
        segment = new_segment(base)
        next_base = bases[i + 1] if i + 1 < len(bases) else None
        needs_recovery = next_base is None or next_base > recovery_point
        if needs_recovery:
            cut += segment.recover()
        else:
            segment.load()
        if segments and segment.base_offset < segments[-1].next_offset:
            # Overlapping segments: keep the earlier one, whose offsets came first.
            cut += segment.size
            segment.close()
            segment.delete()
            continue
        segments.append(segment)
        if needs_recovery and cut:
            # Everything after a cut is unreachable: offsets must stay contiguous.
            for later in bases[i + 1 :]:
                stale = new_segment(later)
                cut += os.fstat(stale.fd).st_size
                stale.close()
                stale.delete()
            break
    return segments, cut
