import dataclasses
import json
from html.parser import HTMLParser

import pytest

from pipeline import stats as tally
from pipeline.config import CleanConfig
from pipeline.report import OutputSample, render_report


def _tallies():
    return [
        (tally.STAGE_KEPT, "read", (10, 1000)), (tally.STAGE_DROPPED, "read", (2, 0)),
        (tally.STAGE_KEPT, "lang", (7, 700)), (tally.STAGE_DROPPED, "lang", (3, 300)),
        (tally.STAGE_KEPT, "dedup", (6, 600)), (tally.STAGE_DROPPED, "dedup", (1, 100)),
        (tally.REASON, "read_error", 1), (tally.REASON, "download_failed", 1),
        (tally.REASON, "lang_not_wanted", 3), (tally.REASON, "near_duplicate", 1),
        (tally.KEPT_LANG, "en", 6), (tally.DROPPED_LANG, "zh", 3),
        (tally.FAILED_URL, "http://127.0.0.1:1/x.warc.gz", "HTTP 500"),
        (tally.SOURCE_KEPT, "a.warc.gz", 6),
        (tally.SOURCE_REASON, ("a.warc.gz", "lang_not_wanted"), 3),
        (tally.SOURCE_REASON, ("a.warc.gz", "read_error"), 1),
        (tally.SOURCE_REASON, ("b.jsonl", "near_duplicate"), 1),
        (tally.SOURCE_REASON, ("http://127.0.0.1:1/x.warc.gz", "download_failed"), 1),
    ]


def test_assemble_stats_obeys_invariant_and_funnel():
    stats = tally.assemble_stats(_tallies(), ["lang", "dedup"])
    assert stats["input_docs"] == 12 and stats["kept_docs"] == 6
    assert stats["input_docs"] == stats["kept_docs"] + sum(stats["rejected"].values())
    tally.check_invariant(stats)
    assert [row["stage"] for row in stats["funnel"]] == ["read", "lang", "dedup"]
    assert stats["funnel"][1] == {"stage": "lang", "docs_in": 10, "docs_out": 7, "docs_dropped": 3,
                                  "bytes_in": 1000, "bytes_out": 700, "bytes_dropped": 300}
    assert stats["failed_downloads"] == [{"url": "http://127.0.0.1:1/x.warc.gz", "error": "HTTP 500"}]
    json.dumps(stats)


def test_per_source_counts_add_up_to_the_run():
    stats = tally.assemble_stats(_tallies(), ["lang", "dedup"])
    assert stats["sources"]["a.warc.gz"] == {"input_docs": 10, "kept_docs": 6,
                                             "rejected": {"lang_not_wanted": 3, "read_error": 1}}
    assert stats["sources"]["b.jsonl"] == {"input_docs": 1, "kept_docs": 0, "rejected": {"near_duplicate": 1}}
    assert sum(s["input_docs"] for s in stats["sources"].values()) == stats["input_docs"]
    assert sum(s["kept_docs"] for s in stats["sources"].values()) == stats["kept_docs"]


def test_invariant_violation_is_caught():
    broken = _tallies() + [(tally.REASON, "quality_low", 1)]
    with pytest.raises(AssertionError, match="accounting"):
        tally.check_invariant(tally.assemble_stats(broken, ["lang", "dedup"]))


def test_report_is_self_contained_html_with_escaped_examples():
    stats = tally.assemble_stats(_tallies(), ["lang", "dedup"])
    examples = {"near_duplicate": [{"id": "a", "url": "http://x", "duplicate_of": "b", "text": "<script>alert(1)</script>"}]}
    page = render_report(stats, OutputSample(rejected_examples=examples))
    HTMLParser().feed(page)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http://" not in page.replace("http://x", "").replace("http://127.0.0.1:1/x.warc.gz", "")
    for needle in ("Funnel", "lang_not_wanted", "zh", "duplicate of b", "127.0.0.1"):
        assert needle in page


def test_run_description_records_what_changes_the_output_and_nothing_else():
    argv = ["/repo/pipeline/__main__.py", "clean", "--input", "a b.warc", "c.jsonl", "--output", "/data/out/",
            "--langs", "all", "--runner", "DirectRunner", "--direct_num_workers=2", "--set", "dedup.threshold=0.7",
            "--workers", "2", "--set", "work.spill=false"]
    run = tally.describe_run(["a b.warc", "c.jsonl"], CleanConfig(), "/data/out", argv)
    # runners, worker counts, spilling and output folders give byte-identical outputs: none is in the record
    assert run["command"] == "python -m pipeline clean --input 'a b.warc' c.jsonl --output OUT --langs all " \
                             "--set dedup.threshold=0.7"
    expected_config = {k: v for k, v in dataclasses.asdict(CleanConfig()).items() if k != "work"}
    assert run["config"] == expected_config and run["inputs"] == ["a b.warc", "c.jsonl"]
    assert set(run["versions"]) == {"python", "apache-beam", "webcorpus-gpt", "fasttext language model"}
    assert run["versions"]["fasttext language model"].startswith("lid.176.ftz sha256:")
    json.dumps(run)
