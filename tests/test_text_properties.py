"""Property-based tests: random text and random bytes thrown at every pure text function of
pipeline/text (and the charset decoding in front of them). Whatever the input, nothing raises,
scores and fractions stay in range, verdicts are well formed and normalizations are idempotent."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import DedupConfig, ExtractConfig, QualityConfig
from pipeline.sources.charset import UndecodableError, charset_from_content_type, charset_from_meta, codec_name, decode_bytes
from pipeline.text import line_dedup, shingles
from pipeline.text.extract import document_text
from pipeline.text.fasttext_model import fasttext_line, load_fasttext_model
from pipeline.text.lang import BUNDLED_MODEL, UNDETERMINED, identify, judge_language
from pipeline.text.minhash import MinHasher, estimate_jaccard, shingles_of
from pipeline.text.normalize import normalize_text
from pipeline.text.quality import RULE_REASONS, judge_quality
from pipeline.text.verdict import Verdict
from pipeline.text.words import split_words

PROPERTIES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text as crawled pages hold it: any code point but lone surrogates, with runs of the characters
# that rules and normalization care about (line breaks, spaces, punctuation, markup, CJK, controls).
_SPECIAL = st.sampled_from(["\n", "\r\n", "\n\n\n", " ", "\t", ".", "…", "!", "#", "•", "- ", "{", "}", "<br>", "<p>",
                            "lorem ipsum", "the", "javascript", "東京", "ไทย", "\x00", "\x1b[31m", "\u200b", "Ã©",
                            "\ufeff", "\u2028", "ﬁ", "e\u0301"])
TEXTS = st.lists(st.one_of(st.text(max_size=30), _SPECIAL), max_size=40).map("".join)
HTML = st.lists(st.one_of(TEXTS, st.sampled_from(["<html>", "<body>", "</p>", "<div>", "</div>", "<script>", "</script>",
                                                  "<table><tr><td>", "<!--", "-->", "<![CDATA[", "&amp;", "&#0;",
                                                  "<meta charset=utf-16>", "<?xml version='1.0'?>"])),
                max_size=40).map("".join)
LABELS = st.one_of(st.none(), st.sampled_from(["utf-8", "utf-16", "utf-32", "gb2312", "shift_jis", "iso-8859-1",
                                               "cp037", "utf-7", "ascii", "koi8-r", "nonsense", ""]), st.text(max_size=12))
LANGS = st.one_of(st.none(), st.sampled_from(["en", "de", "zh", "ja", "th", "und", "zh-Hant", "pt_BR", ""]))


@pytest.fixture(scope="module")
def lid_model():
    return load_fasttext_model(str(BUNDLED_MODEL))


def _is_normalized(text: str) -> bool:
    return (text == text.strip() and "\r" not in text and "\n\n\n" not in text
            and not any(line != line.rstrip(" \t") for line in text.split("\n"))
            and not any(0xD800 <= ord(c) <= 0xDFFF for c in text))


@PROPERTIES
@given(TEXTS)
def test_normalize_text_is_idempotent_and_clean(text):
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert _is_normalized(once)


@PROPERTIES
@given(st.binary(max_size=300), st.lists(LABELS, max_size=3))
def test_decode_bytes_gives_text_or_one_known_error(data, declared):
    try:
        text = decode_bytes(data, tuple(declared))
    except UndecodableError:
        return
    assert isinstance(text, str)
    text.encode("utf-8", errors="surrogatepass")


@PROPERTIES
@given(st.binary(max_size=300), st.text(max_size=40))
def test_charset_labels_never_raise(data, label):
    for found in (charset_from_meta(data), charset_from_content_type(label), codec_name(label)):
        assert found is None or isinstance(found, str)


@settings(PROPERTIES, max_examples=60)
@given(st.one_of(HTML, TEXTS), st.sampled_from(["trafilatura", "resiliparse"]), st.booleans())
def test_document_text_gives_normalized_text_and_a_known_verdict(content, extractor, as_html):
    doc = {"html": content} if as_html else {"text": content}
    text, verdict = document_text(doc, ExtractConfig(extractor=extractor, min_chars=5))
    assert isinstance(verdict, Verdict) and verdict.reason in (None, "html_too_large", "extract_error", "extract_empty")
    assert verdict.reason != "extract_error", verdict.signals
    assert _is_normalized(text) and normalize_text(text) == text
    assert verdict.keep == (len(text) >= 5)


@PROPERTIES
@given(TEXTS, st.one_of(st.none(), st.frozensets(st.sampled_from(["en", "de", "zh"]))), st.floats(0, 1))
def test_language_scores_are_probabilities(lid_model, text, wanted, threshold):
    lang, score = identify(lid_model, normalize_text(text))
    assert isinstance(lang, str) and lang and 0.0 <= score <= 1.0
    assert (lang == UNDETERMINED) == (not fasttext_line(normalize_text(text)))
    verdict = judge_language(lang, score, wanted, threshold)
    assert verdict.signals == {"lang": lang, "lang_score": score}
    assert verdict.reason in (None, "lang_no_text", "lang_not_wanted", "lang_low_score")
    assert verdict.keep or wanted is not None


@PROPERTIES
@given(TEXTS, LANGS)
def test_quality_verdicts_are_well_formed(text, lang):
    verdict = judge_quality(normalize_text(text), lang, QualityConfig())
    assert verdict.reason is None or verdict.reason in RULE_REASONS
    for name, value in verdict.signals.items():
        assert isinstance(value, (int, float)) and math.isfinite(value) and value >= 0, (name, value)
        if name.endswith("_frac"):
            assert value <= 1.0, (name, value)


@PROPERTIES
@given(TEXTS)
def test_words_are_non_empty_pieces_of_the_text(text):
    for word in split_words(text):
        assert word and word in text and not any(c.isspace() for c in word)


@PROPERTIES
@given(TEXTS, TEXTS, LANGS, st.sampled_from(["word", "char"]))
def test_shingles_and_minhash_signatures(text, other, lang, kind):
    config = DedupConfig(shingle_kind=kind, num_perm=32)
    assert shingles.normalize(shingles.normalize(text)) == shingles.normalize(text)
    hashes, other_hashes = shingles_of(text, lang, config), shingles_of(other, lang, config)
    for h in (hashes, other_hashes):
        assert h.dtype == np.uint64 and np.all(h[1:] > h[:-1])          # sorted and unique
    assert (len(hashes) == 0) == (not shingles.normalize(text).replace(" ", ""))
    similarity = shingles.jaccard(hashes, other_hashes)
    assert 0.0 <= similarity <= 1.0
    assert shingles.jaccard(hashes, hashes) == (1.0 if len(hashes) else 0.0)
    hasher = MinHasher(num_perm=32)
    signature, other_signature = hasher.signature(hashes), hasher.signature(other_hashes)
    assert signature.dtype == np.uint32 and signature.shape == (32,)
    assert estimate_jaccard(signature, signature) == 1.0
    assert 0.0 <= estimate_jaccard(signature, other_signature) <= 1.0
    assert np.array_equal(signature, hasher.signature(hashes.copy()))   # deterministic


@PROPERTIES
@given(TEXTS, TEXTS)
def test_line_dedup_removes_whole_lines_only(text, other):
    text = normalize_text(text)
    assert line_dedup.remove_lines(text, set()) == text
    assert not line_dedup.remove_lines(text, line_dedup.line_keys(text)).strip()
    removed = line_dedup.line_keys(normalize_text(other))
    kept = line_dedup.remove_lines(text, removed)
    assert all(line in text.splitlines() for line in kept.splitlines())
    assert line_dedup.line_keys(kept) == line_dedup.line_keys(text) - removed


def test_overlapping_repeats_of_the_top_ngram_cover_each_word_once():
    """Found by the quality property above: in "0 0 0" the 2-gram "0 0" occurs twice, overlapping,
    and counting both occurrences gave top_2gram_char_frac 4/3."""
    from pipeline.text.quality import NGrams, top_ngram_char_frac
    assert top_ngram_char_frac(NGrams(["0", "0", "0"]), 2) == 1.0
    assert top_ngram_char_frac(NGrams("a a a b".split()), 2) == 0.75
