"""Word splitting for the quality rules, for languages written with and without spaces.

Splitting follows the script of each character rather than the document's language label, because
web pages mix scripts (an English page quoting Chinese, a Japanese page with English product names):
runs of letters and digits are words, and each character of a script written without spaces
(Han, kana, Thai, Lao, Khmer, Myanmar, Tibetan) is a word of its own, as character-level statistics
are the usual dependency-free stand-in for a dictionary segmenter. Punctuation and symbols are not
words. The language label decides only which word-based rules make sense (`writes_spaces`).
"""
from __future__ import annotations

import regex

# Scripts written without spaces between words.
_UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}"
# A word: one character of an unspaced script (with its combining marks), or a run of letters,
# combining marks and digits of any other script, joined across inner apostrophes, hyphens and dots
# ("don't", "e-mail", "3.5").
_SPACED_RUN = rf"[^\P{{L}}{_UNSPACED}]|[\p{{M}}\p{{N}}]"
_WORD = regex.compile(rf"[{_UNSPACED}]\p{{M}}*|(?:{_SPACED_RUN})+(?:['’\-.](?:{_SPACED_RUN})+)*")
# The same for text without unspaced scripts (most of the web), which a simpler pattern splits faster.
_RUN = r"[\p{L}\p{M}\p{N}]+"
_SPACED_WORD = regex.compile(rf"{_RUN}(?:['’\-.]{_RUN})*")
_HAS_UNSPACED = regex.compile(rf"[{_UNSPACED}]")

# lid.176 codes of languages written without spaces between words.
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "wuu", "yue"})


def split_words(text: str) -> list[str]:
    """The words of `text`, in order, punctuation and symbols left out."""
    pattern = _WORD if _HAS_UNSPACED.search(text) else _SPACED_WORD
    return pattern.findall(text)


def writes_spaces(lang: str | None) -> bool:
    """Whether words of `lang` are separated by spaces (True when the language is unknown)."""
    return lang not in UNSPACED_LANGUAGES


def tokens_per_word(lang: str | None) -> int:
    """About how many `split_words` tokens make one real word of `lang`: a Chinese or Japanese word
    averages about two characters, so word n-gram statistics use character 2n-grams there."""
    return 1 if writes_spaces(lang) else 2

