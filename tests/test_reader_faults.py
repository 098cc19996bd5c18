"""Faults a reader must survive without losing or merging documents: files of one name in different
folders, malformed lines and records, absurd lengths, and inputs that inflate far beyond their size."""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import zstandard

from pipeline.config import ReadConfig
from pipeline.sources import read_source
from pipeline.stages.routing import REJECTED
from tests.read_helpers import CONFIG, read_all, reasons

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"




def all_ids(source, config=CONFIG):
    docs, rejected = read_all(source, config)
    return [record["id"] for record in docs + rejected]


# --- derived ids name the whole source, not just its file name ------------------------------------

def _same_name_in_two_folders(tmp_path, name, data: bytes) -> list[Path]:
    paths = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / name).write_bytes(data)
        paths.append(tmp_path / folder / name)
    return paths


def test_files_of_one_name_in_different_folders_get_different_ids(tmp_path):
    jsonl = b'{"text": "first"}\n{"text": "second"}\n'
    html = (SAMPLE / "html" / "en--blog.python.org.html").read_bytes()
    # The cc_net sample repeats a WARC-Record-ID, so its second record's id is derived from the source.
    wet = (SAMPLE / "web" / "cc_net-sample.warc.wet.gz").read_bytes()
    for name, data in (("part-0000.jsonl", jsonl), ("index.html", html), ("sample.warc.wet.gz", wet)):
        first, second = _same_name_in_two_folders(tmp_path, name, data)
        derived_first = [i for i in all_ids(first) if not i.startswith("urn:")]
        derived_second = [i for i in all_ids(second) if not i.startswith("urn:")]
        assert derived_first and len(derived_first) == len(derived_second)
        assert not set(derived_first) & set(derived_second), name
        assert all(i.startswith(name) for i in derived_first)          # still readable: the file name leads


def test_unreadable_files_of_one_name_get_different_ids(tmp_path):
    first, second = _same_name_in_two_folders(tmp_path, "data.bz2", b"BZh91AY&SY binary")   # unsupported
    [one], [other] = all_ids(first), all_ids(second)
    assert one != other and one.startswith("data.bz2")


def test_derived_ids_are_the_same_in_a_fresh_interpreter(tmp_path):
    path = tmp_path / "part-0000.jsonl"
    path.write_bytes(b'{"text": "first"}\n{"text": "second"}\n')
    here = all_ids(path)
    code = ("import json, sys; from pipeline.config import ReadConfig; from pipeline.sources import read_source; "
            "print(json.dumps([r['id'] for _, r in read_source(sys.argv[1], ReadConfig())]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    there = subprocess.run([sys.executable, "-c", code, str(path)], env=env, check=True, capture_output=True,
                           text=True).stdout
    assert json.loads(there) == here and len(set(here)) == 2


# --- one bad JSON line costs one counted rejection, never the rest of the file ---------------------

GOOD_LINES = [json.dumps({"text": f"document {i}"}).encode() for i in range(3)]


def _lines_file(path: Path, first: bytes) -> Path:
    path.write_bytes(b"\n".join([first, *GOOD_LINES]) + b"\n")
    return path


def test_jsonl_whose_first_line_is_an_array_reads_every_later_line(tmp_path):
    for name in ("arrays.jsonl", "arrays.ndjson", "arrays-no-extension"):
        docs, rejected = read_all(_lines_file(tmp_path / name, b'[{"text": "in an array"}]'))
        assert [doc["text"] for doc in docs] == ["document 0", "document 1", "document 2"], name
        assert reasons(rejected) == {"read_error": 1} and rejected[0]["id"].endswith(":0")


def test_deeply_nested_line_is_one_read_error(tmp_path):
    for name, first in (("deep-array.jsonl", b"[" * 100_000 + b"]" * 100_000),
                        ("deep-object.jsonl", b'{"text": "x", "n": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001),
                        ("huge-number.jsonl", b'{"text": "x", "n": ' + b"9" * 5000 + b"}")):
        docs, rejected = read_all(_lines_file(tmp_path / name, first))
        assert [doc["text"] for doc in docs] == ["document 0", "document 1", "document 2"], name
        assert reasons(rejected) == {"read_error": 1}, name


def test_json_file_is_one_array_or_json_lines(tmp_path):
    records = [{"text": f"document {i}"} for i in range(3)]
    (tmp_path / "array.json").write_text(json.dumps(records, indent=2))
    (tmp_path / "lines.json").write_text("\n".join(json.dumps(r) for r in records))
    for name in ("array.json", "lines.json"):
        docs, rejected = read_all(tmp_path / name)
        assert [doc["text"] for doc in docs] == ["document 0", "document 1", "document 2"] and not rejected, name
    (tmp_path / "deep.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    docs, rejected = read_all(tmp_path / "deep.json")
    assert not docs and reasons(rejected) == {"read_error": 1}


# --- a WARC record with a false Content-Length costs that record only ------------------------------

CC_WARC = SAMPLE / "web" / "cc-main-2020-34-sample.warc.gz"


def _common_crawl_records() -> list[bytes]:
    data = gzip.decompress(CC_WARC.read_bytes())
    starts = [0] + [match.start() + 4 for match in re.finditer(rb"\r\n\r\nWARC/1\.0\r\n", data)]
    return [data[start:end] for start, end in zip(starts, starts[1:] + [len(data)])]


def _with_content_length(record: bytes, length: int) -> bytes:
    return re.sub(rb"\r\nContent-Length: \d+\r\n", b"\r\nContent-Length: %d\r\n" % length, record, count=1)


@pytest.mark.parametrize("length, config", [
    (10**12, CONFIG),                                   # far beyond max_record_bytes and the file
    (30 * 1024**2, CONFIG),                             # within max_record_bytes, beyond the file
    (10**12, ReadConfig(max_record_bytes=40_000)),
    (200_000, ReadConfig(max_record_bytes=40_000)),     # beyond max_record_bytes, within the file
    (200_000, CONFIG),                                  # swallows the next records
], ids=["huge", "beyond-file", "huge-small-cap", "too-large-within-file", "overlong"])
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_absurd_content_length_loses_only_its_record(tmp_path, length, config, compress):
    records = _common_crawl_records()
    expected, _ = read_all(CC_WARC, config)
    bad = next(i for i, record in enumerate(records) if b"WARC-Type: response" in record[:100] and i > 10)
    bad_id = re.search(rb"WARC-Record-ID: <(.*?)>", records[bad]).group(1).decode()
    records[bad] = _with_content_length(records[bad], length)
    path = tmp_path / ("bad-length.warc.gz" if compress else "bad-length.warc")
    path.write_bytes(b"".join(gzip.compress(record) for record in records) if compress else b"".join(records))
    docs, rejected = read_all(path, config)
    assert [doc["id"] for doc in docs if doc["id"] != bad_id] == [doc["id"] for doc in expected if doc["id"] != bad_id]
    # The bad record is re-cut at the next record's start where it can be held, else counted.
    assert [record["id"] for record in docs + rejected].count(bad_id) == 1
    assert set(reasons(rejected)) <= {"read_error", "record_too_large"}


# --- inputs that inflate far beyond their size are bounded per line and per record -----------------

SMALL_CAP = ReadConfig(max_record_bytes=64 * 1024, chunk_bytes=16 * 1024)


def _compressed(path: Path, pieces) -> Path:
    """`pieces` (an iterable of bytes) written gzip- or zstd-compressed, by the name's suffix, as a stream."""
    with open(path, "wb") as raw:
        if path.suffix == ".zst":
            with zstandard.ZstdCompressor().stream_writer(raw) as out:
                for piece in pieces:
                    out.write(piece)
        else:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as out:
                for piece in pieces:
                    out.write(piece)
    return path


def _repeated(byte: bytes, size: int):
    chunk = byte * (1 << 20)
    for _ in range(size >> 20):
        yield chunk
    yield byte * (size & ((1 << 20) - 1))


def _long_line_pieces(size: int):
    yield GOOD_LINES[0] + b'\n{"text": "'
    yield from _repeated(b"a", size)
    yield b'"}\n' + GOOD_LINES[1] + b"\n"


@pytest.mark.parametrize("name", ["bomb.jsonl.zst", "bomb.jsonl.gz", "bomb.jsonl"])
def test_jsonl_line_beyond_the_cap_is_counted_and_reading_goes_on(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".jsonl"):
        path.write_bytes(b"".join(_long_line_pieces(200_000)))
    else:
        _compressed(path, _long_line_pieces(200_000))
    docs, rejected = read_all(path, SMALL_CAP)
    assert [doc["text"] for doc in docs] == ["document 0", "document 1"]
    assert reasons(rejected) == {"record_too_large": 1} and rejected[0]["id"].endswith(":1")


def test_json_array_beyond_the_cap_is_counted(tmp_path):
    path = _compressed(tmp_path / "array.json.gz", [b'[{"text": "', b"a" * 200_000, b'"}]'])
    docs, rejected = read_all(path, SMALL_CAP)
    assert not docs and reasons(rejected) == {"record_too_large": 1}


def _warc_record(block: bytes, warc_type: bytes = b"conversion", extra_headers: bytes = b"") -> bytes:
    record_id = b"<urn:test:%d>" % zlib.crc32(block + extra_headers)
    return (b"WARC/1.0\r\nWARC-Type: " + warc_type + b"\r\nWARC-Record-ID: " + record_id + b"\r\n" + extra_headers
            + b"Content-Length: %d\r\n\r\n" % len(block) + block + b"\r\n\r\n")


BEFORE, AFTER = _warc_record(b"the record before"), _warc_record(b"the record after")


def _gzip_bomb_response(size: int) -> bytes:
    body = b"".join(_compressed_pieces(_repeated(b"a", size)))
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\r\n" + body
    return _warc_record(http, b"response", b"Content-Type: application/http; msgtype=response\r\n")


def _compressed_pieces(pieces):
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for piece in pieces:
        yield compressor.compress(piece)
    yield compressor.flush()


def _warc_bomb_pieces(kind: str, size: int):
    yield BEFORE
    if kind == "garbage":                # a stretch that is no record, with no line end for `size` bytes
        yield from _repeated(b"x", size)
        yield b"\r\n"
    elif kind == "header":               # a record whose header never ends
        yield b"WARC/1.0\r\nWARC-Type: conversion\r\nX-Padding: "
        yield from _repeated(b"x", size)
        yield b"\r\n\r\n"
    elif kind == "content-encoding":     # a small record whose gzip payload inflates to `size` bytes
        yield _gzip_bomb_response(size)
    yield AFTER


@pytest.mark.parametrize("kind", ["garbage", "header", "content-encoding"])
def test_warc_stretch_beyond_the_cap_is_counted_and_reading_goes_on(tmp_path, kind):
    path = _compressed(tmp_path / f"{kind}.warc.gz", _warc_bomb_pieces(kind, 200_000))
    docs, rejected = read_all(path, SMALL_CAP)
    assert [doc["text"] for doc in docs] == ["the record before", "the record after"]
    assert len(rejected) == 1 and rejected[0]["reason"] in ("read_error", "record_too_large")
    if kind == "content-encoding":
        assert rejected[0]["reason"] == "record_too_large"


PEAK_RSS = """
import resource, sys
from pipeline.config import ReadConfig
from pipeline.sources import read_source
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
reasons = [record.get("reason", "kept") for _, record in read_source(sys.argv[1], ReadConfig())]
print(reasons, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""
BOMB_BYTES = 160 * 1024**2          # far above the default max_record_bytes (32 MiB)


@pytest.mark.parametrize("name, pieces", [
    ("line.jsonl.zst", lambda: _long_line_pieces(BOMB_BYTES)),
    ("garbage.warc.gz", lambda: _warc_bomb_pieces("garbage", BOMB_BYTES)),
    ("content-encoding.warc.gz", lambda: _warc_bomb_pieces("content-encoding", BOMB_BYTES)),
], ids=lambda value: value if isinstance(value, str) else "")
def test_reading_a_bomb_at_the_default_cap_holds_far_less_than_it_inflates_to(tmp_path, name, pieces):
    path = _compressed(tmp_path / name, pieces())
    assert path.stat().st_size < 2 * 1024**2
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path)], env=env, check=True, capture_output=True,
                         text=True).stdout.split("\n")[-2]
    reasons_read, growth = out.rsplit(" ", 1)
    assert reasons_read.count("'kept'") == 2 and ("record_too_large" in reasons_read or "read_error" in reasons_read)
    assert int(growth) < 80 * 1024**2, f"peak memory grew by {int(growth) >> 20} MiB"


def test_parquet_and_dataset_rows_beyond_the_cap_are_counted(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = ["short one", "a" * 200_000, "short two"]
    pq.write_table(pa.table({"id": ["p0", "p1", "p2"], "text": texts}), tmp_path / "rows.parquet",
                   compression="zstd")
    datasets.Dataset.from_dict({"id": ["d0", "d1", "d2"], "text": texts}).save_to_disk(str(tmp_path / "rows"))
    for source, prefix in ((tmp_path / "rows.parquet", "p"), (tmp_path / "rows", "d")):
        docs, rejected = read_all(source, SMALL_CAP)
        assert [doc["text"] for doc in docs] == ["short one", "short two"]
        assert [(r["id"], r["reason"]) for r in rejected] == [(f"{prefix}1", "record_too_large")]


# --- whatever cannot be read is counted, and costs no more than itself -----------------------------

def test_a_url_that_cannot_even_be_parsed_is_one_counted_rejection():
    [(tag, record)] = list(read_source("http://[not-a-host/x.jsonl", ReadConfig(download_attempts=1)))
    assert tag == REJECTED and record["reason"] in ("download_failed", "read_error")
    assert record["source"] == "http://[not-a-host/x.jsonl" and record["id"]


def test_a_response_with_a_strange_status_line_costs_that_record_only(tmp_path):
    http_type = b"Content-Type: application/http; msgtype=response\r\n"
    odd = _warc_record(b"HTTP/1.1 2\xb2\xb2 OK\r\nContent-Type: text/html\r\n\r\n<p>odd</p>", b"response", http_type)
    (tmp_path / "odd-status.warc").write_bytes(BEFORE + odd + AFTER)
    docs, rejected = read_all(tmp_path / "odd-status.warc")
    assert [doc["text"] for doc in docs] == ["the record before", "the record after"]
    assert reasons(rejected) == {"read_error": 1} and rejected[0]["id"].startswith("urn:test:")


def test_decompressed_lines_stream_a_shard_and_stop_loudly_at_a_truncation(tmp_path):
    from common.compressed import ReadError, decompressed_lines
    lines = [json.dumps({"id": i, "text": "wörds " * (i % 50)}).encode() + b"\n" for i in range(5000)]
    whole = gzip.compress(b"".join(lines))
    (tmp_path / "part.jsonl.gz").write_bytes(whole)
    (tmp_path / "part.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b"".join(lines)))
    (tmp_path / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    assert list(decompressed_lines(str(tmp_path / "part.jsonl.gz"), chunk_bytes=4096)) == lines
    assert list(decompressed_lines(str(tmp_path / "part.jsonl.zst"), chunk_bytes=4096)) == lines
    read = []
    with pytest.raises(ReadError, match="truncated"):
        for line in decompressed_lines(str(tmp_path / "cut.jsonl.gz"), chunk_bytes=4096):
            read.append(line)
    # what was decompressed before the cut comes first, the cut line as far as it goes
    assert 0 < len(read) < len(lines) and read[:-1] == lines[:len(read) - 1]
    assert lines[len(read) - 1].startswith(read[-1])
