"""Every stage's configuration: one typed dataclass per stage, a section each, in pipeline order.

`python -m pipeline clean` reads `CleanConfig` (the sections read ... work) from defaults, a TOML file and
`--set section.key=value` overrides (`load_clean_config`); `python -m pipeline tokenize` takes
`TokenizeConfig` from its options. Each section names the rule (pipeline/text, pipeline/sources) and the
Beam stage (pipeline/stages) its config drives; those modules import their config from here, and this
module imports none of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from common import config_io

STAGES = ("extract", "lang", "quality", "dedup")


# --- [read] How sources are found, downloaded and read. Rule: pipeline/sources/; stage: pipeline/stages/read.py


@dataclass
class ReadConfig:
    # Field names in JSONL / JSON / parquet / `datasets` records.
    text_field: str = "text"
    id_field: str = "id"
    # Prefix for relative entries of an `@list` file (Common Crawl's warc.paths hold paths such as
    # "crawl-data/CC-MAIN-.../x.warc.gz"; set this to "https://data.commoncrawl.org/"). Empty: relative
    # entries are taken relative to the list file's own folder.
    base_url: str = ""
    # Downloads of http(s) sources: attempts in all, and the first wait between attempts, doubled after
    # each failure (5xx, 429, timeouts, connection errors, bodies shorter than their Content-Length).
    download_attempts: int = 5
    download_backoff_s: float = 1.0
    download_timeout_s: float = 60.0          # longest wait for the next bytes
    # Longest time one attempt may take in all: a server that sends a byte now and then never hits the
    # read timeout. An attempt past it is abandoned and retried (30 minutes is 1 GB, a Common Crawl
    # WARC, at 0.6 MB/s).
    download_deadline_s: float = 1800.0
    max_download_bytes: int = 8 * 1024**3     # a larger body is refused, not truncated
    chunk_bytes: int = 1024 * 1024            # read/write unit while streaming
    # The most any reader inflates for one document (default 32 MiB): a WARC record's block (and its
    # gzip/deflate/br payload once decoded), a JSON line, a whole .json array, a parquet/`datasets` text,
    # an HTML or text file. More is counted as "record_too_large" and passed over in chunks, never held
    # whole, and reading goes on with the next line or record; a few KB of zstd can inflate to gigabytes.
    # A worker holds about twice this per source it reads.
    max_record_bytes: int = 32 * 1024 * 1024
    # Undecodable bytes in text that claims to be UTF-8 are replaced by U+FFFD when they are at most
    # this fraction of the characters (a repair); beyond it the record is rejected as unreadable.
    max_replacement_ratio: float = 0.01
    # Shuffle documents, pages and all, across workers after reading. Off by default: a local run
    # splits large files into work units instead (pipeline.units), as a shuffle holds every page in
    # memory there; on Dataflow, whose shuffle is on disk, it spreads the pages of a few huge files.
    redistribute: bool = False


# --- [extract] HTML to plain text. Rule: pipeline/text/extract.py; stage: pipeline/stages/extract.py


@dataclass
class ExtractConfig:
    # resiliparse with strip_boilerplate: the most known text per second of CPU on bench/labelled.py;
    # trafilatura keeps less template text but is ~8x slower (BENCHMARKS.md, "Choosing the extractor").
    extractor: Literal["trafilatura", "resiliparse"] = "resiliparse"
    include_tables: bool = True
    include_comments: bool = False            # reader comments under articles
    # trafilatura: "precision" drops borderline blocks, "recall" keeps them.
    favor: Literal["balanced", "precision", "recall"] = "balanced"
    # trafilatura: skip its readability/jusText fallbacks, tried when the main pass finds under 250
    # characters (2.4x the throughput on tests/data pages, 0.1% less text).
    fast: bool = True
    # resiliparse: keep only blocks its main-content heuristics accept.
    main_content: bool = True
    # resiliparse: remove template lines left in its text (see `strip_boilerplate_lines`).
    strip_boilerplate: bool = True
    # Lines of fewer words than this, without terminal punctuation, count as navigation.
    nav_line_max_words: int = 10
    # Documents whose text (after extraction and normalization) is shorter are dropped ("extract_empty").
    min_chars: int = 1
    # Larger pages are dropped unextracted ("html_too_large"): extractors take superlinear time on them.
    # A page dropped by this stage keeps its HTML in rejected/, cut at this size (flagged `html_truncated`).
    max_html_chars: int = 4_000_000
    # trafilatura's time grows with the number of tags (990,000 <br> took about a minute; ordinary
    # pages hold under 10,000): pages with more tags than this are extracted by resiliparse, which
    # reads them in well under a second.
    max_trafilatura_tags: int = 100_000


# --- [lang] fastText language filter. Rule: pipeline/text/lang.py; stage: pipeline/stages/lang.py


@dataclass
class LangConfig:
    langs: list[str] = field(default_factory=lambda: ["en"])  # ISO 639-1 codes as lid.176 gives them, or ["all"]
    threshold: float = 0.65  # a wanted language is kept when its top label scores above this
    model: str = ""  # a fastText language-ID model (local path or gs://...); empty: the bundled lid.176.ftz


# --- [quality] Gopher, C4 and FineWeb rules and the optional classifier ([quality.model]).
# Rules: pipeline/text/quality.py, pipeline/text/quality_model.py; stage: pipeline/stages/quality.py


@dataclass
class GopherRepetitionConfig:
    enabled: bool = True
    max_dup_line_frac: float = 0.30
    max_dup_para_frac: float = 0.30
    max_dup_line_char_frac: float = 0.20
    max_dup_para_char_frac: float = 0.20
    max_top_2gram_char_frac: float = 0.20
    max_top_3gram_char_frac: float = 0.18
    max_top_4gram_char_frac: float = 0.16
    max_dup_5gram_char_frac: float = 0.15
    max_dup_6gram_char_frac: float = 0.14
    max_dup_7gram_char_frac: float = 0.13
    max_dup_8gram_char_frac: float = 0.12
    max_dup_9gram_char_frac: float = 0.11
    max_dup_10gram_char_frac: float = 0.10


@dataclass
class GopherQualityConfig:
    enabled: bool = True
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_hash_word_ratio: float = 0.1
    max_ellipsis_word_ratio: float = 0.1
    max_bullet_line_frac: float = 0.9
    max_ellipsis_line_frac: float = 0.3
    min_alpha_word_frac: float = 0.8
    min_stop_words: int = 2


@dataclass
class C4Config:
    enabled: bool = True
    min_words_per_line: int = 5  # C4 keeps only lines of at least this many words ...
    min_sentences: int = 3  # ... ending in terminal punctuation, and needs this many sentences in them
    lorem_ipsum: bool = True  # drop pages containing "lorem ipsum"
    curly_bracket: bool = True  # drop pages containing "{" (code, templates)
    max_javascript_line_frac: float = 0.1
    max_policy_line_frac: float = 0.1
    bad_words_file: str = ""  # one word or phrase a line (e.g. LDNOOBW); empty: no bad-words rule


@dataclass
class FineWebConfig:
    enabled: bool = True
    min_terminal_punct_line_frac: float = 0.12
    max_short_line_frac: float = 0.67
    short_line_length: int = 30  # a line of at most this many characters is short
    max_dup_line_char_frac: float = 0.01
    max_newline_word_ratio: float = 0.3  # newlines per word; lists of short items score high
    # FineWeb's own pipeline runs its line rules after a C4 pass that removes lines of fewer than this
    # many words and javascript/policy lines (but keeps lines without terminal punctuation).
    c4_trim_min_words: int = 3


@dataclass
class QualityModelConfig:
    model: str = ""  # a classifier saved by `python -m pipeline train-quality`; empty: no model score
    threshold: float = 0.5  # documents whose positive-label probability is below this are dropped


@dataclass
class QualityConfig:
    gopher_repetition: GopherRepetitionConfig = field(default_factory=GopherRepetitionConfig)
    gopher_quality: GopherQualityConfig = field(default_factory=GopherQualityConfig)
    c4: C4Config = field(default_factory=C4Config)
    fineweb: FineWebConfig = field(default_factory=FineWebConfig)
    model: QualityModelConfig = field(default_factory=QualityModelConfig)
    disabled_rules: list[str] = field(default_factory=list)  # reasons (e.g. "c4_curly_bracket") never applied


# --- [dedup] Exact, MinHash and line dedup. Rules: pipeline/text/minhash.py (whose check_config validates
# this and derives the LSH bands and rows), lsh.py, line_dedup.py; stage: pipeline/stages/dedup.py


@dataclass
class DedupConfig:
    exact: bool = True                 # drop byte-identical texts (outer whitespace ignored)
    near: bool = True                  # drop MinHash near-duplicates
    shingle_kind: Literal["word", "char"] = "word"  # "word" still uses characters for zh/ja/th/... and space-poor text
    shingle_size: int = 5              # words per shingle
    char_shingle_size: int = 5         # characters per shingle
    min_space_ratio: float = 0.05      # below this share of spaces a text is shingled by characters
    num_perm: int = 128                # MinHash permutations
    seed: int = 1                      # seed of the permutation parameters
    threshold: float = 0.8             # Jaccard similarity at or above which two documents are duplicates
    bands: int | None = None           # LSH bands; None: chosen from threshold and num_perm
    rows: int | None = None            # LSH rows per band; None: chosen with bands
    # Weight of false positives in the LSH band/row choice (false negatives weigh 1 minus it).
    # None: 0.05 when verify_jaccard is on, since a false candidate then costs one exact check
    # while a missed pair is a duplicate kept; 0.5 (datasketch's default) when it is off.
    false_positive_weight: float | None = None
    verify_jaccard: bool = True        # confirm each LSH candidate pair by the true Jaccard of its shingle sets
    all_pairs_bucket_limit: int = 100  # larger LSH buckets are checked as a star plus a chain, not all pairs
    # Connected-components rounds before the stage fails; a chain of 10^5 documents in id order needs 18.
    max_cc_rounds: int = 20
    keep: Literal["lowest_id", "highest_score"] = "lowest_id"  # which document of a duplicate cluster survives
    score_field: str = "quality_model_score"  # field read by keep = "highest_score" (higher is better)
    # C4-style line dedup, run on the documents the duplicate steps keep: a line found in at least
    # line_dedup_min_docs of them stays only in the first (lowest id); a document left without
    # text is rejected as "line_dedup_empty" (one that duplicates name as their keeper stays whole).
    line_dedup: bool = False
    line_dedup_min_docs: int = 2


# --- [output] Sorted, gzipped JSONL shards of cleaned/ and rejected/. Writer: pipeline/stages/write.py


@dataclass
class OutputConfig:
    num_shards: int = 4          # files in cleaned/ and in rejected/


# --- [work] How a run is spread over workers, and where texts wait: pipeline/units.py, pipeline/stages/spill.py


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
    # The writers sort each shard on disk, in runs of at most this much (MB of pickled records):
    # the memory a writer holds, whatever the size of the corpus.
    sort_run_mb: float = 8.0
    # Seconds between progress lines on stderr when it is not a terminal (a terminal gets a live bar).
    progress_seconds: float = 60.0


# --- The clean command's whole configuration, as `--config FILE` and `--set` read it.


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
    if config.work.sort_run_mb <= 0:
        raise config_io.ConfigError(f"work.sort_run_mb must be positive, got {config.work.sort_run_mb}")
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


# --- tokenize: cleaned documents to token shards (`python -m pipeline tokenize` options, not TOML).
# Stage and writer: pipeline/stages/tokenize.py (format: common/shard_format.py); the tokenizer: tokenizer/


@dataclass
class TokenizeConfig:
    val_fraction: float = 0.005        # share of documents in the val split
    num_shards: int | None = None      # train shards; None sizes them by shard_tokens
    shard_tokens: int = 50_000_000     # target tokens per shard when num_shards is not given
    batch_size: int = 512              # documents per SentencePiece call
    seed: int = 0

    def validate(self) -> None:
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.num_shards is not None and self.num_shards < 1:
            raise ValueError(f"--num-shards must be at least 1, got {self.num_shards}")
        if self.shard_tokens < 1 or self.batch_size < 1:
            raise ValueError("--shard-tokens and --batch-size must be positive")
