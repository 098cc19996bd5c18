"""`read_source`: every document of one source (a path any Beam FileSystem can open, or a URL).

It yields `(KEPT, document)` and `(REJECTED, rejection record)` pairs (the tags of
`pipeline.stages.routing`). It never raises for bad input: a corrupt record, a truncated file or a
failed download becomes a rejection (stage "read") and reading goes on with what is still readable.
"""
from __future__ import annotations

import functools
import os
import tempfile
from typing import Iterator

from common.compressed import ReadError, decompressed, open_raw, stream_problem
from pipeline.config import ReadConfig
from pipeline.document import rejection
from pipeline.sources.download import DownloadError, download
from pipeline.sources.formats import (HTML, JSON, JSONL, PARQUET, TXT, WARC, format_from_content, format_from_name,
                                      is_dataset_dir, is_url, source_label)
from pipeline.sources.records import (dataset_documents, json_documents, jsonl_documents, parquet_documents,
                                      whole_file_document)
from pipeline.sources.warc import warc_documents
from pipeline.stages.routing import REJECTED

STAGE = "read"
_READERS = {
    WARC: warc_documents,
    JSONL: jsonl_documents,
    JSON: json_documents,
    PARQUET: parquet_documents,
    HTML: functools.partial(whole_file_document, field="html"),
    TXT: functools.partial(whole_file_document, field="text"),
}


def read_source(source: str, config: ReadConfig) -> Iterator[tuple[str, dict]]:
    documents = _url_documents(source, config) if is_url(source) else _path_documents(source, config)
    yield from _guarded(documents, source)


def _url_documents(url: str, config: ReadConfig) -> Iterator[tuple[str, dict]]:
    with tempfile.TemporaryDirectory(prefix="webcorpus-download-") as folder:
        local = os.path.join(folder, "body")
        try:
            with open(local, "wb") as out:
                download(url, out, config)
        except DownloadError as error:
            yield REJECTED, rejection({"id": url, "source": url, "url": url}, STAGE, "download_failed", error=str(error))
            return
        yield from _file_documents(local, url, config)


def _guarded(items: Iterator[tuple[str, dict]], source: str) -> Iterator[tuple[str, dict]]:
    """Pass `items` through; a failure that ends the source early becomes one counted rejection."""
    read = 0
    try:
        for item in items:
            read += 1
            yield item
    except Exception as error:  # noqa: BLE001 -- any failure of one source is counted, never fatal
        detail = str(error) if isinstance(error, ReadError) else f"{type(error).__name__}: {error}"
        doc = {"id": f"{source_label(source)}:read_error", "source": source}
        yield REJECTED, rejection(doc, STAGE, "read_error", error=f"stopped after {read} records: {detail}")


def _path_documents(path: str, config: ReadConfig) -> Iterator[tuple[str, dict]]:
    if is_dataset_dir(path):
        yield from dataset_documents(path, path, source_label(path), config)
    else:
        yield from _file_documents(path, path, config)


def _file_documents(path: str, source: str, config: ReadConfig) -> Iterator[tuple[str, dict]]:
    """Documents of the file at `path` (the source itself, or a downloaded copy of it)."""
    with open_raw(path) as raw:
        stream = decompressed(raw, config.chunk_bytes)
        file_format = format_from_name(source) or format_from_content(stream.peek(16)[:16])
        yield from _READERS[file_format](stream, source, source_label(source), config)
        if problem := stream_problem(stream):
            raise problem
