"""Make document ids unique before anything joins on them, without moving documents to do it.

A census pass reads every unit and counts each record as a row of six 64-bit numbers: its id's
128-bit digest, its source (as its rank among the sources), the 128-bit digest of the whole record
and its position. Where an id occurs more than once, the first in a content-defined order (source,
then digest of the whole record, then position) keeps it. The positions of the others, per
source, are a side input of the real read, which rejects them there: ids are settled before
extraction, and no page waits in memory for the decision. The rows (48 bytes a record) are sorted
on disk (`pipeline.stages.sorted_rows`), so the census holds a bounded share of them at a time
(a runner would hold the records of a shuffle decoded, some 0.6 KB each, and an array of every
row grows with the corpus).

URL sources are left out of the census: it would download every body twice. Their ids are the
ones the reader makes unique within each file (WARC-Record-IDs, else "<name>:<position>"); an id
shared with another source is not caught here (dedup still keys on id and text, so nothing is lost
or merged wrongly, but both records keep the id).
"""
from __future__ import annotations

import json
from typing import Iterable

import apache_beam as beam
import numpy as np
import xxhash

from pipeline.config import ReadConfig
from pipeline.sources.formats import is_url
from pipeline.stages.routing import KEPT
from pipeline.stages.sorted_rows import SortedRows
from pipeline.units import Unit, unit_records

DUPLICATE_ID = "duplicate_id"


_FIELDS = 6   # id digest (2), source rank, record digest (2), position


def _halves(value: int) -> tuple[int, int]:
    return value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF


def _census(unit: Unit, config: ReadConfig, source_rank: dict[str, int]):
    """The six numbers of each kept record of `unit` (nothing for a URL source); a source's rank is
    its place among the sources in sorted order, so ranks order as the sources' names do."""
    if is_url(unit.source):
        return
    for position, tag, doc in unit_records(unit, config):
        if tag == KEPT:
            digest = xxhash.xxh128_intdigest(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode(
                "utf-8", "surrogatepass"))
            id_digest = xxhash.xxh128_intdigest(str(doc["id"]).encode("utf-8", "surrogatepass"))
            yield (*_halves(id_digest), source_rank[unit.source], *_halves(digest), position)


def later_occurrences(census: Iterable[np.ndarray]) -> list[tuple[int, int]]:
    """(source rank, position) of every record whose id an earlier one has, from census rows of six
    numbers, sorted (by id, then source, record digest, position), in blocks that never split an
    id. The same id twice means the same record was given twice (or two sources disagree on ids);
    the first in a content-defined order keeps the id, the others are reported, not lost."""
    later = []
    for rows in census:
        same_id_as_previous = np.all(rows[1:, :2] == rows[:-1, :2], axis=1)
        later += [(int(source), int(position)) for source, position in rows[1:][same_id_as_previous][:, [2, 5]]]
    return later


class DuplicateIds(beam.PTransform):
    """units → (source, position) for every record whose id an earlier one already has; the census
    sorts its rows under `scratch_dir`."""

    def __init__(self, config: ReadConfig, sources: list[str], scratch_dir: str):
        super().__init__()
        self._config = config
        self._sources = sorted(set(sources))
        self._scratch_dir = scratch_dir

    def expand(self, units):
        sources = self._sources
        rank = {source: i for i, source in enumerate(sources)}
        return (units
                | "Census" >> beam.FlatMap(_census, self._config, rank)
                | "Count" >> SortedRows(self._scratch_dir, "census", _FIELDS, tuple, later_occurrences)
                | "LaterOccurrences" >> beam.FlatMap(lambda later: [(sources[s], position) for s, position in later]))
