"""The `clean` pipeline on one screen: read → extract → lang → quality → spill → dedup → write.

Read, extract, lang and quality fuse into one step that streams each work unit a record at a time;
no shuffle comes between them, so a page's HTML is dropped as soon as its text exists. Texts then
leave memory for spill files (`pipeline.stages.spill`), and only compact records cross the
shuffles of dedup and of the writers, which read each text back as they write its shard. Where a
unit's chain ends, its records are journaled, so that a killed local run resumes from the units it
finished (`pipeline.stages.journal`).
"""
from __future__ import annotations

import apache_beam as beam

from common.fileio import join
from pipeline.config import CleanConfig
from pipeline.progress import RunProgress, count_progress
from pipeline.stages.dedup import Deduplicate, Fingerprint
from pipeline.stages.extract import ExtractText
from pipeline.stages.journal import JournalUnits, note_passed, stage_pass
from pipeline.stages.lang import LanguageFilter
from pipeline.stages.quality import QualityFilter
from pipeline.stages.read import ReadSources
from pipeline.stages.spill import SpillTexts
from pipeline.stages.summarize import Summarize
from pipeline.stages.write import WriteJsonlShards
from pipeline.stats import describe_run
from pipeline.units import Unit, plan_units

WORK_DIR = ".work"  # under the output folder: spill files and journals of a run, deleted when it succeeds


def build_clean(p: beam.Pipeline, sources: list[str], config: CleanConfig, out_dir: str, workers: int = 1,
                progress: RunProgress | None = None, journaled: bool = False,
                done_units: frozenset[Unit] = frozenset(), filter_only: bool = False) -> None:
    """Add the cleaning pipeline for `sources` to `p`, writing everything under `out_dir`;
    `workers` is how many processes share the work units; with `progress`, the steps report how far
    they are (`pipeline.progress`). A `journaled` run (local) keeps journals a rerun can resume
    from, and replays those of `done_units` instead of reading them; `filter_only` stops there,
    once every unit is journaled (the first pass of a local run, see `pipeline.commands.clean`)."""
    work_dir = join(out_dir, WORK_DIR)

    def spill(name: str) -> SpillTexts:
        return name >> SpillTexts(work_dir, config.work.spill, flush_each=journaled)

    journal_dir = work_dir if journaled else None
    units = plan_units(sources, config.work, workers)
    docs, rejected = p | "Read" >> ReadSources(units, config.read, journal_dir, done_units, progress)
    docs = docs | "PassedRead" >> beam.Map(note_passed, "read")
    rejected_streams = [rejected | spill("SpillReadRejected")]

    # Extraction always runs, as HTML has no text until it does; outside --stages it drops nothing.
    filters = {
        "extract": ExtractText(config.extract, filtering="extract" in config.stages),
        "lang": LanguageFilter(config.lang),
        "quality": QualityFilter(config.quality),
    }
    stages = [name for name in filters if name == "extract" or name in config.stages]
    for name in stages:
        docs, rejected = docs | name.capitalize() >> filters[name]
        docs = docs | f"Passed{name.capitalize()}" >> beam.Map(note_passed, name)
        docs = count_progress(docs, progress, name, f"{name.capitalize()}Progress")
        rejected_streams.append(rejected | spill(f"Spill{name.capitalize()}Rejected"))

    if "dedup" in config.stages:
        docs = docs | "Fingerprint" >> Fingerprint(config.dedup)  # while the text is at hand
    docs = docs | spill("SpillKept")
    replayed = frozenset() if filter_only else done_units
    docs, rejected, passes = (docs, *rejected_streams) | "Journal" >> JournalUnits(journal_dir, replayed)
    if filter_only:
        return
    if "dedup" in config.stages:
        stages.append("dedup")
        docs, duplicates = docs | "Dedup" >> Deduplicate(config.dedup)
        docs = count_progress(docs, progress, "dedup", "DedupProgress")
        passes = (passes, docs | "PassedDedup" >> beam.Map(stage_pass, "dedup")) | "AllPasses" >> beam.Flatten()
        rejected = (rejected, duplicates) | "AllRejected" >> beam.Flatten()

    docs | "WriteCleaned" >> WriteJsonlShards(join(out_dir, "cleaned"), config.output.num_shards, drop_fields=("html",))
    rejected | "WriteRejected" >> WriteJsonlShards(join(out_dir, "rejected"), config.output.num_shards)
    run = describe_run(sources, config, out_dir)
    {"passes": passes, "rejected": rejected, "kept": docs} | "Summarize" >> Summarize(out_dir, stages, run)
