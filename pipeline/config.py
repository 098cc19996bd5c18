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
class CleanConfig:
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    read: ReadConfig = field(default_factory=ReadConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    lang: LangConfig = field(default_factory=LangConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
