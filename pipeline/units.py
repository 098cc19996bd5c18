"""Work units: how a local run spreads its inputs over worker processes (pure; no Beam).

A unit is one source, or one of `parts` stride slices of it: part i holds the records whose
position in the source is i modulo `parts`. Every worker reads its own units from disk, so pages
(HTML included) never travel between processes; splitting one file into parts lets two workers
share a single large WARC at the cost of each decompressing and parsing all of it, which is small
next to extraction. A record keeps the id the reader gives it, whatever unit it falls in, so the
documents of a split source are exactly those of the whole one.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator

from pipeline.config import ReadConfig, WorkConfig
from pipeline.progress import input_size
from pipeline.sources.formats import is_url
from pipeline.sources.read import read_source


@dataclass(frozen=True)
class Unit:
    source: str
    part: int = 0
    parts: int = 1


def local_workers(config: WorkConfig, sources: list[str]) -> int:
    """Worker processes for a local run over `sources`: `work.workers` when given; else one when the
    input is small (each extra process spends seconds importing Beam and loading models before its
    first page), else one per CPU core."""
    if config.workers:
        return config.workers
    size = local_input_bytes(sources)
    if size is not None and size < config.one_worker_below_mb * 1024**2:
        return 1
    return usable_cores()


def local_input_bytes(sources: list[str]) -> int | None:
    """Total size of `sources` on this machine's disk, or None when any is elsewhere (its size is not
    fetched: a dry run stays offline)."""
    if any("://" in source for source in sources):
        return None
    return sum(input_size(source) for source in sources)


def usable_cores() -> int:
    """The cores this process may run on (taskset and container cpusets narrow them), not the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # macOS and Windows have no affinity call


def plan_units(sources: list[str], config: WorkConfig, workers: int) -> list[Unit]:
    """The units of `sources`. URLs are never split: every part would download the whole body."""
    parts = config.parts_per_file or max(1, math.ceil(workers / max(1, len(sources))))
    units = []
    for source in sources:
        source_parts = 1 if is_url(source) else parts
        units += [Unit(source, part, source_parts) for part in range(source_parts)]
    return units


def unit_records(unit: Unit, config: ReadConfig) -> Iterator[tuple[int, str, dict]]:
    """(position in the source, tag, record) for the records of `unit`, as `read_source` tags them."""
    for position, (tag, record) in enumerate(read_source(unit.source, config)):
        if position % unit.parts == unit.part:
            yield position, tag, record
