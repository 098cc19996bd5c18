"""Readers on real files: WARC/WET (well-formed and malformed), HTML in several charsets, JSONL,
parquet, `datasets` directories, plain text; and the resolution of input specs."""
from __future__ import annotations

import bz2
import collections
import datetime
import gzip
import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from pipeline.config import ReadConfig
from pipeline.sources import SourceError, expand_sources, read_source, warc
from pipeline.sources.charset import UndecodableError, decode_bytes
from pipeline.sources.formats import (HTML, JSONL, PARQUET, TXT, WARC, format_from_content, format_from_name,
                                      source_label)
from pipeline.stages.routing import KEPT
from tests.read_helpers import CONFIG, read_all, reasons

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
FIXTURES = ROOT / "tests" / "data" / "sources"
DOLMA_CC = SAMPLE / "jsonl" / "dolma-CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


# --- every real archive reads without raising --------------------------------------------------

ARCHIVES = sorted([*FIXTURES.glob("*.warc*"), FIXTURES / "bad.arc", *(SAMPLE / "web").iterdir()])


@pytest.mark.parametrize("path", ARCHIVES, ids=lambda p: p.name)
def test_every_archive_gives_documents_or_counted_rejections(path):
    docs, rejected = read_all(path)
    assert docs or rejected
    for doc in docs:
        assert doc["source"] == str(path)
        assert doc["id"] and ("html" in doc) != ("text" in doc)
        assert "WARC/1." not in (doc.get("html") or doc.get("text"))[:200]
    for record in rejected:
        assert record["stage"] == "read" and record["reason"] and record["source"] == str(path)
    ids = [doc["id"] for doc in docs] + [record["id"] for record in rejected]
    assert len(ids) == len(set(ids))
    assert read_all(path) == (docs, rejected)           # same input, same records


def test_common_crawl_warc():
    docs, rejected = read_all(SAMPLE / "web" / "cc-main-2020-34-sample.warc.gz")
    assert len(docs) == 16 and not rejected
    assert all(doc["id"].startswith("urn:uuid:") and doc["url"].startswith("http") for doc in docs)
    assert docs[0]["date"] == "2020-08-08T17:27:41Z"
    russian = next(doc for doc in docs if "01spb.ru" in doc["url"])        # HTTP header says windows-1251
    assert "О компании" in russian["html"] and "\ufffd" not in russian["html"]


def test_wget_warc_unwraps_target_uri_and_decodes_chunked_bodies():
    docs, _ = read_all(SAMPLE / "web" / "dolma-sample-0000.warc.gz")
    assert len(docs) == 22
    assert all(not doc["url"].startswith("<") for doc in docs)
    weld = next(doc for doc in docs if doc["url"] == "https://www.cs.washington.edu/people/faculty/weld")
    assert weld["html"].lstrip().startswith("<!DOCTYPE") and weld["html"].rstrip().endswith("</html>")
    docs, _ = read_all(FIXTURES / "example-wget-bad-target-uri.warc.gz")
    assert docs[0]["url"] == "http://example.com/"


def test_chunked_transfer_encoding_is_undone():
    [doc], _ = read_all(FIXTURES / "warcio-example-iana.org-chunked.warc")
    assert doc["html"].startswith("<!doctype html>") and doc["html"].rstrip().endswith("</html>")
    assert "\r\n1f" not in doc["html"].lower()


def test_wet_with_wrong_content_lengths_is_realigned():
    # The cc_net sample counts characters, not bytes, in Content-Length: strict parsers lose records.
    docs, rejected = read_all(SAMPLE / "web" / "cc_net-sample.warc.wet.gz")
    assert not rejected
    assert [doc["url"] for doc in docs] == ["http://sample_english.com", "http://sample_chinese.zh",
                                           "http://sample_russian.ru"]
    english, chinese, russian = (doc["text"] for doc in docs)
    assert english.startswith("Famous Mark Twain Quotes") and english.rstrip().endswith("Truth isn't.")
    assert chinese.startswith("馬克·吐溫名言") and chinese.rstrip().endswith("真理不是。")
    assert russian.startswith("Цитаты знаменитого Марка Твена")
    assert "\ufffd" not in chinese + russian
    # It repeats the first record's WARC-Record-ID, so its id is derived from the source.
    assert docs[1]["id"] == source_label(str(SAMPLE / "web" / "cc_net-sample.warc.wet.gz")) + ":2"


def test_truncated_gzip_warc_counts_the_cut_record_and_the_stream():
    docs, rejected = read_all(FIXTURES / "clipped.warc.gz")
    assert not docs
    assert rejected[0]["id"] == "urn:uuid:f3dfa8fa-f031-4a38-90cc-1dcee3d07bb5"
    assert "cut short" in rejected[0]["error"]
    assert "gzip stream truncated" in rejected[1]["error"]
    assert reasons(rejected) == {"read_error": 2}


def test_corrupt_and_misnamed_gzip_warc():
    docs, rejected = read_all(FIXTURES / "example-bad.warc.gz.bad")
    assert len(docs) == 1 and "Example Domain" in docs[0]["html"]
    assert reasons(rejected) == {"http_status": 1} and rejected[0]["status"] == 302


@pytest.mark.parametrize("name", ["example-bad-non-chunked.warc.gz", "example-wrong-chunks.warc.gz",
                                  "example-trunc.warc"])
def test_oddly_gzipped_or_overlong_records_still_give_the_page(name):
    docs, rejected = read_all(FIXTURES / name)
    assert [doc["url"] for doc in docs] == ["http://example.com/"] and not rejected
    assert "Example Domain" in docs[0]["html"]        # HTTP gzip content encoding undone


def test_arc_file_is_one_counted_read_error():
    docs, rejected = read_all(FIXTURES / "bad.arc")
    assert not docs and reasons(rejected) == {"read_error": 1}
    assert "no WARC record" in rejected[0]["error"]


def test_clueweb_lf_headers_and_invalid_date():
    docs, rejected = read_all(FIXTURES / "clueweb-quirk-head.warc.gz")
    assert len(docs) == 3 and not rejected
    assert all(doc["date"] is None for doc in docs)                 # 2008-10-294T... is not a date
    assert "ブラウニー" in docs[0]["html"]


# Documents and rejection reasons per archive, as the hand-written parser read them before fastwarc
# took over; every archive must give at least these documents.
EXPECTED = {
    "cc-main-2020-34-sample.warc.gz": (16, {}),
    "cc_net-sample.warc.wet.gz": (3, {}),
    "dolma-sample-0000.warc.gz": (22, {}),
    "bad.arc": (0, {"read_error": 1}),
    "clipped.warc.gz": (0, {"read_error": 2}),
    "clueweb-quirk-head.warc.gz": (3, {}),
    "example-bad-non-chunked.warc.gz": (1, {}),
    "example-bad.warc.gz.bad": (1, {"http_status": 1}),
    "example-trunc.warc": (1, {}),
    "example-wget-bad-target-uri.warc.gz": (1, {}),
    "example-wrong-chunks.warc.gz": (1, {}),
    "warcio-example-iana.org-chunked.warc": (1, {}),
}


def test_expected_counts_cover_every_archive():
    assert sorted(EXPECTED) == sorted(path.name for path in ARCHIVES)


@pytest.mark.parametrize("path", ARCHIVES, ids=lambda p: p.name)
def test_archive_gives_its_documents_and_rejections(path):
    docs, rejected = read_all(path)
    assert (len(docs), dict(reasons(rejected))) == EXPECTED[path.name]


@pytest.fixture
def scanned(monkeypatch):
    """Counts the records the fallback scanner reads (the real scanner, observed)."""
    counts = collections.Counter()
    scan = warc._scan_records

    def observed(*args):
        for record in scan(*args):
            counts["records"] += 1
            yield record

    monkeypatch.setattr(warc, "_scan_records", observed)
    return counts


def test_fastwarc_reads_a_well_formed_file(scanned):
    docs, rejected = read_all(SAMPLE / "web" / "cc-main-2020-34-sample.warc.gz")
    assert len(docs) == 16 and not rejected
    assert scanned["records"] == 1          # only the last of 50 records, which fastwarc cannot vouch for


def test_scanner_reads_what_fastwarc_cannot(scanned):
    docs, _ = read_all(SAMPLE / "web" / "cc_net-sample.warc.wet.gz")     # LF-only lines throughout
    assert len(docs) == 3 and scanned["records"] == 4
    scanned.clear()
    docs, _ = read_all(FIXTURES / "example-trunc.warc")   # fastwarc raises after the overlong record
    assert len(docs) == 1 and scanned["records"] == 2     # the overlong response and the request after it


def _common_crawl_records():
    data = gzip.decompress((SAMPLE / "web" / "cc-main-2020-34-sample.warc.gz").read_bytes())
    starts = [0] + [match.start() + 4 for match in re.finditer(rb"\r\n\r\nWARC/1\.0\r\n", data)]
    return [data[start:end] for start, end in zip(starts, starts[1:] + [len(data)])]


def test_lf_only_record_inside_a_crlf_archive_is_not_lost(tmp_path):
    # fastwarc reads an LF-only record as one header value of the next record; it must still be read.
    wet = gzip.decompress((SAMPLE / "web" / "cc_net-sample.warc.wet.gz").read_bytes())
    english = wet[wet.index(b"WARC/1.0\nWARC-Type: conversion"): wet.index(b"WARC/1.0", 1000)]
    records = _common_crawl_records()
    (tmp_path / "mixed.warc").write_bytes(b"".join(records[:20]) + english + b"".join(records[20:]))
    docs, rejected = read_all(tmp_path / "mixed.warc")
    assert not rejected and len(docs) == 17
    assert [doc["id"] for doc in docs if doc["url"] != "http://sample_english.com"] == \
        [doc["id"] for doc in read_all(SAMPLE / "web" / "cc-main-2020-34-sample.warc.gz")[0]]
    assert next(doc for doc in docs if doc["url"] == "http://sample_english.com")["text"].startswith("Famous Mark")


def test_stray_bytes_after_a_record_too_large_to_read_are_counted(tmp_path):
    records = _common_crawl_records()
    too_large = next(i for i, record in enumerate(records) if b"http://01spb.ru/company/" in record[:600]
                     and b"WARC-Type: response" in record[:100])
    before, after = b"".join(records[:too_large + 1]), b"".join(records[too_large + 1:])
    stray = b"this line belongs to no record\r\n"
    (tmp_path / "stray.warc").write_bytes(before + stray + after)
    config = ReadConfig(max_record_bytes=40_000)
    docs, rejected = read_all(tmp_path / "stray.warc", config)
    expected, _ = read_all(SAMPLE / "web" / "cc-main-2020-34-sample.warc.gz", config)
    assert docs == [{**doc, "source": str(tmp_path / "stray.warc")} for doc in expected]
    assert reasons(rejected) == {"record_too_large": 2, "read_error": 1}
    assert rejected[1]["error"] == f"{len(stray)} bytes that are no WARC record at byte {len(before)}"


def test_archive_cut_inside_a_record_too_large_to_read(tmp_path):
    records = _common_crawl_records()
    (tmp_path / "cut.warc").write_bytes(b"".join(records)[:450_000])     # inside a 108 KB response
    docs, rejected = read_all(tmp_path / "cut.warc", ReadConfig(max_record_bytes=40_000))
    assert len(docs) == 11 and reasons(rejected) == {"record_too_large": 2}


def test_gzip_members_larger_than_the_read_chunk(tmp_path):
    # Members that decompress beyond one read once had their successor decompressed twice.
    expected = read_all(SAMPLE / "web" / "dolma-sample-0000.warc.gz")
    assert read_all(SAMPLE / "web" / "dolma-sample-0000.warc.gz", ReadConfig(chunk_bytes=4096)) == expected
    whole = gzip.compress(gzip.decompress((SAMPLE / "web" / "dolma-sample-0000.warc.gz").read_bytes()))
    (tmp_path / "one-member.warc.gz").write_bytes(whole)
    docs, rejected = read_all(tmp_path / "one-member.warc.gz", ReadConfig(chunk_bytes=65536))
    assert [doc["html"] for doc in docs] == [doc["html"] for doc in expected[0]] and not rejected


# --- HTML and text files -----------------------------------------------------------------------

def test_html_with_misleading_meta_charset():
    path = FIXTURES / "zh--archive.org.he.xinhuanet.com.25340717.html"
    [doc], _ = read_all(path)
    assert "话剧《约定无期限》" in doc["html"] and "\ufffd" not in doc["html"]
    assert doc["id"] == f"{source_label(str(path))}:0"
    assert doc["id"].startswith("zh--archive.org.he.xinhuanet.com.25340717.html@")


@pytest.mark.parametrize("path", sorted((SAMPLE / "html").iterdir()), ids=lambda p: p.name)
def test_sample_html_pages_decode(path):
    [doc], rejected = read_all(path)
    assert not rejected and "<" in doc["html"] and doc["html"].count("\ufffd") < 5


def test_windows_1252_page():
    [doc], _ = read_all(SAMPLE / "html" / "en--wordsmith.org.maudlin.html")
    assert "maudlin" in doc["html"] and "\x92" not in doc["html"]


def test_text_file_is_one_document_and_legacy_encodings_are_detected(tmp_path):
    [doc], _ = read_all(SAMPLE / "text" / "udhr" / "en.txt")
    assert doc["id"] == f"{source_label(str(SAMPLE / 'text' / 'udhr' / 'en.txt'))}:0" and doc["text"].startswith((SAMPLE / "text/udhr/en.txt").read_text()[:40])
    russian = (SAMPLE / "text" / "udhr" / "ru.txt").read_text()
    (tmp_path / "ru-cp1251.txt").write_bytes(russian.encode("cp1251", errors="ignore"))
    [doc], _ = read_all(tmp_path / "ru-cp1251.txt")
    assert doc["text"][:200] == russian.encode("cp1251", errors="ignore").decode("cp1251")[:200]


def test_decode_bytes_rules():
    assert decode_bytes("été".encode("utf-8"), ("iso-8859-1",)) == "Ã©tÃ©"           # a declaration that decodes wins
    chinese = (SAMPLE / "text" / "udhr" / "zh.txt").read_text()[:500]
    assert decode_bytes(chinese.encode("gb18030"), ("utf-8",)) == chinese               # one that fails is skipped
    assert decode_bytes(b"\xef\xbb\xbfabc") == "abc"
    text = "a" * 200 + "\udcff"
    assert decode_bytes(text.encode("utf-8", "surrogateescape")) == "a" * 200 + "\ufffd"  # repaired
    with pytest.raises(UndecodableError):
        decode_bytes(bytes(range(128, 256)) * 4, detect=False)


# --- JSONL, parquet, datasets --------------------------------------------------------------------

def test_dolma_jsonl():
    docs, rejected = read_all(DOLMA_CC)
    assert len(docs) == 697 and not rejected
    assert docs[0]["id"] == "blj5uzvcoa4iybpd5o6kom5nir6ngmoj"
    assert docs[0]["url"] == "http://16thfleet.wikidot.com/chatter:anewhome"   # metadata.warc_url (metadata.url lacks the scheme)
    assert docs[0]["text"].startswith("A New Home?")


def test_zstd_jsonl_and_json_array_read_like_gzip(tmp_path):
    lines = gzip.decompress(DOLMA_CC.read_bytes()).splitlines()[:20]
    (tmp_path / "part.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(lines)))
    (tmp_path / "part.json").write_text(json.dumps([json.loads(line) for line in lines]))
    expected = [(doc["id"], doc["text"]) for doc in read_all(DOLMA_CC)[0][:20]]
    for name in ("part.jsonl.zst", "part.json"):
        docs, rejected = read_all(tmp_path / name)
        assert [(doc["id"], doc["text"]) for doc in docs] == expected and not rejected


def test_bad_jsonl_lines_are_counted_and_reading_goes_on(tmp_path):
    good = json.loads(gzip.decompress(DOLMA_CC.read_bytes()).splitlines()[0])
    lines = [
        json.dumps(good).encode(),
        b'{"id": "broken", "text": ',                                   # invalid JSON
        json.dumps({"id": "no-text", "body": "x"}).encode(),              # no text field
        b"[1, 2]",                                                       # not an object
        json.dumps({"text": "caf\u00e9 " * 50}, ensure_ascii=False).encode("utf-8").replace(b"\xc3\xa9", b"\xe9"),  # latin-1 bytes
        json.dumps({"text": "ok " * 100 + "X"}).encode().replace(b"X", b"\xff"),           # one bad byte
        b"",
        json.dumps({"id": 7, "text": "numeric id"}).encode(),
    ]
    (tmp_path / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    docs, rejected = read_all(tmp_path / "mixed.jsonl")
    label = source_label(str(tmp_path / "mixed.jsonl"))
    assert [doc["id"] for doc in docs] == [good["id"], f"{label}:5", "7"]
    assert docs[1]["text"].endswith("\ufffd")
    assert [record["id"] for record in rejected] == [f"{label}:1", "no-text", f"{label}:3", f"{label}:4"]
    assert reasons(rejected) == {"read_error": 4}


def test_truncated_gzip_jsonl_keeps_what_it_can(tmp_path):
    data = DOLMA_CC.read_bytes()
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    docs, rejected = read_all(tmp_path / "cut.jsonl.gz")
    assert 200 < len(docs) < 697
    assert rejected[-1]["reason"] == "read_error" and "truncated" in rejected[-1]["error"]


def _udhr_texts():
    return {path.stem: path.read_text() for path in sorted((SAMPLE / "text" / "udhr").iterdir())}


def test_parquet(tmp_path):
    texts = _udhr_texts()
    table = pa.table({"id": [f"udhr-{k}" for k in texts], "text": list(texts.values()),
                      "date": pa.array([datetime.datetime(1948, 12, 10)] * len(texts), pa.timestamp("s")),
                      "extra": [b"\x00" * 10] * len(texts)})
    pq.write_table(table, tmp_path / "udhr.parquet", row_group_size=5)
    docs, rejected = read_all(tmp_path / "udhr.parquet")
    assert [doc["id"] for doc in docs] == [f"udhr-{k}" for k in texts] and not rejected
    assert [doc["text"] for doc in docs] == list(texts.values()) and "extra" not in docs[0]
    assert docs[0]["date"] == "1948-12-10T00:00:00"

    pq.write_table(pa.table({"content": list(texts.values())}), tmp_path / "no-id.parquet")
    docs, _ = read_all(tmp_path / "no-id.parquet", ReadConfig(text_field="content"))
    assert docs[3]["id"] == f"{source_label(str(tmp_path / 'no-id.parquet'))}:3"

    (tmp_path / "cut.parquet").write_bytes((tmp_path / "udhr.parquet").read_bytes()[:-100])
    docs, rejected = read_all(tmp_path / "cut.parquet")
    assert not docs and reasons(rejected) == {"read_error": 1}


def test_datasets_save_to_disk(tmp_path):
    import datasets

    texts = _udhr_texts()
    dataset = datasets.Dataset.from_dict({"id": list(texts), "text": list(texts.values())})
    dataset.save_to_disk(str(tmp_path / "udhr"))
    datasets.DatasetDict({"train": dataset.select(range(8)), "test": dataset.select(range(8, 12))}).save_to_disk(
        str(tmp_path / "splits"))
    (tmp_path / "notes.md").write_text("not a source")

    assert expand_sources([str(tmp_path)], CONFIG) == [str(tmp_path / "splits"), str(tmp_path / "udhr")]
    docs, rejected = read_all(tmp_path / "udhr")
    assert [doc["id"] for doc in docs] == list(texts) and not rejected
    assert docs[0]["text"] == texts[docs[0]["id"]]
    docs, _ = read_all(tmp_path / "splits")
    assert len(docs) == 12 and docs[0]["source"] == str(tmp_path / "splits")


# --- format detection and spec expansion ---------------------------------------------------------

def test_formats_from_names_and_content():
    assert format_from_name("x/CC-MAIN-1.warc.wet.gz") == WARC
    assert format_from_name("https://h/p/part-0.jsonl.zst?sig=1") == JSONL
    assert format_from_name("a.parquet") == PARQUET and format_from_name("a.HTM") == HTML
    assert format_from_name("notes") is None and format_from_name("example-bad.warc.gz.bad") is None
    assert format_from_content(b"WARC/1.0\r\n") == WARC and format_from_content(b'  {"id"') == JSONL
    assert format_from_content(b"PAR1") == PARQUET and format_from_content(b"\n<!doctype") == HTML
    assert format_from_content(b"Hello") == TXT


def test_expand_directory_glob_file_and_url(tmp_path):
    web = sorted(str(p) for p in (SAMPLE / "web").iterdir())
    assert expand_sources([str(SAMPLE / "web")], CONFIG) == web
    everything = expand_sources([str(SAMPLE)], CONFIG)
    assert str(SAMPLE / "README.md") not in everything and str(SAMPLE / "text" / "udhr" / "en.txt") in everything
    assert expand_sources([str(SAMPLE / "web" / "*.warc.gz"), web[0]], CONFIG) == [web[0], web[2]]
    assert expand_sources(["https://example.org/a.warc.gz"], CONFIG) == ["https://example.org/a.warc.gz"]


def test_expand_list_files(tmp_path):
    shutil.copy(SAMPLE / "html" / "en--blog.python.org.html", tmp_path / "page.html")
    (tmp_path / "list.txt").write_text(f"# sources\npage.html\n\n{SAMPLE / 'web'}\n")
    expected = sorted([str(tmp_path / "page.html"), *(str(p) for p in (SAMPLE / "web").iterdir())])
    assert expand_sources([f"@{tmp_path / 'list.txt'}"], CONFIG) == expected

    paths = b"crawl-data/CC-MAIN-2024-10/segments/1/warc/a.warc.gz\ncrawl-data/CC-MAIN-2024-10/segments/1/warc/b.warc.gz\n"
    (tmp_path / "warc.paths.gz").write_bytes(gzip.compress(paths))
    config = ReadConfig(base_url="https://data.commoncrawl.org/")
    assert expand_sources([f"@{tmp_path / 'warc.paths.gz'}"], config) == [
        "https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-10/segments/1/warc/a.warc.gz",
        "https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-10/segments/1/warc/b.warc.gz"]


@pytest.mark.parametrize("spec, message", [
    ("{missing}", "input not found"),
    ("{missing}/*.warc.gz", "no readable files match"),
    ("@{missing}.txt", "cannot read list file"),
    ("@{empty}", "names no sources"),
    ("{unknown_only}", "holds no file of a known format"),
    ("", "empty input source"),
])
def test_expand_errors_are_one_line(tmp_path, spec, message):
    (tmp_path / "empty.txt").write_text("# nothing\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("x")
    spec = spec.format(missing=tmp_path / "nope", empty=tmp_path / "empty.txt", unknown_only=tmp_path / "docs")
    with pytest.raises(SourceError, match=message) as error:
        expand_sources([spec], CONFIG)
    assert "\n" not in str(error.value)


def test_unsupported_binary_file_is_one_counted_read_error(tmp_path):
    (tmp_path / "udhr.xml.bz2").write_bytes(bz2.compress((SAMPLE / "text" / "udhr" / "en.txt").read_bytes()))
    docs, rejected = read_all(tmp_path / "udhr.xml.bz2")
    assert not docs and reasons(rejected) == {"read_error": 1}
    assert "unsupported binary format" in rejected[0]["error"]
    assert rejected[0]["id"] == f"{source_label(str(tmp_path / 'udhr.xml.bz2'))}:read_error"


def test_oversized_file_is_rejected_unread():
    docs, rejected = read_all(SAMPLE / "html" / "en--blog.python.org.html", ReadConfig(max_record_bytes=1000))
    assert not docs and reasons(rejected) == {"record_too_large": 1}
    docs, rejected = read_all(SAMPLE / "web" / "cc-main-2020-34-sample.warc.gz", ReadConfig(max_record_bytes=40_000))
    assert len(docs) + len(rejected) == 16 and reasons(rejected)["record_too_large"] == len(rejected) > 0


def test_lone_surrogates_in_json_are_replaced_so_every_field_encodes(tmp_path):
    path = tmp_path / "surrogates.jsonl"
    path.write_text('{"id": "x\\udc80", "url": "http://a/\\ud800", "text": "Hello \\ud800 world \\ud83d\\ude00"}\n')
    [(tag, doc)] = list(read_source(str(path), ReadConfig()))
    assert tag == KEPT
    assert doc["text"] == "Hello \ufffd world \U0001F600" and doc["id"] == "x\ufffd" and doc["url"] == "http://a/\ufffd"
    json.dumps(doc, ensure_ascii=False).encode("utf-8")
