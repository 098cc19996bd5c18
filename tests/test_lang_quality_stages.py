"""The lang and quality stages in real Beam pipelines (FnApiRunner)."""
import gzip
import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that

from common.config_io import ConfigError
from pipeline.config import LangConfig, QualityConfig
from pipeline.stages.lang import LanguageFilter
from pipeline.stages.quality import QualityFilter

SAMPLE = Path(__file__).resolve().parents[1] / "data/sample"
UDHR = SAMPLE / "text/udhr"


def udhr_docs() -> list[dict]:
    return [{"id": f"udhr-{path.stem}", "source": str(path), "text": path.read_text(encoding="utf-8")}
            for path in sorted(UDHR.glob("*.txt"))]


def run_stage(stage, docs, check_kept, check_rejected):
    """Run `stage` on `docs` and check its outputs, each given to its check as a list sorted by id."""
    def sorted_check(check):
        return lambda docs: check(sorted(docs, key=lambda doc: doc["id"]))

    with beam.Pipeline(runner=FnApiRunner()) as p:
        kept, rejected = p | beam.Create(docs) | stage
        assert_that(kept, sorted_check(check_kept), label="CheckKept")
        assert_that(rejected, sorted_check(check_rejected), label="CheckRejected")


def test_lang_stage_keeps_wanted_languages_and_labels_them():
    docs = udhr_docs() + [{"id": "empty", "source": "test", "text": ""}]

    def check_kept(kept):
        assert [(d["id"], d["lang"]) for d in kept] == [("udhr-de", "de"), ("udhr-en", "en")]
        assert all(d["lang_score"] >= 0.65 and d["text"] for d in kept)

    def check_rejected(rejected):
        reasons = {d["id"]: (d["stage"], d["reason"]) for d in rejected}
        assert len(reasons) == 11
        assert reasons["empty"] == ("lang", "lang_no_text")
        assert reasons["udhr-ja"] == ("lang", "lang_not_wanted")
        # Rejection records keep the text and the label, so nothing dropped is lost.
        french = next(d for d in rejected if d["id"] == "udhr-fr")
        assert french["lang"] == "fr" and french["text"].startswith("Déclaration")

    run_stage(LanguageFilter(LangConfig(langs=["en", "de"])), docs, check_kept, check_rejected)


def test_lang_all_keeps_every_document_and_labels_each():
    docs = udhr_docs() + [{"id": "empty", "source": "test", "text": ""}]
    expected = {**{f"udhr-{path.stem}": path.stem for path in UDHR.glob("*.txt")}, "empty": "und"}

    def check_kept(kept):
        assert {d["id"]: d["lang"] for d in kept} == expected

    def check_rejected(rejected):
        assert rejected == []

    run_stage(LanguageFilter(LangConfig(langs=["all"])), docs, check_kept, check_rejected)


def test_quality_stage_keeps_good_text_with_signals_and_rejects_junk_with_reasons():
    with gzip.open(SAMPLE / "jsonl/dolma-cc_en_head-0091.jsonl.gz", "rt", encoding="utf-8") as f:
        good = json.loads(f.readline())
    docs = [
        {"id": "good", "source": "s", "text": good["text"], "lang": "en"},
        {"id": "lorem", "source": "s", "text": good["text"] + "\nLorem ipsum dolor sit amet.", "lang": "en"},
        {"id": "short", "source": "s", "text": "Home | About | Contact", "lang": "en"},
    ]

    def check_kept(kept):
        assert [d["id"] for d in kept] == ["good"]
        assert kept[0]["word_count"] > 50 and kept[0]["text"] == good["text"] and "dup_5gram_char_frac" in kept[0]

    def check_rejected(rejected):
        assert [(d["id"], d["stage"], d["reason"]) for d in rejected] == [
            ("lorem", "quality", "c4_lorem_ipsum"), ("short", "quality", "gopher_min_words")]
        assert rejected[1]["word_count"] == 3

    run_stage(QualityFilter(QualityConfig()), docs, check_kept, check_rejected)


def test_configuration_errors_surface_when_the_stage_is_applied():
    with pytest.raises(ConfigError, match="unknown language code"):
        with beam.Pipeline(runner=FnApiRunner()) as p:
            p | beam.Create([]) | LanguageFilter(LangConfig(langs=["klingon"]))
    with pytest.raises(ConfigError, match="disabled_rules"):
        with beam.Pipeline(runner=FnApiRunner()) as p:
            p | beam.Create([]) | QualityFilter(QualityConfig(disabled_rules=["typo"]))
