"""Heuristic quality rules (Gopher quality and repetition, C4, FineWeb) and the model score.

Each rule set is a pure function from a document's `Measurements` to a `Verdict`: the first of its
rules that fails names the reason ("gopher_min_words", "c4_lorem_ipsum", ...), and every
measurement it used is a signal, written on kept documents so users can re-filter later. Defaults
are the published thresholds (Gopher: Rae et al. 2021; C4: Raffel et al. 2020; FineWeb:
Penedo et al. 2024). Any rule can be switched off by naming its reason in `disabled_rules`, and any
rule set by its `enabled` flag.

Language matters in three places: words of unspaced scripts (Chinese, Japanese, Thai, ...) are single
characters (`pipeline.text.words`), so for those languages the mean-word-length rule is skipped and
word n-grams become character 2n-grams; the stop-word rule applies only where a stop-word list exists
for the document's `lang`; terminal punctuation includes the full stops of CJK, Devanagari and Arabic
scripts. A document without `lang` (the lang stage not run) is treated as space-separated, with no
stop-word rule.

C4 removes offending lines and keeps the rest of a page; here a stage keeps or drops whole documents,
so C4's page-level rules are applied as C4 would after its line removal: only lines that C4 keeps count
toward its sentence minimum, and pages where javascript warnings or cookie/terms notices make up more
than a set share of the lines (10% by default) are dropped.
"""
from __future__ import annotations

import re
from functools import cached_property
from typing import Callable, Iterable

import numpy as np

from common.config_io import ConfigError
from pipeline.config import C4Config, FineWebConfig, GopherQualityConfig, GopherRepetitionConfig, QualityConfig
from pipeline.text.fasttext_model import load_fasttext_model
from pipeline.text.quality_model import check_classifier, positive_probability
from pipeline.text.verdict import Check, Decision, Verdict, above, below, first_failure
from pipeline.text.words import split_words, tokens_per_word, writes_spaces

TERMINAL_PUNCTUATION = (".", "!", "?", '"', "'", "”", "’", "…", "。", "！", "？", "।", "॥", "؟", "۔")
# The sentence ends of scripts other than Latin: the papers' rules were written for English, and without
# these every Chinese, Hindi or Arabic page would fail them (a deliberate deviation, see BENCHMARKS.md).
NON_LATIN_FULL_STOPS = ("。", "！", "？", "।", "॥", "؟", "۔")
# C4 (TFDS c4_utils): a line is kept only if it ends in one of these and not in an ellipsis.
C4_END_MARKS = (".", "?", "!", '"', *NON_LATIN_FULL_STOPS)
C4_ELLIPSIS = "..."
BULLETS = ("•", "●", "○", "■", "□", "▪", "▫", "‣", "⁃", "◦", "►", "▶", "➢", "✓", "-", "*", "–", "·")
ELLIPSES = ("...", "…")
_ELLIPSIS = re.compile(r"\.\.\.|…")
# A sentence ends in terminal punctuation (and closing quotes) before a space or the line end; CJK
# full stops need no space after them.
_SENTENCE_END = re.compile(r"[.!?।؟]+[\"'”’)]*(?:\s|$)|[。！？]+")
C4_POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")

# Frequent function words per language: real prose uses several of them (Gopher's English list, and
# lists of the same kind for other languages with a large web share).
STOP_WORDS = {
    "en": frozenset({"the", "be", "to", "of", "and", "that", "have", "with"}),
    "de": frozenset({"der", "die", "das", "und", "zu", "den", "von", "mit", "ist", "nicht"}),
    "fr": frozenset({"le", "la", "les", "de", "et", "des", "un", "une", "est", "que"}),
    "es": frozenset({"el", "la", "de", "que", "y", "los", "las", "en", "un", "por"}),
    "it": frozenset({"il", "la", "di", "che", "e", "è", "un", "per", "non", "del"}),
    "pt": frozenset({"o", "a", "de", "que", "e", "do", "da", "em", "um", "não"}),
    "nl": frozenset({"de", "het", "een", "en", "van", "is", "dat", "op", "te", "niet"}),
    "ru": frozenset({"и", "в", "не", "на", "что", "с", "как", "по", "это", "он"}),
}


class Measurements:
    """Lazily computed views of one document's text, shared by all rule sets."""

    def __init__(self, text: str, lang: str | None = None):
        self.text = text
        self.lang = lang

    @cached_property
    def lines(self) -> list[str]:
        """Non-blank lines, stripped."""
        return [line.strip() for line in self.text.split("\n") if line.strip()]

    @cached_property
    def paragraphs(self) -> list[str]:
        return [para.strip() for para in re.split(r"\n\s*\n", self.text) if para.strip()]

    @cached_property
    def words(self) -> list[str]:
        return split_words(self.text)

    @cached_property
    def word_chars(self) -> int:
        return sum(map(len, self.words))

    @cached_property
    def ngrams(self) -> NGrams:
        return NGrams(self.words)

    @cached_property
    def terminal_lines(self) -> list[bool]:
        return [line.endswith(TERMINAL_PUNCTUATION) for line in self.lines]

    @cached_property
    def line_word_counts(self) -> list[int]:
        return [len(split_words(line)) for line in self.lines]

    @cached_property
    def c4_terminal_lines(self) -> list[bool]:
        return [line.endswith(C4_END_MARKS) and not line.endswith(C4_ELLIPSIS) for line in self.lines]

    @cached_property
    def javascript_lines(self) -> list[bool]:
        return ["javascript" in line.lower() for line in self.lines]

    @cached_property
    def policy_lines(self) -> list[bool]:
        return [any(phrase in line.lower() for phrase in C4_POLICY_PHRASES) for line in self.lines]

    @cached_property
    def dup_lines(self) -> tuple[float, float]:
        return duplicate_fractions(self.lines)

    @cached_property
    def dup_paragraphs(self) -> tuple[float, float]:
        return duplicate_fractions(self.paragraphs)


def ratio(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def duplicate_fractions(items: list[str]) -> tuple[float, float]:
    """Share of `items` that repeat an earlier item, by count and by characters."""
    seen: set[str] = set()
    dup_count = dup_chars = 0
    for item in items:
        if item in seen:
            dup_count += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    return ratio(dup_count, len(items)), ratio(dup_chars, sum(map(len, items)))


class NGrams:
    """Word n-grams of a document as 64-bit hashes, so repetition statistics run at numpy speed.

    Words become integer ids, mixed (splitmix64) and combined polynomially: the hash of the n-gram at
    position i extends the (n-1)-gram hash at i by the word at i+n-1. Two different n-grams share a
    hash with probability about 2^-64 per pair, negligible next to the thresholds' coarseness.
    """

    def __init__(self, words: list[str]):
        vocabulary: dict[str, int] = {}
        ids = np.array([vocabulary.setdefault(word, len(vocabulary)) for word in words], dtype=np.uint64)
        self.chars_before = np.concatenate(([0], np.cumsum([len(word) for word in words], dtype=np.int64)))
        self.total_chars = int(self.chars_before[-1])
        self._hashes = {1: _splitmix64(ids)}

    def hashes(self, n: int) -> np.ndarray:
        """Hash of the n-gram starting at each position."""
        if n not in self._hashes:
            self._hashes[n] = self.hashes(n - 1)[:-1] * _HASH_BASE + self._hashes[1][n - 1:]
        return self._hashes[n]


_HASH_BASE = np.uint64(0x100000001B3)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    x = values + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def top_ngram_char_frac(ngrams: NGrams, n: int) -> float:
    """Share of word characters covered by the most frequent word n-gram (counted only if it repeats;
    among equally frequent ones, the one that occurs first; overlapping occurrences counted once)."""
    hashes = ngrams.hashes(n)
    if not hashes.size:
        return 0.0
    _, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    top = int(counts.max())
    if top < 2:
        return 0.0
    earliest = first[counts == top].min()
    return ratio(_covered_chars(ngrams, np.flatnonzero(hashes == hashes[earliest]), n), ngrams.total_chars)


def dup_ngram_char_frac(ngrams: NGrams, n: int) -> float:
    """Share of word characters inside repeats of an earlier word n-gram (overlaps counted once)."""
    hashes = ngrams.hashes(n)
    if not hashes.size:
        return 0.0
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    repeat_starts = np.flatnonzero(first[inverse] != np.arange(hashes.size))
    if not repeat_starts.size:
        return 0.0
    return ratio(_covered_chars(ngrams, repeat_starts, n), ngrams.total_chars)


def _covered_chars(ngrams: NGrams, starts: np.ndarray, n: int) -> int:
    """Characters of the words inside the n-grams starting at `starts`, each word counted once."""
    # +1 where an n-gram starts, -1 where it ends: words with a positive running sum are covered.
    depth = np.zeros(ngrams.chars_before.size, dtype=np.int64)
    np.add.at(depth, starts, 1)
    np.add.at(depth, starts + n, -1)
    covered = np.cumsum(depth[:-1]) > 0
    return int(np.diff(ngrams.chars_before)[covered].sum())


def gopher_repetition(m: Measurements, config: GopherRepetitionConfig, disabled: frozenset[str] = frozenset()) -> Verdict:
    dup_line_frac, dup_line_char_frac = m.dup_lines
    dup_para_frac, dup_para_char_frac = m.dup_paragraphs
    signals = {
        "dup_line_frac": dup_line_frac,
        "dup_para_frac": dup_para_frac,
        "dup_line_char_frac": dup_line_char_frac,
        "dup_para_char_frac": dup_para_char_frac,
    }
    checks = [
        above("gopher_dup_lines", "dup_line_frac", dup_line_frac, config.max_dup_line_frac),
        above("gopher_dup_paragraphs", "dup_para_frac", dup_para_frac, config.max_dup_para_frac),
        above("gopher_dup_line_chars", "dup_line_char_frac", dup_line_char_frac, config.max_dup_line_char_frac),
        above("gopher_dup_paragraph_chars", "dup_para_char_frac", dup_para_char_frac, config.max_dup_para_char_frac),
    ]
    scale = tokens_per_word(m.lang)
    for n in (2, 3, 4):
        signal = f"top_{n}gram_char_frac"
        signals[signal] = top_ngram_char_frac(m.ngrams, n * scale)
        checks.append(above(f"gopher_top_{n}gram", signal, signals[signal], getattr(config, f"max_{signal}")))
    for n in range(5, 11):
        signal = f"dup_{n}gram_char_frac"
        signals[signal] = dup_ngram_char_frac(m.ngrams, n * scale)
        checks.append(above(f"gopher_dup_{n}gram", signal, signals[signal], getattr(config, f"max_{signal}")))
    return first_failure(checks, signals, disabled)


def gopher_quality(m: Measurements, config: GopherQualityConfig, disabled: frozenset[str] = frozenset()) -> Verdict:
    word_count = len(m.words)
    signals = {
        "word_count": word_count,
        "mean_word_length": ratio(m.word_chars, word_count),
        "hash_word_ratio": ratio(m.text.count("#"), word_count),
        "ellipsis_word_ratio": ratio(len(_ELLIPSIS.findall(m.text)), word_count),
        "bullet_line_frac": ratio(sum(line.startswith(BULLETS) for line in m.lines), len(m.lines)),
        "ellipsis_line_frac": ratio(sum(line.endswith(ELLIPSES) for line in m.lines), len(m.lines)),
        "alpha_word_frac": ratio(sum(any(map(str.isalpha, word)) for word in m.words), word_count),
    }
    stop_words = STOP_WORDS.get(m.lang or "")
    if stop_words is not None:
        # Gopher asks for at least two *distinct* stop words ("the" fifty times is still one).
        signals["stop_word_count"] = len(stop_words.intersection(map(str.lower, m.words)))
    spaced = writes_spaces(m.lang)
    checks = [
        below("gopher_min_words", "word_count", word_count, config.min_words),
        above("gopher_max_words", "word_count", word_count, config.max_words),
        below("gopher_min_mean_word_length", "mean_word_length", signals["mean_word_length"],
              config.min_mean_word_length, applies=spaced),
        above("gopher_max_mean_word_length", "mean_word_length", signals["mean_word_length"],
              config.max_mean_word_length, applies=spaced),
        above("gopher_hash_ratio", "hash_word_ratio", signals["hash_word_ratio"], config.max_hash_word_ratio),
        above("gopher_ellipsis_ratio", "ellipsis_word_ratio", signals["ellipsis_word_ratio"],
              config.max_ellipsis_word_ratio),
        above("gopher_bullet_lines", "bullet_line_frac", signals["bullet_line_frac"], config.max_bullet_line_frac),
        above("gopher_ellipsis_lines", "ellipsis_line_frac", signals["ellipsis_line_frac"],
              config.max_ellipsis_line_frac),
        below("gopher_alpha_words", "alpha_word_frac", signals["alpha_word_frac"], config.min_alpha_word_frac),
        below("gopher_stop_words", "stop_word_count", signals.get("stop_word_count", 0), config.min_stop_words,
              applies=stop_words is not None),
    ]
    return first_failure(checks, signals, disabled)


def load_bad_words(lines: Iterable[str]) -> re.Pattern | None:
    """One pattern matching any listed word or phrase as whole words, case-insensitively."""
    words = sorted({line.strip().lower() for line in lines if line.strip()})
    if not words:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?!\w)", re.IGNORECASE)


def c4(m: Measurements, config: C4Config, disabled: frozenset[str] = frozenset(),
       bad_words: re.Pattern | None = None) -> Verdict:
    javascript, policy = m.javascript_lines, m.policy_lines
    sentences = 0
    for line, words, terminal, is_js, is_policy in zip(m.lines, m.line_word_counts, m.c4_terminal_lines,
                                                       javascript, policy):
        if terminal and not is_js and not is_policy and words >= config.min_words_per_line:
            sentences += len(_SENTENCE_END.findall(line)) or 1
    lowered_text = m.text.lower()
    signals = {
        "c4_sentence_count": sentences,
        "javascript_line_frac": ratio(sum(javascript), len(m.lines)),
        "policy_line_frac": ratio(sum(policy), len(m.lines)),
    }
    bad_word = bad_words.search(m.text) if bad_words is not None else None
    checks = [
        Check("c4_lorem_ipsum", config.lorem_ipsum and "lorem ipsum" in lowered_text,
              Decision("text", "lorem ipsum", "contains")),
        Check("c4_curly_bracket", config.curly_bracket and "{" in m.text, Decision("text", "{", "contains")),
        above("c4_javascript_lines", "javascript_line_frac", signals["javascript_line_frac"],
              config.max_javascript_line_frac),
        above("c4_policy_lines", "policy_line_frac", signals["policy_line_frac"], config.max_policy_line_frac),
        below("c4_too_few_sentences", "c4_sentence_count", sentences, config.min_sentences),
        Check("c4_bad_words", bad_word is not None,
              Decision("text", bad_word.group(0) if bad_word else None, "contains bad word")),
    ]
    return first_failure(checks, signals, disabled)


def c4_trimmed_lines(m: Measurements, min_words: int) -> tuple[list[str], int]:
    """The lines a C4 pass without its terminal-punctuation rule keeps (FineWeb's rules read these),
    and their word count."""
    kept = [(line, words) for line, words, is_js, is_policy
            in zip(m.lines, m.line_word_counts, m.javascript_lines, m.policy_lines)
            if not is_js and not is_policy and words >= min_words]
    return [line for line, _ in kept], sum(words for _, words in kept)


def fineweb(m: Measurements, config: FineWebConfig, disabled: frozenset[str] = frozenset()) -> Verdict:
    lines, word_count = c4_trimmed_lines(m, config.c4_trim_min_words)
    signals = {
        "terminal_punct_line_frac": ratio(sum(line.endswith(TERMINAL_PUNCTUATION) for line in lines), len(lines)),
        "short_line_frac": ratio(sum(len(line) <= config.short_line_length for line in lines), len(lines)),
        "dup_line_char_frac": duplicate_fractions(lines)[1],
        "newline_word_ratio": ratio(max(len(lines) - 1, 0), word_count),
    }
    checks = [
        below("fineweb_terminal_punct_lines", "terminal_punct_line_frac", signals["terminal_punct_line_frac"],
              config.min_terminal_punct_line_frac),
        above("fineweb_short_lines", "short_line_frac", signals["short_line_frac"], config.max_short_line_frac),
        above("fineweb_dup_line_chars", "dup_line_char_frac", signals["dup_line_char_frac"],
              config.max_dup_line_char_frac),
        above("fineweb_list_ratio", "newline_word_ratio", signals["newline_word_ratio"],
              config.max_newline_word_ratio),
    ]
    return first_failure(checks, signals, disabled)


RULE_REASONS = (
    "gopher_dup_lines", "gopher_dup_paragraphs", "gopher_dup_line_chars", "gopher_dup_paragraph_chars",
    *(f"gopher_top_{n}gram" for n in (2, 3, 4)), *(f"gopher_dup_{n}gram" for n in range(5, 11)),
    "gopher_min_words", "gopher_max_words", "gopher_min_mean_word_length", "gopher_max_mean_word_length",
    "gopher_hash_ratio", "gopher_ellipsis_ratio", "gopher_bullet_lines", "gopher_ellipsis_lines",
    "gopher_alpha_words", "gopher_stop_words",
    "c4_lorem_ipsum", "c4_curly_bracket", "c4_javascript_lines", "c4_policy_lines", "c4_too_few_sentences",
    "c4_bad_words",
    "fineweb_terminal_punct_lines", "fineweb_short_lines", "fineweb_dup_line_chars", "fineweb_list_ratio",
    "quality_model_low_score",
)


def disabled_rules(config: QualityConfig) -> frozenset[str]:
    unknown = sorted(set(config.disabled_rules) - set(RULE_REASONS))
    if unknown:
        raise ConfigError(f"unknown rule in quality.disabled_rules: {unknown[0]}; known rules: {', '.join(RULE_REASONS)}")
    return frozenset(config.disabled_rules)


def judge_quality(text: str, lang: str | None, config: QualityConfig, bad_words: re.Pattern | None = None,
                  model_score: Callable[[str], float] | None = None) -> Verdict:
    """Apply the enabled rule sets in a fixed order (Gopher repetition, Gopher quality, C4, FineWeb,
    then the model score); the first failing rule names the reason, and all signals are kept."""
    disabled = disabled_rules(config)
    m = Measurements(text, lang)
    verdicts = []
    if config.gopher_repetition.enabled:
        verdicts.append(gopher_repetition(m, config.gopher_repetition, disabled))
    if config.gopher_quality.enabled:
        verdicts.append(gopher_quality(m, config.gopher_quality, disabled))
    if config.c4.enabled:
        verdicts.append(c4(m, config.c4, disabled, bad_words))
    if config.fineweb.enabled:
        verdicts.append(fineweb(m, config.fineweb, disabled))
    if model_score is not None:
        score = model_score(text)
        check = below("quality_model_low_score", "quality_model_score", score, config.model.threshold)
        verdicts.append(first_failure([check], {"quality_model_score": score}, disabled))
    signals = {key: value for verdict in verdicts for key, value in verdict.signals.items()}
    failed = next((verdict for verdict in verdicts if not verdict.keep), None)
    return Verdict(failed.reason if failed else None, signals, failed.decision if failed else None)


class QualityJudge:
    """Document → Verdict; loads the bad-words list and the classifier (if configured) once when built."""

    def __init__(self, config: QualityConfig):
        disabled_rules(config)
        self._config = config
        self._bad_words = load_bad_words(_read_lines(config.c4.bad_words_file)) if config.c4.bad_words_file else None
        self._model_score = None
        if config.model.model:
            if not 0.0 <= config.model.threshold <= 1.0:
                raise ConfigError(f"quality.model.threshold must be between 0 and 1, got {config.model.threshold}")
            model = load_fasttext_model(config.model.model)
            check_classifier(model, config.model.model)
            self._model_score = lambda text: positive_probability(model, text)

    def __call__(self, doc: dict) -> Verdict:
        return judge_quality(doc.get("text") or "", doc.get("lang"), self._config, self._bad_words, self._model_score)


def _read_lines(path: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.open(path) as f:
            return f.read().decode("utf-8").splitlines()
    except Exception as error:
        raise ConfigError(f"cannot read quality.c4.bad_words_file {path}: {error}") from None
