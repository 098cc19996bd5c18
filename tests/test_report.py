"""What report.html tells a user: the decision behind each drop, kept examples, the run, per-source
counts and signal histograms; `python -m pipeline report`; and the page as a browser renders it."""
import gzip
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from unittest import mock

import pytest
from PIL import Image

import pipeline
from pipeline.__main__ import main
from pipeline.config import C4Config, QualityConfig
from pipeline.text.lang import judge_language
from pipeline.text.quality import Measurements, c4, judge_quality
from pipeline.text.verdict import describe


SAMPLE = Path(__file__).resolve().parents[1] / "data/sample"


def test_a_quality_drop_names_the_signal_its_value_and_the_threshold():
    verdict = judge_quality("Too short a page to keep.", "en", QualityConfig())
    assert verdict.reason == "gopher_min_words"
    assert verdict.rejection_fields()["decision"] == {"signal": "word_count", "value": 6, "op": "<", "threshold": 50}
    assert describe(verdict.decision.as_dict()) == "word_count 6 < 50"
    assert "decision" not in verdict.signals  # kept documents never carry it


def test_property_rules_say_what_they_found():
    verdict = c4(Measurements("Lorem ipsum dolor sit amet, consectetur adipiscing elit."), C4Config())
    assert verdict.reason == "c4_lorem_ipsum"
    assert describe(verdict.decision.as_dict()) == "text contains 'lorem ipsum'"


def test_language_drops_name_the_score_and_the_wanted_languages():
    low = judge_language("en", 0.41, frozenset({"en"}), 0.65)
    assert describe(low.decision.as_dict()) == "lang_score 0.41 <= 0.65"
    other = judge_language("zh", 0.99, frozenset({"en", "de"}), 0.65)
    assert describe(other.decision.as_dict()) == "lang zh not in de,en"
    assert judge_language("en", 0.9, frozenset({"en"}), 0.65).decision is None


# ------------------------------------------------------------------ a real clean run, reported on

HOSTILE_URL = "javascript:alert(document.cookie)"


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """A real `clean` over ten English web pages from the sample, a near copy of one of them, a
    German page, and a short page whose text and URL try to inject a script."""
    root = tmp_path_factory.mktemp("report")
    with gzip.open(SAMPLE / "jsonl/dolma-cc_en_head-0091.jsonl.gz", "rt", encoding="utf-8") as f:
        pages = [json.loads(line) for line in f]
    copy = {"id": "zz-near-copy", "text": pages[5]["text"].replace("support", "help", 1)}
    extra = [
        copy,
        {"id": "hostile", "url": HOSTILE_URL,
         "text": "<script>alert('owned')</script> <img src=x onerror=alert(1)> This page is written in plain English, "
                 "and it says very little."},
        {"id": "german", "text": (SAMPLE / "text/udhr/de.txt").read_text(encoding="utf-8")[:3000]},
    ]
    inputs = root / "extra.jsonl"
    inputs.write_text("".join(json.dumps(doc) + "\n" for doc in extra), encoding="utf-8")
    out = root / "out"
    argv = ["clean", "--input", str(SAMPLE / "jsonl/dolma-cc_en_head-0091.jsonl.gz"), str(inputs),
            "--output", str(out), "--num-shards", "1"]
    # the command line recorded is the process's own, as `python -m pipeline ...` leaves it
    with mock.patch.object(sys, "argv", [str(Path(pipeline.__file__).with_name("__main__.py")), *argv]):
        assert main(argv) == 0
    return out


def test_clean_writes_a_report_that_explains_each_drop(clean_run):
    stats = json.loads((clean_run / "stats.json").read_text())
    page = (clean_run / "report.html").read_text()
    HTMLParser().feed(page)
    assert stats["rejected"]["lang_not_wanted"] == 1 and stats["rejected"]["near_duplicate"] == 1
    assert "lang_not_wanted: lang de not in en" in page
    assert "gopher_min_words: word_count" in page and "&lt; 50" in page
    # the near copy stands beside the page it duplicates, with their similarity
    assert re.search(r"duplicate of the kept document [^<]*, Jaccard 0\.9\d", page)
    # reasons link to their examples
    assert "href='#reason-near_duplicate'" in page and "id='reason-near_duplicate'" in page
    # per input file, and how the run was made
    assert stats["sources"][str(clean_run.parent / "extra.jsonl")]["input_docs"] == 3
    assert "extra.jsonl" in page and "python -m pipeline clean --input" in page and "apache-beam" in page
    assert "lid.176.ftz sha256:" in page
    assert "<svg" in page and "Example kept documents" in page


def test_timing_records_beam_metrics_that_agree_with_the_funnel(clean_run, tmp_path):
    stats = json.loads((clean_run / "stats.json").read_text())
    assert "metrics" not in stats   # they differ from run to run (a resumed run re-counts nothing)
    metrics = json.loads((clean_run / "timing.json").read_text())["metrics"]
    funnel = {row["stage"]: row for row in stats["funnel"]}
    counters, distributions = metrics["counters"], metrics["distributions"]
    # counters that measure what the funnel counts agree with it
    assert counters["read"]["documents"] == funnel["read"]["docs_out"] == stats["input_docs"]
    assert "rejected" not in counters["read"] and funnel["read"]["docs_dropped"] == 0
    # dedup's memory figures: a shingle set per document it saw, and the near copy was checked
    assert distributions["dedup"]["shingle_set_bytes"]["count"] == funnel["dedup"]["docs_in"]
    assert counters["dedup"]["jaccard_checks"] >= 1
    assert 0 < distributions["dedup"]["shingle_set_bytes"]["min"] <= distributions["dedup"]["shingle_set_bytes"]["max"]
    assert "Beam metrics" not in (clean_run / "report.html").read_text()
    with_timing = tmp_path / "with-timing.html"
    assert main(["report", str(clean_run), "--output", str(with_timing), "--with-timing"]) == 0
    page = with_timing.read_text()
    assert "Beam metrics" in page and "shingle_set_bytes" in page and "html_extracted" not in page


def test_timing_of_the_run_is_in_timing_json_only(clean_run):
    stats = json.loads((clean_run / "stats.json").read_text())
    timing = json.loads((clean_run / "timing.json").read_text())
    assert timing["wall_seconds"] > 0 and timing["docs_per_second"] > 0 and timing["input_mb_per_second"] > 0
    assert timing["docs_per_second"] == pytest.approx(stats["input_docs"] / timing["wall_seconds"], rel=1e-2)
    # rounded to 3 decimals: a small input read slowly is a few kB/s
    assert timing["input_mb_per_second"] == pytest.approx(stats["input_bytes"] / 1e6 / timing["wall_seconds"], abs=1e-3)
    assert timing["step_seconds"] and all(seconds > 0 for seconds in timing["step_seconds"].values())
    # a step applied to several flows of the second pass is numbered: DedupProgress0, DedupProgress1
    assert {step.rstrip("0123456789") for step in timing["step_seconds"]} <= {
        "Read", "Extract", "Lang", "Quality", "Fingerprint", "Dedup", "WriteCleaned", "WriteRejected", "Summarize",
        "Journal", "Replay"} | {
        f"{stage}Progress" for stage in ("Extract", "Lang", "Quality", "Dedup")} | {
        f"Passed{stage}" for stage in ("Read", "Extract", "Lang", "Quality", "Dedup")} | {
        f"Spill{stage}" for stage in ("Kept", "ReadRejected", "ExtractRejected", "LangRejected", "QualityRejected")}
    # nothing that differs between runs is in the outputs that must not
    assert "timing" not in stats and "wall_seconds" not in (clean_run / "stats.json").read_text()
    assert "Timing of this run" not in (clean_run / "report.html").read_text()


def test_report_command_shows_the_timing_only_when_asked(clean_run, tmp_path):
    timing = json.loads((clean_run / "timing.json").read_text())
    with_timing = tmp_path / "with-timing.html"
    assert main(["report", str(clean_run), "--output", str(with_timing), "--with-timing"]) == 0
    page = with_timing.read_text()
    HTMLParser().feed(page)
    assert "Timing of this run" in page and f"Wall time <b>{timing['wall_seconds']:,.1f} s</b>" in page
    assert "documents/s" in page and max(timing["step_seconds"], key=timing["step_seconds"].get) in page
    without = tmp_path / "plain.html"
    assert main(["report", str(clean_run), "--output", str(without)]) == 0
    assert without.read_bytes() == (clean_run / "report.html").read_bytes()


@pytest.mark.parametrize("name, content, message", [
    ("timing.json", None, "has no timing.json"),
    ("timing.json", "[1, 2]", "is not a clean run's timing (no object)"),
    ("timing.json", '{"wall_seconds": 1.0}', "(no docs_per_second, input_mb_per_second)"),
    ("stats.json", "5", "is not a clean run's stats (no object)"),
])
def test_report_on_a_missing_or_malformed_json_output_fails_in_one_line(clean_run, tmp_path, capsys, name, content,
                                                                         message):
    copy = tmp_path / "copy"
    shutil.copytree(clean_run, copy)
    if content is None:
        (copy / name).unlink()
    else:
        (copy / name).write_text(content)
    assert main(["report", str(copy), "--with-timing"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pipeline report: error: ") and message in err[0], err


def test_hostile_text_and_urls_stay_text(clean_run):
    page = (clean_run / "report.html").read_text()
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    hrefs = re.findall(r"href=\"([^\"]*)\"", page)
    assert hrefs and all(href.startswith(("http://", "https://")) for href in hrefs)
    assert "javascript:alert(document.cookie)" in page  # shown, not linked


def test_rejected_records_carry_their_decision(clean_run):
    with gzip.open(clean_run / "rejected/part-00000.jsonl.gz", "rt", encoding="utf-8") as f:
        rejected = {record["id"]: record for record in map(json.loads, f)}
    assert rejected["hostile"]["decision"]["signal"] == "word_count"
    assert rejected["hostile"]["decision"]["threshold"] == 50
    assert rejected["german"]["decision"] == {"signal": "lang", "value": "de", "op": "not in", "threshold": ["en"]}


def test_report_command_rebuilds_the_same_page(clean_run, tmp_path):
    rebuilt = tmp_path / "again.html"
    assert main(["report", str(clean_run), "--output", str(rebuilt)]) == 0
    assert rebuilt.read_bytes() == (clean_run / "report.html").read_bytes()


def test_report_command_compares_two_runs(clean_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(clean_run, other)
    stats = json.loads((other / "stats.json").read_text())
    stats["kept_docs"] -= 2
    stats["rejected"]["gopher_min_words"] = stats["rejected"].get("gopher_min_words", 0) + 2
    stats["run"]["config"]["quality"]["gopher_quality"]["min_words"] = 80
    (other / "stats.json").write_text(json.dumps(stats))
    assert main(["report", str(clean_run), "--compare", str(other)]) == 0
    page = (clean_run / "compare.html").read_text()
    assert "quality.gopher_quality.min_words" in page and "+2" in page and "-2" in page


def test_report_command_on_an_unfinished_output_fails_in_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("pipeline report: error:") and "has no stats.json" in err and "\n" not in err


def test_report_command_on_a_corrupt_part_file_fails_in_one_line(clean_run, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(clean_run, broken)
    (broken / "cleaned/part-00000.jsonl.gz").write_bytes(b"\x1f\x8b\x08not gzip at all")
    assert main(["report", str(broken)]) == 1
    err = capsys.readouterr().err.strip()
    assert "cannot read" in err and "part-00000.jsonl.gz" in err and "\n" not in err


def test_report_command_with_bad_arguments_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report"])
    assert exit_info.value.code == 2


def test_the_page_renders_offline_in_headless_chromium(clean_run, tmp_path):
    """What a user sees: the page, opened from disk by a real browser with no network."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not on PATH: install it with scripts/install-chromium.sh (apt-get install chromium)"
    page = (clean_run / "report.html").as_uri()
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}",
             # no network: every host resolves nowhere, so a fetched resource would fail to load
             "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1280,2000"]
    screenshot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={screenshot}", page], check=True, capture_output=True, timeout=120)
    with Image.open(screenshot) as image:
        assert image.format == "PNG" and image.size == (1280, 2000)
        gray = image.convert("L")
        dark = sum(gray.histogram()[:200])
    assert dark > 0.01 * 1280 * 2000, "the screenshot is (nearly) blank"
    dom = subprocess.run([*flags, "--dump-dom", page], check=True, capture_output=True, text=True, timeout=120).stdout
    assert "Funnel" in dom and "documents in" in dom and "dedup" in dom
