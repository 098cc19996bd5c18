"""Make document ids unique before anything joins on them, without moving documents to do it.

A census pass reads every unit and sends only (id, source, content digest, position) through a
shuffle; where an id occurs more than once, the first in a content-defined order (source, then
digest of the whole record, then position) keeps it. The positions of the others, per source, are
a side input of the real read, which rejects them there: ids are settled before extraction, and
no page waits in memory for the decision.

URL sources are left out of the census: it would download every body twice. Their ids are the
ones the reader makes unique within each file (WARC-Record-IDs, else "<name>:<position>"); an id
shared with another source is not caught here (dedup still keys on id and text, so nothing is lost
or merged wrongly, but both records keep the id).
"""
from __future__ import annotations

import json

import apache_beam as beam
import xxhash

from pipeline.config import ReadConfig
from pipeline.sources.formats import is_url
from pipeline.stages.routing import KEPT
from pipeline.units import Unit, unit_records

DUPLICATE_ID = "duplicate_id"


def _census(unit: Unit, config: ReadConfig):
    if is_url(unit.source):
        return
    for position, tag, doc in unit_records(unit, config):
        if tag == KEPT:
            digest = xxhash.xxh128_hexdigest(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode(
                "utf-8", "surrogatepass"))
            yield doc["id"], (doc.get("source") or "", digest, unit.source, position)


def _later_occurrences(keyed):
    # The same id twice means the same record was given twice (or two sources disagree on ids);
    # the first in a content-defined order keeps the id, the others are reported, not lost.
    doc_id, occurrences = keyed
    _, *later = sorted(occurrences)
    for _, _, source, position in later:
        yield source, (position, doc_id)


class DuplicateIds(beam.PTransform):
    """units → (source, (position, id)) for every record whose id an earlier one already has."""

    def __init__(self, config: ReadConfig):
        super().__init__()
        self._config = config

    def expand(self, units):
        return (units
                | "Census" >> beam.FlatMap(_census, self._config)
                | "GroupById" >> beam.GroupByKey()
                | "LaterOccurrences" >> beam.FlatMap(_later_occurrences))
