"""What report.html tells a user: the decision behind each drop, kept examples, the run, per-source
counts and signal histograms; `python -m pipeline report`; and the page as a browser renders it."""
from pipeline.text.lang import judge_language
from pipeline.text.quality import C4Config, Measurements, QualityConfig, c4, judge_quality
from pipeline.text.verdict import describe


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
    assert describe(low.decision.as_dict()) == "lang_score 0.41 < 0.65"
    other = judge_language("zh", 0.99, frozenset({"en", "de"}), 0.65)
    assert describe(other.decision.as_dict()) == "lang zh not in de,en"
    assert judge_language("en", 0.9, frozenset({"en"}), 0.65).decision is None
