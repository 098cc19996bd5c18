"""Faults a reader must survive without losing or merging documents: files of one name in different
folders, malformed lines and records, absurd lengths, and inputs that inflate far beyond their size."""
from __future__ import annotations

import collections
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.sources import ReadConfig, read_source
from pipeline.stages.routing import KEPT, REJECTED

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
CONFIG = ReadConfig()


def read_all(source, config=CONFIG):
    docs, rejected = [], []
    for tag, record in read_source(str(source), config):
        assert tag in (KEPT, REJECTED)
        (docs if tag == KEPT else rejected).append(record)
    return docs, rejected


def reasons(rejected):
    return collections.Counter(record["reason"] for record in rejected)


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
    code = ("import json, sys; from pipeline.sources import ReadConfig, read_source; "
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
