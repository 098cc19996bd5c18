"""Count what every stage kept and dropped, per stage and per input file, then write `stats.json`.

`report.html` is built from `stats.json`, cleaned/ and rejected/ once they are all written
(`pipeline.report.write_report`)."""
from __future__ import annotations

import apache_beam as beam

from common.fileio import atomic_write, join
from pipeline import stats as tally

DOWNLOAD_FAILED = "download_failed"


def _sum_pairs(pairs):
    docs = size = 0
    for d, s in pairs:
        docs += d
        size += s
    return docs, size


def _write_summary(tallies: list, out_dir: str, stages: list[str], run: dict) -> dict:
    stats = {**tally.assemble_stats(tallies, stages), "run": run}
    tally.check_invariant(stats)
    atomic_write(join(out_dir, "stats.json"), tally.json_file_bytes(stats))
    return stats


class Summarize(beam.PTransform):
    """Input: a dict with "passes", (stage, bytes) for every stage each document passed
    (`pipeline.stages.journal.stage_pass`), "rejected", every rejection record, and "kept", the
    documents of the output. `stages` are the stages that ran after "read", in order.

    Writes `stats.json` into `out_dir`, with `run` (see `pipeline.stats.describe_run`) under "run",
    and returns a one-element PCollection holding the stats dict.
    """

    def __init__(self, out_dir: str, stages: list[str], run: dict):
        super().__init__()
        self._out_dir = out_dir
        self._stages = stages
        self._run = run

    def expand(self, flows):
        passes, rejected, kept = flows["passes"], flows["rejected"], flows["kept"]
        pieces = [
            passes | "Passes" >> beam.MapTuple(lambda stage, size: (stage, (1, size)))
            | "SumPasses" >> beam.CombinePerKey(_sum_pairs) | "TagPasses" >> beam.Map(lambda kv: (tally.STAGE_KEPT, *kv)),
            rejected | "Drops" >> beam.Map(lambda r: (r["stage"], (1, tally.document_bytes(r))))
            | "SumDrops" >> beam.CombinePerKey(_sum_pairs) | "TagDrops" >> beam.Map(lambda kv: (tally.STAGE_DROPPED, *kv)),
            rejected | "Reasons" >> beam.Map(lambda r: (r["reason"], 1)) | "SumReasons" >> beam.CombinePerKey(sum)
            | "TagReasons" >> beam.Map(lambda kv: (tally.REASON, *kv)),
            kept | "KeptLangs" >> beam.FlatMap(lambda d: [(d["lang"], 1)] if d.get("lang") else [])
            | "SumKeptLangs" >> beam.CombinePerKey(sum) | "TagKeptLangs" >> beam.Map(lambda kv: (tally.KEPT_LANG, *kv)),
            rejected | "DroppedLangs" >> beam.FlatMap(
                lambda r: [(r["lang"], 1)] if r.get("stage") == "lang" and r.get("lang") else [])
            | "SumDroppedLangs" >> beam.CombinePerKey(sum)
            | "TagDroppedLangs" >> beam.Map(lambda kv: (tally.DROPPED_LANG, *kv)),
            rejected | "FailedUrls" >> beam.FlatMap(
                lambda r: [(tally.FAILED_URL, r.get("url") or r.get("source"), r.get("error", ""))]
                if r["reason"] == DOWNLOAD_FAILED else []),
            kept | "KeptSources" >> beam.Map(lambda d: (d.get("source") or "", 1))
            | "SumKeptSources" >> beam.CombinePerKey(sum)
            | "TagKeptSources" >> beam.Map(lambda kv: (tally.SOURCE_KEPT, *kv)),
            rejected | "RejectedSources" >> beam.Map(lambda r: ((r.get("source") or "", r["reason"]), 1))
            | "SumRejectedSources" >> beam.CombinePerKey(sum)
            | "TagRejectedSources" >> beam.Map(lambda kv: (tally.SOURCE_REASON, *kv)),
        ]
        return (
            pieces
            | "AllTallies" >> beam.Flatten()
            | "Gather" >> beam.combiners.ToList()
            | "Write" >> beam.Map(_write_summary, self._out_dir, self._stages, self._run)
        )
