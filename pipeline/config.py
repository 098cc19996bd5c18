"""Configuration of `python -m pipeline clean`: one typed dataclass per stage, composed here.

Load it from TOML with `pipeline.config_io.load(CleanConfig, path, overrides)`; every key can be
overridden on the command line as `--set section.key=value`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.sources.config import ReadConfig
from pipeline.text.extract import ExtractConfig
from pipeline.text.lang import LangConfig
from pipeline.text.minhash import DedupConfig
from pipeline.text.quality import QualityConfig

STAGES = ("extract", "lang", "quality", "dedup")


@dataclass
class OutputConfig:
    num_shards: int = 4          # files in cleaned/ and in rejected/


@dataclass
class WorkConfig:
    # Worker processes of a local run; 0: one per CPU core. Other runners size themselves.
    workers: int = 0
    # Units each local input file is split into; 0: enough for every worker to have one.
    parts_per_file: int = 0
    # Texts wait in files under OUT/.work between filtering and writing, not in memory; off, they
    # travel inside the records (fine where the runner's shuffle is on disk, e.g. Dataflow).
    spill: bool = True


@dataclass
class CleanConfig:
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    read: ReadConfig = field(default_factory=ReadConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    lang: LangConfig = field(default_factory=LangConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    work: WorkConfig = field(default_factory=WorkConfig)
