"""The `clean` pipeline on one screen: read → extract → lang → quality → dedup → write."""
from __future__ import annotations

import apache_beam as beam

from pipeline.config import CleanConfig
from pipeline.fileio import join
from pipeline.stages.dedup import Deduplicate
from pipeline.stages.extract import ExtractText
from pipeline.stages.lang import LanguageFilter
from pipeline.stages.quality import QualityFilter
from pipeline.stages.read import ReadSources
from pipeline.stages.summarize import Summarize
from pipeline.stages.unique_ids import UniqueIds
from pipeline.stages.write import WriteJsonlShards
from pipeline.stats import describe_run


def build_clean(p: beam.Pipeline, sources: list[str], config: CleanConfig, out_dir: str) -> None:
    """Add the cleaning pipeline for `sources` to `p`, writing everything under `out_dir`."""
    docs, unreadable = p | "Read" >> ReadSources(sources, config.read)
    docs, duplicate_ids = docs | "UniqueIds" >> UniqueIds()
    read_rejected = (unreadable, duplicate_ids) | "ReadRejected" >> beam.Flatten()
    flows = {"read": (docs, read_rejected)}

    # Extraction always runs, as HTML has no text until it does; outside --stages it drops nothing.
    stages = {
        "extract": ExtractText(config.extract, filtering="extract" in config.stages),
        "lang": LanguageFilter(config.lang),
        "quality": QualityFilter(config.quality),
        "dedup": Deduplicate(config.dedup),
    }
    for name, stage in stages.items():
        if name == "extract" or name in config.stages:
            docs, rejected = docs | name.capitalize() >> stage
            flows[name] = (docs, rejected)

    rejected = [r for _, r in flows.values()] | "AllRejected" >> beam.Flatten()
    docs | "WriteCleaned" >> WriteJsonlShards(join(out_dir, "cleaned"), config.output.num_shards, drop_fields=("html",))
    rejected | "WriteRejected" >> WriteJsonlShards(join(out_dir, "rejected"), config.output.num_shards)
    run = describe_run(sources, config, out_dir)
    flows | "Summarize" >> Summarize(out_dir, [name for name in flows if name != "read"], run)
