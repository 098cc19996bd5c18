"""Property: whatever bytes a source holds, reading it raises nothing, and every item it yields is a
well-formed document or a counted rejection; the ids the reader makes are unique within the source.

Inputs are random bytes, random text, and valid records of each format with random pieces spliced
in, under every name the readers know (and none), compressed where the name says so. The cap on a
record is small, so the paths that pass over oversized lines and records run too.
"""
from __future__ import annotations

import collections
import gzip
import io
import json
import re
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import ReadConfig
from pipeline.sources import read_source
from pipeline.sources.formats import source_label
from pipeline.stages.routing import KEPT, REJECTED

CONFIG = ReadConfig(max_record_bytes=2048, chunk_bytes=512)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = ["x.warc", "x.warc.gz", "x.warc.wet.gz", "x.jsonl", "x.json", "x.jsonl.gz", "x.json.zst", "x.html",
         "x.txt", "x.parquet", "no-extension"]


def _warc_record(block: bytes, warc_type: bytes, record_id: bytes, length: int | None = None) -> bytes:
    declared = len(block) if length is None else length
    return (b"WARC/1.0\r\nWARC-Type: " + warc_type + b"\r\nWARC-Record-ID: <urn:uuid:" + record_id + b">\r\n"
            b"WARC-Target-URI: http://example.com/\r\nContent-Type: application/http; msgtype=response\r\n"
            b"Content-Length: %d\r\n\r\n" % declared + block + b"\r\n\r\n")


http_bodies = st.tuples(st.sampled_from([b"200 OK", b"404 Not Found", b"2\xb2 X", b""]),
                        st.sampled_from([b"gzip", b"deflate", b"br", b"chunked", b""]),
                        st.binary(max_size=300)).map(
    lambda parts: b"HTTP/1.1 " + parts[0] + b"\r\nContent-Type: text/html\r\nContent-Encoding: " + parts[1]
    + b"\r\nTransfer-Encoding: " + parts[1] + b"\r\n\r\n" + parts[2])
warc_records = st.builds(
    _warc_record,
    st.one_of(http_bodies, st.binary(max_size=400), st.text(max_size=200).map(str.encode)),
    st.sampled_from([b"response", b"conversion", b"request", b"warcinfo", b""]),
    st.sampled_from([b"1", b"2", b"1"]),                      # repeated ids
    st.one_of(st.none(), st.integers(min_value=-5, max_value=10**15)))
warc_files = st.lists(st.one_of(warc_records, st.binary(max_size=80)), max_size=6).map(b"".join)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)
json_records = st.fixed_dictionaries({}, optional={"id": json_values, "text": json_values, "url": json_values,
                                                   "metadata": json_values, "date": json_values})
json_lines = st.lists(st.one_of(json_records.map(lambda r: json.dumps(r).encode()), st.binary(max_size=60),
                                st.sampled_from([b"[" * 5000, b"x" * 5000, b'{"text": "' + b"a" * 3000 + b'"}'])),
                      max_size=8).map(b"\n".join)
json_arrays = st.lists(json_records, max_size=6).map(lambda records: json.dumps(records).encode())

contents = st.one_of(st.binary(max_size=600), st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
                     warc_files, json_lines, json_arrays)


def _compress(name: str, data: bytes, compress: bool) -> bytes:
    if compress and name.endswith(".gz"):
        return gzip.compress(data, mtime=0)
    if compress and name.endswith(".zst"):
        return zstandard.ZstdCompressor().compress(data)
    return data


def check_read(name: str, data: bytes) -> list[tuple[str, dict]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        items = list(read_source(str(path), CONFIG))
    ids = []
    for tag, record in items:
        assert tag in (KEPT, REJECTED)
        assert isinstance(record["id"], str) and record["id"] and record["source"] == str(path)
        if tag == KEPT:
            assert ("text" in record) != ("html" in record)
            assert isinstance(record.get("text", record.get("html")), str)
        else:
            assert record["stage"] == "read" and isinstance(record["reason"], str) and record["reason"]
        json.dumps(record, ensure_ascii=False).encode("utf-8")       # what the writer does with it
        ids.append(record["id"])
    # Records' own ids (JSON, parquet) are kept as given, repeats too: the pipeline's UniqueIds stage
    # counts those. Ids the reader makes (derived ones, and WARC-Record-IDs, which it makes unique) never repeat.
    repeated = [i for i, count in collections.Counter(ids).items() if count > 1]
    assert not [i for i in repeated if i.startswith((source_label(str(path)), "urn:uuid:"))], ids
    return items


def _stopped_by_an_exception(items) -> list[dict]:
    """Rejections for a source that ended early on an exception rather than on damaged compression."""
    return [record for _, record in items if re.search(r"records: \w+(Error|Exception)\b", record.get("error", ""))]


@SETTINGS
@given(name=st.sampled_from(NAMES), data=contents, compress=st.booleans())
def test_any_bytes_under_any_name_read_without_raising(name, data, compress):
    check_read(name, _compress(name, data, compress))


@SETTINGS
@given(data=contents, cut=st.integers(min_value=0, max_value=2000), codec=st.sampled_from(["x.warc.gz", "x.jsonl.zst"]))
def test_truncated_compressed_streams_read_without_raising(data, cut, codec):
    check_read(codec, _compress(codec, data, True)[:cut])


@SETTINGS
@given(name=st.sampled_from(["x.jsonl", "x.jsonl.zst", "x.ndjson.gz"]), data=json_lines)
def test_each_json_line_is_one_document_or_one_rejection(name, data):
    items = check_read(name, _compress(name, data, True))
    assert len(items) == sum(1 for line in data.split(b"\n") if line.strip())
    assert not _stopped_by_an_exception(items)


@SETTINGS
@given(name=st.sampled_from(["x.warc", "x.warc.gz"]), data=warc_files)
def test_no_warc_stops_early_on_an_exception(name, data):
    assert not _stopped_by_an_exception(check_read(name, _compress(name, data, True)))


optional_text = st.one_of(st.none(), st.text(max_size=50), st.just("a" * 3000))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["", "a", "b"])), optional_text), max_size=8))
def test_parquet_of_any_rows_reads_without_raising(rows):
    table = pa.table({"id": [row[0] for row in rows], "text": [row[1] for row in rows]},
                     schema=pa.schema([("id", pa.string()), ("text", pa.string())]))
    out = io.BytesIO()
    pq.write_table(table, out)
    check_read("x.parquet", out.getvalue())
