"""Heuristic quality rules on real text: good prose is kept, real and built junk is dropped with its reason."""
import gzip
import json
from pathlib import Path

import pytest

from common import config_io
from common.config_io import ConfigError
from pipeline.config import C4Config, FineWebConfig, GopherQualityConfig, GopherRepetitionConfig, QualityConfig
from pipeline.text.quality import (RULE_REASONS, Measurements, NGrams, QualityJudge, c4, dup_ngram_char_frac,
                                   duplicate_fractions, fineweb, gopher_quality, gopher_repetition, judge_quality,
                                   load_bad_words, top_ngram_char_frac)

SAMPLE = Path(__file__).resolve().parents[1] / "data/sample"
UDHR = SAMPLE / "text/udhr"


def read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def good_english() -> list[str]:
    """CCNet "head" documents: the best-scoring third of English Common Crawl by Wikipedia perplexity."""
    return [doc["text"] for path in sorted((SAMPLE / "jsonl").glob("dolma-cc_en_head-*.jsonl.gz")) for doc in read_jsonl(path)]


@pytest.fixture(scope="module")
def crawl() -> dict[str, str]:
    """Raw Common Crawl documents (Dolma, CC-MAIN-2019-30) by id."""
    return {doc["id"]: doc["text"] for doc in read_jsonl(next((SAMPLE / "jsonl").glob("dolma-CC-MAIN-*.jsonl.gz")))}


@pytest.fixture(scope="module")
def udhr_en() -> str:
    return (UDHR / "en.txt").read_text(encoding="utf-8")


def test_real_good_english_is_mostly_kept_and_carries_every_signal(good_english):
    verdicts = [judge_quality(text, "en", QualityConfig()) for text in good_english]
    assert len(verdicts) == 20
    assert sum(v.keep for v in verdicts) >= 16
    signals = verdicts[0].signals
    assert all(type(value) in (int, float) for verdict in verdicts for value in verdict.signals.values())
    for key in ("word_count", "mean_word_length", "stop_word_count", "dup_line_frac", "top_2gram_char_frac",
                "dup_10gram_char_frac", "c4_sentence_count", "terminal_punct_line_frac", "short_line_frac",
                "newline_word_ratio", "dup_line_char_frac"):
        assert isinstance(signals[key], (int, float)), key


@pytest.mark.parametrize("lang", sorted(path.stem for path in UDHR.glob("*.txt")))
def test_udhr_in_twelve_languages_passes_every_rule(lang):
    verdict = judge_quality((UDHR / f"{lang}.txt").read_text(encoding="utf-8"), lang, QualityConfig())
    assert verdict.keep, verdict.reason


@pytest.mark.parametrize("doc_id,reason", [
    ("nnqs2l4gcc63go5576cwdpntzrrwzpa4", "gopher_min_words"),  # a wiki's "topic does not exist yet" page
    ("stcdwwq5pnw2qgo3mbk4gxa42vbyyzds", "gopher_dup_5gram"),  # a bill's action log, two near-identical lines
    ("4nb4dbwmy64y6dgtnyo7uufv6k7dkfzd", "gopher_alpha_words"),  # a game item's stat table
    ("ihozv7qx56plvzlp4s3l6jisj3htgjpi", "c4_lorem_ipsum"),  # a MediaWiki template's documentation
    ("fddelafc3qyd2sg7wpt2hxd7ij5235ao", "c4_curly_bracket"),  # a wiki page with template markup
    ("s6z5enyw4xth5aduv2fl3h64lad3afwu", "fineweb_terminal_punct_lines"),  # a library search result page
])
def test_real_crawled_junk_is_dropped_with_its_reason(crawl, doc_id, reason):
    assert judge_quality(crawl[doc_id], "en", QualityConfig()).reason == reason


def test_lorem_ipsum_inside_good_text_is_dropped(good_english):
    text = good_english[0] + "\n\nLorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."
    assert judge_quality(good_english[0], "en", QualityConfig()).keep
    assert judge_quality(text, "en", QualityConfig()).reason == "c4_lorem_ipsum"


def test_repeated_real_lines_are_dropped_as_duplicate_lines(udhr_en):
    lines = [line.strip() for line in udhr_en.split("\n") if len(line.strip()) > 80][:10]
    text = "\n".join(lines * 3)
    assert judge_quality("\n".join(lines), "en", QualityConfig()).keep
    assert gopher_repetition(Measurements(text, "en"), GopherRepetitionConfig()).reason == "gopher_dup_lines"
    assert judge_quality(text, "en", QualityConfig()).reason == "gopher_dup_lines"


def test_a_navigation_menu_is_dropped(crawl, udhr_en):
    # Short menu lines taken from real crawled pages, around ten real paragraphs.
    menu = sorted({line.strip() for text in crawl.values() for line in text.split("\n")
                   if 3 <= len(line.strip()) <= 20 and line.strip().isalpha()})[:60]
    assert len(menu) == 60
    paragraphs = [line for line in udhr_en.split("\n") if len(line) > 200 and line.endswith(".")][:10]
    # FineWeb reads lines after a C4 pass that removes those under three words: one-word menu items
    # are gone before its rules run, three-word ones ("Home About Contact") stay and are short.
    one_word_page = "\n".join(menu[:30] + paragraphs + menu[30:])
    trimmed = fineweb(Measurements(one_word_page, "en"), FineWebConfig())
    assert trimmed.keep and trimmed.signals["short_line_frac"] == 0.0
    short_items = [item for item in menu if len(item) <= 9]
    triples = [" ".join(short_items[i:i + 3]) for i in range(0, 39, 3)]
    assert len(short_items) >= 39 and all(len(line) <= 30 for line in triples)
    page = "\n".join(triples[:7] + paragraphs[:2] + triples[7:])
    verdict = fineweb(Measurements(page, "en"), FineWebConfig())
    assert verdict.reason == "fineweb_short_lines"
    assert verdict.signals["short_line_frac"] > 0.8
    assert judge_quality("\n".join(menu[:40]), "en", QualityConfig()).reason == "gopher_min_words"
    assert judge_quality("\n".join(menu), "en", QualityConfig()).reason == "gopher_stop_words"


def test_gopher_quality_rules_each_fire(udhr_en):
    prose = " ".join(udhr_en.split()[:200])
    config = GopherQualityConfig()

    def reason(text, lang="en"):
        return gopher_quality(Measurements(text, lang), config).reason

    assert reason(prose) is None
    assert reason(" ".join(prose.split()[:30])) == "gopher_min_words"
    assert reason(prose, lang=None) is None
    assert reason(" ".join(["a", "an", "is", "to"] * 20)) == "gopher_min_mean_word_length"
    assert reason(" ".join(["internationalization"] * 60)) == "gopher_max_mean_word_length"
    assert reason(prose + " #hashtag" * 25) == "gopher_hash_ratio"
    assert reason(prose + " wait..." * 25) == "gopher_ellipsis_ratio"
    bullets = "\n".join(f"• {' '.join(prose.split()[i:i + 10])}" for i in range(0, 200, 10))
    assert reason(bullets) == "gopher_bullet_lines"
    trailing = "\n".join(f"{' '.join(prose.split()[i:i + 10])} …" for i in range(0, 200, 10))
    assert reason(trailing) == "gopher_ellipsis_lines"
    assert reason(prose + " 2019 12 31" * 30) == "gopher_alpha_words"


def test_stop_words_apply_only_where_a_list_exists(udhr_en):
    stop_words = {"the", "be", "to", "of", "and", "that", "have", "with"}
    no_stop_words = " ".join(w for w in udhr_en.split()[:400] if w.lower() not in stop_words)
    assert gopher_quality(Measurements(no_stop_words, "en"), GopherQualityConfig()).reason == "gopher_stop_words"
    for lang in ("sw", None):  # no list for Swahili, no language known
        verdict = gopher_quality(Measurements(no_stop_words, lang), GopherQualityConfig())
        assert verdict.keep and "stop_word_count" not in verdict.signals
    german = (UDHR / "de.txt").read_text(encoding="utf-8")
    assert gopher_quality(Measurements(german, "de"), GopherQualityConfig()).signals["stop_word_count"] == 10


def test_gopher_counts_distinct_stop_words(udhr_en):
    # Gopher asks for two different stop words: one of them repeated does not make prose.
    stop_words = {"the", "be", "to", "of", "and", "that", "have", "with"}
    words = [w for w in udhr_en.split()[:400] if w.lower() not in stop_words]
    one_repeated = " ".join(word + " the" for word in words)
    verdict = gopher_quality(Measurements(one_repeated, "en"), GopherQualityConfig())
    assert verdict.reason == "gopher_stop_words" and verdict.signals["stop_word_count"] == 1
    two = " ".join(words + ["the", "of"])
    assert gopher_quality(Measurements(two, "en"), GopherQualityConfig()).keep


def test_unspaced_languages_skip_word_length_but_keep_the_other_rules():
    chinese = (UDHR / "zh.txt").read_text(encoding="utf-8")
    assert gopher_quality(Measurements(chinese, "zh"), GopherQualityConfig()).keep
    # Read as a spaced language, one-character "words" fail the mean-length rule.
    assert gopher_quality(Measurements(chinese, "en"), GopherQualityConfig()).reason == "gopher_min_mean_word_length"
    assert gopher_quality(Measurements(chinese[:40], "zh"), GopherQualityConfig()).reason == "gopher_min_words"


def test_duplicate_fractions_count_repeats_after_the_first():
    assert duplicate_fractions(["aa", "b", "aa", "aa"]) == (0.5, round(4 / 7, 4))
    assert duplicate_fractions([]) == (0.0, 0.0)


def test_ngram_fractions():
    ngrams = NGrams("a b c a b c x".split())
    assert top_ngram_char_frac(ngrams, 2) == round(4 / 7, 4)  # "a b" twice
    assert top_ngram_char_frac(NGrams("a b c d".split()), 2) == 0.0  # nothing repeats
    # "a b c" repeats once: its second occurrence covers 3 of 7 characters.
    assert dup_ngram_char_frac(ngrams, 3) == round(3 / 7, 4)
    # Overlapping repeats are counted once: every 2-gram after the first "x y" repeats.
    assert dup_ngram_char_frac(NGrams("x y x y x y".split()), 2) == round(4 / 6, 4)
    # Equally frequent n-grams: the first one counts.
    assert top_ngram_char_frac(NGrams("c d aa bb c d aa bb".split()), 2) == round(2 * 2 / 12, 4)
    for words in ([], ["one"]):
        assert top_ngram_char_frac(NGrams(words), 4) == dup_ngram_char_frac(NGrams(words), 10) == 0.0


def test_ngram_hashes_match_a_direct_count_on_real_text():
    words = (UDHR / "en.txt").read_text(encoding="utf-8").split()[:3000]
    ngrams = NGrams(words)
    for n in (2, 5, 10):
        direct = {}
        for start in range(len(words) - n + 1):
            direct.setdefault(tuple(words[start:start + n]), set()).add(int(ngrams.hashes(n)[start]))
        assert all(len(hashes) == 1 for hashes in direct.values())  # one hash per n-gram
        assert len(set(ngrams.hashes(n).tolist())) == len(direct)  # and no two n-grams share one


def test_top_ngram_rule_fires_on_a_repeated_phrase(udhr_en):
    prose = " ".join(udhr_en.split()[:150])
    text = prose + " " + " ".join(["click here"] * 40)
    assert gopher_repetition(Measurements(text, "en"), GopherRepetitionConfig()).reason == "gopher_top_2gram"


def test_c4_rules(udhr_en, good_english):
    config = C4Config()
    good = Measurements(udhr_en, "en")
    assert c4(good, config).keep and c4(good, config).signals["c4_sentence_count"] >= 50
    assert c4(Measurements(udhr_en + "\nfunction() { return 1; }", "en"), config).reason == "c4_curly_bracket"
    javascript = "\n".join(["Please enable JavaScript to view this page."] * 3 + udhr_en.split("\n")[:10])
    assert c4(Measurements(javascript, "en"), config).reason == "c4_javascript_lines"
    policy = "\n".join(udhr_en.split("\n")[:10] + ["This site uses cookies.", "Privacy Policy", "Terms of Use"])
    assert c4(Measurements(policy, "en"), config).reason == "c4_policy_lines"
    headings = "\n".join(line for line in udhr_en.split("\n") if not line.rstrip().endswith("."))
    assert c4(Measurements(headings, "en"), config).reason == "c4_too_few_sentences"
    bad_words = load_bad_words(["Dignity", "  ", "human family"])
    assert c4(good, config, bad_words=bad_words).reason == "c4_bad_words"
    assert c4(Measurements(good_english[0], "en"), config, bad_words=load_bad_words(["dign"])).keep  # whole words only
    assert load_bad_words(["", " "]) is None


def test_c4_counts_sentences_of_cjk_full_stops():
    chinese = (UDHR / "zh.txt").read_text(encoding="utf-8")
    assert c4(Measurements(chinese, "zh"), C4Config()).signals["c4_sentence_count"] >= 30


def test_fineweb_rules(udhr_en):
    config = FineWebConfig()
    lines = [line for line in udhr_en.split("\n") if len(line) > 100][:20]
    assert fineweb(Measurements("\n".join(lines), "en"), config).keep
    no_punct = "\n".join(line.rstrip(".;:,") for line in lines)
    assert fineweb(Measurements(no_punct, "en"), config).reason == "fineweb_terminal_punct_lines"
    one_repeat = "\n".join(lines + lines[:1])
    assert fineweb(Measurements(one_repeat, "en"), config).reason == "fineweb_dup_line_chars"
    words = " ".join(lines).split()
    listing = "\n".join(" ".join(words[i:i + 3]) + "." for i in range(0, 240, 3))
    verdict = fineweb(Measurements(listing, "en"), FineWebConfig(max_short_line_frac=1.0))
    assert verdict.reason == "fineweb_list_ratio" and verdict.signals["newline_word_ratio"] > 0.3


def test_rules_run_in_a_fixed_order_and_the_first_failure_names_the_reason(udhr_en):
    lines = [line for line in udhr_en.split("\n") if len(line) > 100][:10]
    text = "\n".join(lines * 3) + "\nLorem ipsum dolor sit amet."  # fails repetition, C4 and FineWeb
    assert judge_quality(text, "en", QualityConfig()).reason == "gopher_dup_lines"
    config = config_io.load(QualityConfig, overrides={"gopher_repetition.enabled": "false"})
    verdict = judge_quality(text, "en", config)
    assert verdict.reason == "c4_lorem_ipsum" and "dup_line_frac" not in verdict.signals


def test_single_rules_can_be_switched_off(good_english):
    text = good_english[0] + "\n\nLorem ipsum dolor sit amet, consectetur adipiscing elit."
    config = config_io.load(QualityConfig, overrides={"disabled_rules": "c4_lorem_ipsum,gopher_min_words"})
    assert judge_quality(text, "en", config).keep
    assert judge_quality("too short", "en", config).reason != "gopher_min_words"


def test_every_rule_set_can_be_switched_off():
    off = {f"{name}.enabled": "false" for name in ("gopher_repetition", "gopher_quality", "c4", "fineweb")}
    verdict = judge_quality("", "en", config_io.load(QualityConfig, overrides=off))
    assert verdict.keep and verdict.signals == {}


def test_config_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="unknown rule in quality.disabled_rules: no_such_rule"):
        QualityJudge(QualityConfig(disabled_rules=["no_such_rule"]))
    with pytest.raises(ConfigError, match="bad_words_file"):
        QualityJudge(QualityConfig(c4=C4Config(bad_words_file=str(tmp_path / "missing.txt"))))
    assert len(RULE_REASONS) == len(set(RULE_REASONS))


def test_judge_reads_the_bad_words_file_and_the_document_language(tmp_path, udhr_en):
    bad_words = tmp_path / "bad-words.txt"
    bad_words.write_text("inalienable\n", encoding="utf-8")
    judge = QualityJudge(QualityConfig(c4=C4Config(bad_words_file=str(bad_words))))
    assert judge({"id": "1", "text": udhr_en, "lang": "en"}).reason == "c4_bad_words"
    german = (UDHR / "de.txt").read_text(encoding="utf-8")
    assert judge({"id": "2", "text": german, "lang": "de"}).keep
    assert judge({"id": "3"}).reason == "gopher_min_words"


def test_c4_terminal_punctuation_is_tfds_set_and_ellipses_do_not_end_sentences():
    line = "This line has more than five words in it"
    for ending, counted in ((".", True), ("?", True), ("!", True), ('"', True), ("...", False), ("'", False),
                            ("…", False), ("”", False)):
        text = "\n".join([line + ending] * 3)
        assert (c4(Measurements(text, "en"), C4Config()).signals["c4_sentence_count"] == 3) == counted, ending


def test_fineweb_reads_lines_after_c4_trimming(udhr_en):
    lines = [line for line in udhr_en.split("\n") if len(line) > 100][:20]
    noisy = "\n".join(lines + ["Please enable JavaScript to view this page"] * 3 + ["Read our privacy policy"])
    clean = fineweb(Measurements("\n".join(lines), "en"), FineWebConfig())
    noisy_verdict = fineweb(Measurements(noisy, "en"), FineWebConfig())
    assert noisy_verdict.keep and noisy_verdict.signals == clean.signals
