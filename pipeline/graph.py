"""The `clean` pipeline on one screen: read → extract → lang → quality → spill → dedup → write.

Read, extract, lang and quality fuse into one step that streams each work unit a record at a time;
no shuffle comes between them, so a page's HTML is dropped as soon as its text exists. Texts then
leave memory for spill files (`pipeline.stages.spill`), and only compact records cross the
shuffles of dedup and of the writers, which read each text back as they write its shard.
"""
from __future__ import annotations

import apache_beam as beam

from pipeline.config import CleanConfig
from pipeline.fileio import join
from pipeline.progress import RunProgress, count_progress
from pipeline.stages.dedup import Deduplicate, Fingerprint
from pipeline.stages.extract import ExtractText
from pipeline.stages.lang import LanguageFilter
from pipeline.stages.quality import QualityFilter
from pipeline.stages.read import ReadSources
from pipeline.stages.spill import SpillTexts
from pipeline.stages.summarize import Summarize
from pipeline.stages.write import WriteJsonlShards
from pipeline.stats import describe_run
from pipeline.units import plan_units

WORK_DIR = ".work"  # under the output folder: spill files of a run, deleted when it succeeds


def build_clean(p: beam.Pipeline, sources: list[str], config: CleanConfig, out_dir: str, workers: int = 1,
                progress: RunProgress | None = None) -> None:
    """Add the cleaning pipeline for `sources` to `p`, writing everything under `out_dir`;
    `workers` is how many processes share the work units; with `progress`, the steps report how far
    they are (`pipeline.progress`)."""
    def spill(name: str) -> SpillTexts:
        return name >> SpillTexts(join(out_dir, WORK_DIR), config.work.spill)

    docs, rejected = p | "Read" >> ReadSources(plan_units(sources, config.work, workers), config.read, progress)
    flows = {"read": (docs, rejected | spill("SpillReadRejected"))}

    # Extraction always runs, as HTML has no text until it does; outside --stages it drops nothing.
    filters = {
        "extract": ExtractText(config.extract, filtering="extract" in config.stages),
        "lang": LanguageFilter(config.lang),
        "quality": QualityFilter(config.quality),
    }
    for name, stage in filters.items():
        if name == "extract" or name in config.stages:
            docs, rejected = docs | name.capitalize() >> stage
            docs = count_progress(docs, progress, name, f"{name.capitalize()}Progress")
            flows[name] = (docs, rejected | spill(f"Spill{name.capitalize()}Rejected"))

    if "dedup" in config.stages:
        docs = docs | "Fingerprint" >> Fingerprint(config.dedup)  # while the text is at hand
    docs = docs | spill("SpillKept")
    if "dedup" in config.stages:
        docs, rejected = docs | "Dedup" >> Deduplicate(config.dedup)
        docs = count_progress(docs, progress, "dedup", "DedupProgress")
        flows["dedup"] = (docs, rejected)

    rejected = [r for _, r in flows.values()] | "AllRejected" >> beam.Flatten()
    docs | "WriteCleaned" >> WriteJsonlShards(join(out_dir, "cleaned"), config.output.num_shards, drop_fields=("html",))
    rejected | "WriteRejected" >> WriteJsonlShards(join(out_dir, "rejected"), config.output.num_shards)
    run = describe_run(sources, config, out_dir)
    flows | "Summarize" >> Summarize(out_dir, [name for name in flows if name != "read"], run)
