"""A gzipped WARC of a few hundred real pages, built from the bundled sample, for tests that need many records.

Every real WARC of data/sample/web is copied record by record (gzip members concatenate), then
each Dolma JSONL document and each sample HTML page becomes its own `response` record, so the
archive mixes real crawl records with many small real pages of varied text.
"""
from __future__ import annotations

import gzip
import html
import json
import uuid
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "data/sample"
_DOLMA = SAMPLE / "jsonl/dolma-CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def _response_record(url: str, page: bytes, number: int) -> bytes:
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + page
    record_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{number}:{url}")
    head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:{record_id}>\r\n"
            f"WARC-Date: 2024-01-01T00:00:00Z\r\nWARC-Target-URI: {url}\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n")
    return gzip.compress(head.encode() + http + b"\r\n\r\n", mtime=0)


def _dolma_pages(limit: int):
    with gzip.open(_DOLMA, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if number == limit:
                return
            paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in json.loads(line)["text"].split("\n") if p.strip())
            yield (f"https://example.org/dolma/{number}",
                   f"<html><head><title>Page {number}</title></head><body><article>{paragraphs}</article>"
                   f"<footer>Menu Home About</footer></body></html>".encode())


def write_many_records_warc(path: Path, pages: int = 300) -> Path:
    """Write the archive to `path`: the sample WARCs' records, then `pages` Dolma pages and the sample HTML pages."""
    with open(path, "wb") as out:
        for warc in sorted((SAMPLE / "web").glob("*.warc.gz")):
            out.write(warc.read_bytes())
        number = 0
        for number, (url, page) in enumerate(_dolma_pages(pages)):
            out.write(_response_record(url, page, number))
        for page in sorted((SAMPLE / "html").glob("*.html")):
            number += 1
            out.write(_response_record(f"https://example.org/sample/{page.name}", page.read_bytes(), number))
    return path
