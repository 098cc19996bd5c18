"""The read stage: work units to documents, each unit read where it is processed."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.document import rejection
from pipeline.progress import FILES, INPUT_BYTES, ProgressWriter, RunProgress, docs_key
from pipeline.sources.config import ReadConfig
from pipeline.stages.routing import KEPT, REJECTED
from pipeline.stages.unique_ids import DUPLICATE_ID, DuplicateIds
from pipeline.units import Unit, unit_records


class _ReadUnit(beam.DoFn):
    def __init__(self, config: ReadConfig, progress: RunProgress | None):
        self._config = config
        self._progress = progress
        self._documents = Metrics.counter("read", "documents")
        self._rejected = Metrics.counter("read", "rejected")

    def setup(self):
        self._writer = ProgressWriter(self._progress.folder) if self._progress else None

    def process(self, unit: Unit, later_occurrences):
        taken = dict(later_occurrences[unit.source])
        for position, tag, record in unit_records(unit, self._config):
            if self._writer:
                self._writer.add(docs_key("read"))
            if tag == KEPT and position in taken:
                tag, record = REJECTED, rejection(record, "read", DUPLICATE_ID, duplicate_of=taken[position])
            if tag == REJECTED:
                self._rejected.inc()
                yield beam.pvalue.TaggedOutput(REJECTED, record)
            else:
                self._documents.inc()
                yield record
        if self._writer:
            self._writer.add(FILES, 1 / unit.parts)
            self._writer.add(INPUT_BYTES, self._progress.sizes.get(unit.source, 0) / unit.parts)

    def finish_bundle(self):
        if self._writer:
            self._writer.flush()


class ReadSources(beam.PTransform):
    """`p | ReadSources(units, config)` -> `(documents, rejected)`, every document id unique.

    `units` come from `pipeline.units.plan_units` (resolved when the pipeline is built; a plain
    source stands for the whole of it, one unit). They are
    spread across workers, and each worker reads its own: nothing else moves pages, so reading
    fuses with the stages after it and a page is dropped as soon as its text exists. With
    `config.redistribute` the documents are shuffled after reading instead, which helps a runner
    whose shuffle lives on disk (Dataflow) spread the pages of a few huge files.
    """

    def __init__(self, units: list[Unit | str], config: ReadConfig, progress: RunProgress | None = None):
        super().__init__()
        self._units = [unit if isinstance(unit, Unit) else Unit(unit) for unit in units]
        self._config = config
        self._progress = progress

    def expand(self, root):
        units = (root
                 | "ListUnits" >> beam.Create(self._units)
                 | "SpreadUnits" >> beam.Reshuffle())
        later = units | "DuplicateIds" >> DuplicateIds(self._config)
        routed = units | "ReadUnit" >> beam.ParDo(
            _ReadUnit(self._config, self._progress), beam.pvalue.AsMultiMap(later)).with_outputs(REJECTED, main=KEPT)
        documents = routed[KEPT]
        if self._config.redistribute:
            documents = documents | "SpreadDocuments" >> beam.Reshuffle()
        return documents, routed[REJECTED]
