"""Count what every stage kept and dropped, per stage and per input file, then write `stats.json`.

`report.html` is built from `stats.json`, cleaned/ and rejected/ once they are all written
(`pipeline.report.write_report`)."""
from __future__ import annotations

import apache_beam as beam

from common.fileio import atomic_write, join
from pipeline import stats as tally
from pipeline.stages.journal import PASSES
from pipeline.stages.routing import KEPT, REJECTED

DOWNLOAD_FAILED = "download_failed"


def _pass_tallies(stage_and_bytes: tuple[str, int]) -> list[tuple]:
    stage, size = stage_and_bytes
    return [(tally.STAGE_KEPT, stage, (1, size))]


def _rejection_tallies(record: dict) -> list[tuple]:
    stage, reason, source = record["stage"], record["reason"], record.get("source") or ""
    tallies = [(tally.STAGE_DROPPED, stage, (1, tally.document_bytes(record))), (tally.REASON, reason, 1),
               (tally.SOURCE_REASON, (source, reason), 1)]
    if stage == "lang" and record.get("lang"):
        tallies.append((tally.DROPPED_LANG, record["lang"], 1))
    if reason == DOWNLOAD_FAILED:
        tallies.append((tally.FAILED_URL, record.get("url") or source, record.get("error", "")))
    return tallies


def _kept_tallies(doc: dict) -> list[tuple]:
    tallies = [(tally.SOURCE_KEPT, doc.get("source") or "", 1)]
    if doc.get("lang"):
        tallies.append((tally.KEPT_LANG, doc["lang"], 1))
    return tallies


_TALLIES_OF = {PASSES: _pass_tallies, REJECTED: _rejection_tallies, KEPT: _kept_tallies}


def _fold(totals: dict, kind: str, key, value) -> None:
    """Add one tally to `totals`: a failed URL keeps its error; everything else is a count (or a
    (documents, bytes) pair) summed."""
    if kind == tally.FAILED_URL:
        totals[kind, key] = value
    elif isinstance(value, tuple):
        totals[kind, key] = tuple(a + b for a, b in zip(totals.get((kind, key), (0,) * len(value)), value))
    else:
        totals[kind, key] = totals.get((kind, key), 0) + value


class _Tally(beam.CombineFn):
    """Elements of one flow → its tallies ((kind, key, value), see `pipeline.stats`), summed as they
    come: one small dict per flow and bundle, however many documents pass."""

    def __init__(self, flow: str):
        self._flow = flow

    def create_accumulator(self):
        return {}

    def add_input(self, totals, element):
        for kind, key, value in _TALLIES_OF[self._flow](element):
            _fold(totals, kind, key, value)
        return totals

    def merge_accumulators(self, accumulators):
        merged = {}
        for totals in accumulators:
            for (kind, key), value in totals.items():
                _fold(merged, kind, key, value)
        return merged

    def extract_output(self, totals):
        return [(kind, key, value) for (kind, key), value in totals.items()]


def _write_summary(tallies: list, out_dir: str, stages: list[str], run: dict) -> dict:
    stats = {**tally.assemble_stats(tallies, stages), "run": run}
    tally.check_invariant(stats)
    atomic_write(join(out_dir, "stats.json"), tally.json_file_bytes(stats))
    return stats


class Summarize(beam.PTransform):
    """Input: a dict of flows, each a PCollection or a tuple of them (tallied one by one, never
    flattened: a runner that materialises a flatten would hold them all): PASSES, (stage, bytes)
    for every stage each document passed (`pipeline.stages.journal.stage_pass`); REJECTED, every
    rejection record; KEPT, the documents of the output. `stages` are the stages that ran after
    "read", in order.

    Writes `stats.json` into `out_dir`, with `run` (see `pipeline.stats.describe_run`) under "run",
    and returns a one-element PCollection holding the stats dict.
    """

    def __init__(self, out_dir: str, stages: list[str], run: dict):
        super().__init__()
        self._out_dir = out_dir
        self._stages = stages
        self._run = run

    def expand(self, flows):
        tallies: tuple = ()
        for flow in (PASSES, REJECTED, KEPT):
            streams = flows[flow] if isinstance(flows[flow], tuple) else (flows[flow],)
            tallies += tuple(stream | f"Tally{flow.capitalize()}{i}" >> beam.CombineGlobally(_Tally(flow))
                             for i, stream in enumerate(streams))
        return (
            tallies
            | "AllTallies" >> beam.Flatten()
            | "Gather" >> beam.FlatMap(lambda found: found)
            | "Collect" >> beam.combiners.ToList()
            | "Write" >> beam.Map(_write_summary, self._out_dir, self._stages, self._run)
        )
