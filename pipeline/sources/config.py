"""How sources are found, downloaded and read (the `[read]` table of the clean config)."""
from __future__ import annotations

from dataclasses import dataclass


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
