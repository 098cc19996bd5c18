"""Where a work unit's chain ends: records leave their trail, are journaled, and done units replay.

Read → extract → lang → quality → fingerprint → spill run fused, one unit at a time. Each record
carries a trail (`pipeline.document.TRAIL`): its unit and its size as it left each stage. At the
end of the chain `JournalUnits` turns trails into funnel counts ((stage, bytes) "passes", what
`Summarize` counts), and, in a resumable (local) run, appends every record, kept or rejected, to a
journal of its unit under `OUT/.work/units/<unit key>/`; the read stage writes the unit's marker
after its last record. A rerun with the same plan fingerprint replays the journals of the units
that are done (`pipeline.resume.unit_is_done`) instead of reading them again, so dedup, the writers
and the counts see the same records as a run that was never stopped. A replayed record carries only
the fields those steps read and where the rest waits in its journal (`JOURNAL_REF`); the writers
make it whole again (`pipeline.stages.spill.SpillReader.restore`).

A record's spilled text, then its journal entry, then (after the unit's last record) the unit's
marker reach the disk in that order, each flushed: a process killed at any point leaves a journal
that either holds what its marker counts, texts included, or falls short of it.
"""
from __future__ import annotations

import json
import pickle
import uuid
from dataclasses import dataclass
from typing import Collection

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from common.fileio import atomic_write, ensure_dir, join, read_bytes
from pipeline.document import JOURNAL_REF, REPLAYED_FIELDS, TRAIL
from pipeline.resume import frame, frames, unit_is_done, unit_key
from pipeline.stages.routing import KEPT, REJECTED
from pipeline.stats import document_bytes
from pipeline.units import Unit

PASSES = "passes"
PLAN_FILE = "plan.json"
_UNITS = "units"
_MARKER = "done.json"
_JOURNAL_SUFFIX = ".journal"


def _unit_dir(work_dir: str, key: str) -> str:
    return join(work_dir, _UNITS, key)


def stage_pass(doc: dict, stage: str) -> tuple[str, int]:
    """What leaving `stage` counts for in the funnel: the stage and the document's size then."""
    return stage, document_bytes(doc)


def note_passed(doc: dict, stage: str) -> dict:
    key, passes = doc[TRAIL]
    return {**doc, TRAIL: (key, (*passes, stage_pass(doc, stage)))}


# The unit's side, called by the read stage.

def start_unit(work_dir: str, key: str) -> None:
    """Forget what an earlier attempt at unit `key` left: its marker first, then its journals."""
    directory = _unit_dir(work_dir, key)
    delete = [join(directory, _MARKER)] if FileSystems.exists(join(directory, _MARKER)) else []
    delete += [m.path for r in FileSystems.match([join(directory, "*" + _JOURNAL_SUFFIX)]) for m in r.metadata_list]
    if delete:
        FileSystems.delete(delete)


def mark_unit_done(work_dir: str, key: str, records: int) -> None:
    atomic_write(join(_unit_dir(work_dir, key), _MARKER), json.dumps({"records": records}).encode())


# The driver's side: what a rerun finds.

def _journal_files(work_dir: str, key: str) -> list[str]:
    pattern = join(_unit_dir(work_dir, key), "*" + _JOURNAL_SUFFIX)
    return sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)


def _json_field(path: str, field: str):
    """`field` of the JSON object in `path`; None where there is no such file, or it is not ours
    (written by hand, say): a run does not resume from what it cannot read."""
    if not FileSystems.exists(path):
        return None
    try:
        return json.loads(read_bytes(path)).get(field)
    except (ValueError, AttributeError):
        return None


def _marked_records(work_dir: str, key: str) -> int | None:
    return _json_field(join(_unit_dir(work_dir, key), _MARKER), "records")


def _journaled_records(work_dir: str, key: str) -> int:
    count = 0
    for path in _journal_files(work_dir, key):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
            count += sum(1 for _ in frames(stream))
    return count


@dataclass(frozen=True)
class WorkFolder:
    """What a run of `units` units under `fingerprint` finds in its work folder: the units an
    interrupted run of the same plan finished, and whether it holds the work of another plan."""
    fingerprint: str
    units: int
    done: frozenset[Unit]
    other_plan: bool


def find_done_units(work_dir: str, fingerprint: str, units: list[Unit]) -> WorkFolder:
    """Inspect `work_dir` (reading only) for a run of `units` under `fingerprint`."""
    plan = join(work_dir, PLAN_FILE)
    previous = _json_field(plan, "fingerprint")
    if previous != fingerprint:
        return WorkFolder(fingerprint, len(units), frozenset(), other_plan=FileSystems.exists(plan))
    done = frozenset(unit for unit in units if unit_is_done(
        _marked_records(work_dir, unit_key(unit)), _journaled_records(work_dir, unit_key(unit))))
    return WorkFolder(fingerprint, len(units), done, other_plan=False)


def record_plan(work_dir: str, fingerprint: str) -> None:
    atomic_write(join(work_dir, PLAN_FILE), json.dumps({"fingerprint": fingerprint}).encode())


# The pipeline's side.

class _JournalRecords(beam.DoFn):
    """record with trail → the record without it, and its passes on PASSES; journaled under
    `work_dir` when there is one. Records of a unit come together (the chain is fused), so one
    journal is open at a time; a unit met again later gets a new file rather than overwriting."""

    def __init__(self, work_dir: str | None, kind: str):
        self._work_dir = work_dir
        self._kind = kind

    def start_bundle(self):
        self._key = self._file = None

    def process(self, record: dict):
        key, passes = record[TRAIL]
        record = {name: value for name, value in record.items() if name != TRAIL}
        if self._work_dir is not None:
            journal = self._journal(key)
            journal.write(frame(pickle.dumps((record, passes), protocol=pickle.HIGHEST_PROTOCOL)))
            journal.flush()  # before the reader marks the unit done
        for stage_and_bytes in passes:
            yield beam.pvalue.TaggedOutput(PASSES, stage_and_bytes)
        yield record

    def _journal(self, key: str):
        if key != self._key:
            self._close()
            directory = _unit_dir(self._work_dir, key)
            ensure_dir(directory)
            path = join(directory, f"{self._kind}-{uuid.uuid4().hex}{_JOURNAL_SUFFIX}")
            self._key, self._file = key, FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
        return self._file

    def finish_bundle(self):
        self._close()

    def _close(self):
        if self._file is not None:
            self._file.close()
        self._key = self._file = None


def journaled_record(payload: bytes) -> dict:
    """The record of one journal entry."""
    return pickle.loads(payload)[0]


def _journal_kind(path: str) -> str:
    return FileSystems.split(path)[1].split("-", 1)[0]


def _replay(path: str, with_passes: bool):
    """A journal's records, each cut down to what later steps read (`REPLAYED_FIELDS`) and where
    the rest waits (JOURNAL_REF): however large a corpus, what crosses the shuffles after the
    journal stays small, and the writers read the rest back as they write."""
    kind = _journal_kind(path)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
        for offset, payload in frames(stream):
            record, passes = pickle.loads(payload)
            if with_passes:
                for stage_and_bytes in passes:
                    yield beam.pvalue.TaggedOutput(PASSES, stage_and_bytes)
            compact = {name: value for name, value in record.items() if name in REPLAYED_FIELDS}
            compact[JOURNAL_REF] = (path, offset, len(payload))
            yield beam.pvalue.TaggedOutput(kind, compact)


class ReplayJournals(beam.PTransform):
    """`p | ReplayJournals(work_dir, units, kinds)` → outputs KEPT and REJECTED (the records of the
    journals of `units`, those of `kinds` only) and, `with_passes`, PASSES ((stage, bytes) for every
    stage each record passed). Reading the same journals twice costs seconds, and lets a runner
    that holds what flows between its stages (FnApiRunner) hold nothing: see `pipeline.graph`."""

    def __init__(self, work_dir: str, units: Collection[Unit], kinds: Collection[str] = (KEPT, REJECTED),
                 with_passes: bool = True):
        super().__init__()
        self._work_dir = work_dir
        self._units = units
        self._kinds = kinds
        self._with_passes = with_passes

    def expand(self, pipeline):
        journals = [path for unit in sorted(self._units, key=unit_key)
                    for path in _journal_files(self._work_dir, unit_key(unit)) if _journal_kind(path) in self._kinds]
        return (pipeline
                | "ListJournals" >> beam.Create(journals)
                | "SpreadJournals" >> beam.Reshuffle()
                | "Replay" >> beam.FlatMap(_replay, self._with_passes).with_outputs(KEPT, REJECTED, PASSES))


class JournalUnits(beam.PTransform):
    """`(kept, *rejected) | JournalUnits(work_dir)` -> `(kept, rejected, passes)`.

    The inputs are the records where the per-unit chain ends, each with its trail. The outputs hold
    them without it; `passes` are (stage, bytes) for every stage each record passed. `rejected` and
    `passes` are tuples of PCollections, one per input: not flattened, as FnApiRunner would hold a
    flatten's input in memory. With `work_dir`, every record is also journaled under its unit (a
    local run); with None (a remote runner, a dry run) nothing is.
    """

    def __init__(self, work_dir: str | None):
        super().__init__()
        self._work_dir = work_dir

    def expand(self, streams):
        kept, passes, rejected = None, [], []
        for index, stream in enumerate(streams):
            kind = KEPT if index == 0 else REJECTED
            journaled = stream | f"Journal{index}" >> beam.ParDo(
                _JournalRecords(self._work_dir, kind)).with_outputs(PASSES, main=kind)
            if index == 0:
                kept = journaled[kind]
            else:
                rejected.append(journaled[kind])
            passes.append(journaled[PASSES])
        return kept, tuple(rejected), tuple(passes)
