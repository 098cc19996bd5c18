"""The read stage: work units to documents, each unit read where it is processed."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.config import ReadConfig
from pipeline.document import TRAIL, rejection
from pipeline.progress import FILES, INPUT_BYTES, ProgressWriter, RunProgress, docs_key
from pipeline.resume import unit_key
from pipeline.stages.journal import mark_unit_done, start_unit
from pipeline.stages.routing import KEPT, REJECTED
from pipeline.stages.unique_ids import DUPLICATE_ID, DuplicateIds
from pipeline.units import Unit, unit_records


class _ReadUnit(beam.DoFn):
    def __init__(self, config: ReadConfig, journal_dir: str | None, progress: RunProgress | None):
        self._config = config
        self._journal_dir = journal_dir
        self._progress = progress
        self._documents = Metrics.counter("read", "documents")
        self._rejected = Metrics.counter("read", "rejected")

    def setup(self):
        self._writer = ProgressWriter(self._progress.folder) if self._progress else None

    def process(self, unit: Unit, later_occurrences):
        key = unit_key(unit)
        if self._journal_dir is not None:
            start_unit(self._journal_dir, key)
        id_taken_at = set(later_occurrences[unit.source])   # positions whose id an earlier record has
        records = 0
        for position, tag, record in unit_records(unit, self._config):
            if self._writer:
                self._writer.add(docs_key("read"))
            if tag == KEPT and position in id_taken_at:
                tag, record = REJECTED, rejection(record, "read", DUPLICATE_ID, duplicate_of=record["id"])
            record = {**record, TRAIL: (key, ())}
            records += 1
            if tag == REJECTED:
                self._rejected.inc()
                yield beam.pvalue.TaggedOutput(REJECTED, record)
            else:
                self._documents.inc()
                yield record
        # The stages fused after this one have handled every record by now; the count lets a rerun
        # check that against the unit's journal rather than trust it.
        if self._journal_dir is not None:
            mark_unit_done(self._journal_dir, key, records)
        if self._writer:
            self._writer.add(FILES, 1 / unit.parts)
            self._writer.add(INPUT_BYTES, self._progress.sizes.get(unit.source, 0) / unit.parts)

    def finish_bundle(self):
        if self._writer:
            self._writer.flush()


class ReadSources(beam.PTransform):
    """`p | ReadSources(units, config, scratch_dir)` -> `(documents, rejected)`, every document id
    unique (the id census sorts its rows under `scratch_dir`).

    `units` come from `pipeline.units.plan_units` (resolved when the pipeline is built; a plain
    source stands for the whole of it, one unit). They are
    spread across workers, and each worker reads its own: nothing else moves pages, so reading
    fuses with the stages after it and a page is dropped as soon as its text exists. With
    `config.redistribute` the documents are shuffled after reading instead, which helps a runner
    whose shuffle lives on disk (Dataflow) spread the pages of a few huge files.

    Every record carries its trail (`pipeline.document.TRAIL`). With a `journal_dir`, each unit read
    to its end is marked done there (`pipeline.stages.journal`); units in `done` are not read (a
    rerun replays their journals), though the id census still counts them.
    """

    def __init__(self, units: list[Unit | str], config: ReadConfig, scratch_dir: str, journal_dir: str | None = None,
                 done: frozenset[Unit] = frozenset(), progress: RunProgress | None = None):
        super().__init__()
        self._units = [unit if isinstance(unit, Unit) else Unit(unit) for unit in units]
        self._config = config
        self._scratch_dir = scratch_dir
        self._journal_dir = journal_dir
        self._done = done
        self._progress = progress

    def expand(self, root):
        units = (root
                 | "ListUnits" >> beam.Create(self._units)
                 | "SpreadUnits" >> beam.Reshuffle())
        if all(unit in self._done for unit in self._units):   # every unit replays: no file is read
            nothing = root | "NothingToRead" >> beam.Create([])
            return nothing, nothing
        sources = [unit.source for unit in self._units]
        later = units | "DuplicateIds" >> DuplicateIds(self._config, sources, self._scratch_dir)
        if self._done:
            units = units | "SkipDoneUnits" >> beam.Filter(lambda unit, done: unit not in done, self._done)
        routed = units | "ReadUnit" >> beam.ParDo(
            _ReadUnit(self._config, self._journal_dir, self._progress), beam.pvalue.AsMultiMap(later)).with_outputs(REJECTED, main=KEPT)
        documents = routed[KEPT]
        if self._config.redistribute:
            documents = documents | "SpreadDocuments" >> beam.Reshuffle()
        return documents, routed[REJECTED]
