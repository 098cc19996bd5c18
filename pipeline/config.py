"""Configuration of `python -m pipeline clean`: one typed dataclass per stage, composed here.

Load it from TOML with `common.config_io.load(CleanConfig, path, overrides)`; every key can be
overridden on the command line as `--set section.key=value`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common import config_io
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
    # Worker processes of a local run; 0: automatic (one for local inputs under one_worker_below_mb,
    # else one per CPU core this process may use). Other runners size themselves.
    workers: int = 0
    # Below this much local input (MB, compressed as stored), a second worker's start-up (imports,
    # models: seconds) costs more than it saves; inputs off this machine count as large.
    one_worker_below_mb: float = 16.0
    # Units each local input file is split into; 0: enough for every worker to have one.
    parts_per_file: int = 0
    # Texts wait in files under OUT/.work between filtering and writing, not in memory; off, they
    # travel inside the records (fine where the runner's shuffle is on disk, e.g. Dataflow).
    spill: bool = True
    # Seconds between progress lines on stderr when it is not a terminal (a terminal gets a live bar).
    progress_seconds: float = 60.0


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


def load_clean_config(path: str | Path | None, overrides: dict[str, str]) -> CleanConfig:
    """CleanConfig from defaults, the TOML file at `path` and `overrides`, checked as it is read:
    a setting out of range is a one-line ConfigError here, not a surprise mid-run."""
    config = config_io.load(CleanConfig, path, overrides)
    unknown = [stage for stage in config.stages if stage not in STAGES]
    if unknown or not config.stages:
        raise config_io.ConfigError(f"unknown stage {unknown[0] if unknown else '(none)'!r}; "
                                    f"choose from {','.join(STAGES)}")
    read = config.read
    at_least_one = {"output.num_shards": config.output.num_shards, "read.chunk_bytes": read.chunk_bytes,
                    "read.download_attempts": read.download_attempts,
                    "read.max_download_bytes": read.max_download_bytes, "read.max_record_bytes": read.max_record_bytes}
    for key, value in at_least_one.items():
        if value < 1:
            raise config_io.ConfigError(f"{key} must be at least 1, got {value}")
    if read.download_timeout_s <= 0:
        raise config_io.ConfigError(f"read.download_timeout_s must be positive, got {read.download_timeout_s}")
    if read.download_backoff_s < 0:
        raise config_io.ConfigError(f"read.download_backoff_s must not be negative, got {read.download_backoff_s}")
    if config.work.workers < 0 or config.work.parts_per_file < 0:
        raise config_io.ConfigError("work.workers and work.parts_per_file must be 0 (automatic) or more")
    if config.work.one_worker_below_mb < 0:
        raise config_io.ConfigError(
            f"work.one_worker_below_mb must not be negative, got {config.work.one_worker_below_mb}")
    if config.work.progress_seconds <= 0:
        raise config_io.ConfigError(f"work.progress_seconds must be positive, got {config.work.progress_seconds}")
    if not 0 <= read.max_replacement_ratio <= 1:
        raise config_io.ConfigError(f"read.max_replacement_ratio must be in [0, 1], got {read.max_replacement_ratio}")
    return config
