"""Make document ids unique before anything joins on them."""
from __future__ import annotations

import json

import apache_beam as beam

from pipeline.document import rejection
from pipeline.stages.routing import KEPT, REJECTED

DUPLICATE_ID = "duplicate_id"


def _first_of_each_id(keyed):
    doc_id, docs = keyed
    # The same id twice means the same record was given twice (or two sources disagree on ids);
    # the first in a content-defined order keeps the id, the others are reported, not lost.
    ordered = sorted(docs, key=lambda d: (d.get("source") or "", json.dumps(d, sort_keys=True, ensure_ascii=False)))
    yield ordered[0]
    for duplicate in ordered[1:]:
        yield beam.pvalue.TaggedOutput(REJECTED, rejection(duplicate, "read", DUPLICATE_ID, duplicate_of=doc_id))


class UniqueIds(beam.PTransform):
    """Keep one document per id; the rest go to rejected with reason "duplicate_id"."""

    def expand(self, docs):
        routed = (docs
                  | "KeyById" >> beam.Map(lambda d: (d["id"], d))
                  | "GroupById" >> beam.GroupByKey()
                  | "FirstOfEachId" >> beam.FlatMap(_first_of_each_id).with_outputs(REJECTED, main=KEPT))
        return routed[KEPT], routed[REJECTED]
