"""The `clean` pipeline on one screen: read → extract → lang → quality → spill → dedup → write.

Read, extract, lang and quality fuse into one step that streams each work unit a record at a time;
no shuffle comes between them, so a page's HTML is dropped as soon as its text exists. Texts then
leave memory for spill files (`pipeline.stages.spill`), and only compact records go on to dedup
and to the writers, which sort on disk and read each text back as they write its shard.

On a cluster (Dataflow, any portable runner) that is one pipeline, `build_clean`. A local run takes
it in two passes, so that memory stays flat however large the corpus: `build_filter_pass` filters
the units in several processes and journals where each record ended (`pipeline.stages.journal`),
which also lets a killed run resume from the units it finished; `build_finish_pass` then replays
the journals in one process through dedup, the writers and the counts. FnApiRunner holds in memory
everything that crosses from one of its stages to the next (a flatten too), so the second pass
reads the journals again wherever a step would otherwise wait for another: dedup counts what
documents share in one read, groups only those in the next, and routes a third by its verdicts.
"""
from __future__ import annotations

import apache_beam as beam

from common.fileio import join
from pipeline.config import CleanConfig
from pipeline.progress import RunProgress, count_progress
from pipeline.stages.dedup import Deduplicate, DeduplicateJournaled, Fingerprint
from pipeline.stages.extract import ExtractText
from pipeline.stages.journal import PASSES, JournalUnits, ReplayJournals, note_passed, stage_pass
from pipeline.stages.lang import LanguageFilter
from pipeline.stages.quality import QualityFilter
from pipeline.stages.read import ReadSources
from pipeline.stages.routing import KEPT, REJECTED
from pipeline.stages.spill import SpillTexts
from pipeline.stages.summarize import Summarize
from pipeline.stages.write import WriteJsonlShards
from pipeline.stats import describe_run
from pipeline.units import Unit, plan_units

WORK_DIR = ".work"  # under the output folder: spill files and journals of a run, deleted when it succeeds


def _filter_stages(config: CleanConfig) -> list[str]:
    # Extraction always runs, as HTML has no text until it does; outside --stages it drops nothing.
    return [name for name in ("extract", "lang", "quality") if name == "extract" or name in config.stages]


def _filtered(p: beam.Pipeline, sources: list[str], config: CleanConfig, out_dir: str, workers: int,
              progress: RunProgress | None, journal_dir: str | None, done_units: frozenset[Unit] = frozenset()):
    """The chain every unit goes through: (kept, rejected, passes, the stages that ran after "read")."""
    work_dir = join(out_dir, WORK_DIR)

    def spill(name: str) -> SpillTexts:
        return name >> SpillTexts(work_dir, config.work.spill, flush_each=journal_dir is not None)

    units = plan_units(sources, config.work, workers)
    docs, rejected = p | "Read" >> ReadSources(units, config.read, work_dir, journal_dir, done_units, progress)
    docs = docs | "PassedRead" >> beam.Map(note_passed, "read")
    rejected_streams = [rejected | spill("SpillReadRejected")]

    filters = {
        "extract": ExtractText(config.extract, filtering="extract" in config.stages),
        "lang": LanguageFilter(config.lang),
        "quality": QualityFilter(config.quality),
    }
    stages = _filter_stages(config)
    for name in stages:
        docs, rejected = docs | name.capitalize() >> filters[name]
        docs = docs | f"Passed{name.capitalize()}" >> beam.Map(note_passed, name)
        docs = count_progress(docs, progress, name, f"{name.capitalize()}Progress")
        rejected_streams.append(rejected | spill(f"Spill{name.capitalize()}Rejected"))

    if "dedup" in config.stages:
        docs = docs | "Fingerprint" >> Fingerprint(config.dedup)  # while the text is at hand
    docs = docs | spill("SpillKept")
    docs, rejected, passes = (docs, *rejected_streams) | "Journal" >> JournalUnits(journal_dir)
    return docs, rejected, passes, stages


def build_clean(p: beam.Pipeline, sources: list[str], config: CleanConfig, out_dir: str, workers: int = 1,
                progress: RunProgress | None = None) -> None:
    """Add the whole cleaning pipeline for `sources` to `p`, writing everything under `out_dir`;
    `workers` is how many processes share the work units; with `progress`, the steps report how far
    they are (`pipeline.progress`)."""
    docs, rejected, passes, stages = _filtered(p, sources, config, out_dir, workers, progress, None)
    if "dedup" in config.stages:
        stages.append("dedup")
        docs, duplicates = docs | "Dedup" >> Deduplicate(config.dedup, join(out_dir, WORK_DIR))
        docs = count_progress(docs, progress, "dedup", "DedupProgress")
        passes += (docs | "PassedDedup" >> beam.Map(stage_pass, "dedup"),)
        rejected += (duplicates,)
    _write(docs, rejected, passes, sources, config, out_dir, stages)


def build_filter_pass(p: beam.Pipeline, sources: list[str], config: CleanConfig, out_dir: str, workers: int,
                      progress: RunProgress | None, done_units: frozenset[Unit]) -> None:
    """The first pass of a local run: every unit but the `done_units` is filtered and journaled."""
    _filtered(p, sources, config, out_dir, workers, progress, join(out_dir, WORK_DIR), done_units)


def build_finish_pass(p: beam.Pipeline, sources: list[str], config: CleanConfig, out_dir: str, workers: int,
                      progress: RunProgress | None) -> None:
    """The second pass of a local run: the journals of every unit, through dedup, the writers and the counts."""
    work_dir = join(out_dir, WORK_DIR)
    units = plan_units(sources, config.work, workers)
    replayed = p | "Replay" >> ReplayJournals(work_dir, units)
    kept, rejected, passes = [replayed[KEPT]], [replayed[REJECTED]], [replayed[PASSES]]
    stages = _filter_stages(config)
    if "dedup" in config.stages:
        stages.append("dedup")
        if config.dedup.line_dedup:  # it joins the kept documents themselves, so they are held
            deduplicated, duplicates = kept[0] | "Dedup" >> Deduplicate(config.dedup, work_dir)
            kept, rejected = [deduplicated], [*rejected, duplicates]
        else:
            deduplicated, duplicates = kept[0] | "Dedup" >> DeduplicateJournaled(config.dedup, work_dir, units)
            kept, rejected = list(deduplicated), [*rejected, *duplicates]
        kept = [count_progress(stream, progress, "dedup", f"DedupProgress{i}") for i, stream in enumerate(kept)]
        passes += [stream | f"PassedDedup{i}" >> beam.Map(stage_pass, "dedup") for i, stream in enumerate(kept)]
    _write(tuple(kept), tuple(rejected), tuple(passes), sources, config, out_dir, stages)


def _write(kept, rejected, passes, sources: list[str], config: CleanConfig, out_dir: str, stages: list[str]) -> None:
    """cleaned/, rejected/ and stats.json from the flows, each a PCollection or a tuple of them."""
    work_dir = join(out_dir, WORK_DIR)

    def write(name: str, drop_fields: tuple[str, ...] = ()) -> WriteJsonlShards:
        return WriteJsonlShards(join(out_dir, name), config.output.num_shards, work_dir, drop_fields,
                                run_mb=config.work.sort_run_mb)

    kept | "WriteCleaned" >> write("cleaned", drop_fields=("html",))
    rejected | "WriteRejected" >> write("rejected")
    run = describe_run(sources, config, out_dir)
    {PASSES: passes, REJECTED: rejected, KEPT: kept} | "Summarize" >> Summarize(out_dir, stages, run)
