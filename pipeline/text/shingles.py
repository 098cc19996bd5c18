"""Text → the set of 64-bit shingle hashes that MinHash and the Jaccard check both work on.

Near-duplicate pages differ in case, punctuation and spacing far more often than in words, so
text is normalised before it is cut into shingles: Unicode NFKC, lowercase, every punctuation or
symbol character turned into a space, whitespace runs folded to one space.

Shingles are runs of `size` consecutive words, or of `size` characters for scripts written
without spaces (Chinese, Japanese, Thai, ...), where a "word" would be a whole sentence.
Each token is hashed once (xxh64 of its UTF-8 bytes for words, the finalised code point for
characters) and each window of `size` token hashes is mixed into one 64-bit shingle hash with
NumPy, so no Python code runs per shingle.
"""
from __future__ import annotations

import functools
import sys
import unicodedata

import numpy as np
import xxhash

from pipeline.text.words import writes_spaces

_U64 = np.uint64
# Multipliers of the MurmurHash3 64-bit finaliser.
_MIX1 = _U64(0xFF51AFD7ED558CCD)
_MIX2 = _U64(0xC4CEB9FE1A85EC53)
_GOLDEN = _U64(0x9E3779B97F4A7C15)


@functools.cache
def _to_space() -> dict[int, str]:
    """str.translate table mapping every Unicode punctuation (P*), symbol (S*), separator (Z*)
    and control character (Cc) to an ASCII space, so that bytes.split() finds every word break."""
    return {
        code: " "
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code))[0] in "PSZ" or unicodedata.category(chr(code)) == "Cc"
    }


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().translate(_to_space())


def normalize(text: str) -> str:
    """Case-, punctuation- and whitespace-insensitive form of `text`, for shingling."""
    return " ".join(_fold(text).split())


def uses_char_shingles(text: str, lang: str | None, min_space_ratio: float) -> bool:
    """True for languages written without spaces, or for text with too few spaces to have words
    (a page whose language stage did not run, or mislabelled CJK text). Spaces are counted in the
    text as written: punctuation, which normalising turns into spaces, says nothing about words."""
    if lang and not writes_spaces(lang.split("_")[0].split("-")[0].lower()):
        return True
    spaces = text.count(" ") + text.count("\n")
    return len(text) > 0 and spaces / len(text) < min_space_ratio


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit avalanche finaliser, in place (uint64 arithmetic wraps by design)."""
    h ^= h >> _U64(33)
    h *= _MIX1
    h ^= h >> _U64(33)
    h *= _MIX2
    h ^= h >> _U64(33)
    return h


@functools.cache
def _position_multipliers(size: int) -> np.ndarray:
    """One odd, well-mixed 64-bit multiplier per position in a window."""
    with np.errstate(over="ignore"):
        return _fmix64(np.arange(1, size + 1, dtype=_U64) * _GOLDEN) | _U64(1)


def _window_hashes(token_hashes: np.ndarray, size: int) -> np.ndarray:
    """One 64-bit hash per window of `size` consecutive tokens: the finalised sum of each token
    hash times its position's multiplier, so order matters ("a b" and "b a" differ).

    A text shorter than one window still gets one shingle: all of its tokens.
    """
    size = max(1, min(size, len(token_hashes)))
    count = len(token_hashes) - size + 1
    multipliers = _position_multipliers(size)
    with np.errstate(over="ignore"):
        mixed = token_hashes[:count] * multipliers[0]
        for position in range(1, size):
            mixed += token_hashes[position:position + count] * multipliers[position]
        mixed ^= _U64(size)
        return _fmix64(mixed)


def shingle_hashes(text: str, size: int, char_size: int, lang: str | None = None,
                   min_space_ratio: float = 0.05, chars_only: bool = False) -> np.ndarray:
    """Sorted, unique uint64 hashes of the shingles of `text` (empty when it has no content):
    runs of `size` words, or of `char_size` characters where `chars_only` or
    `uses_char_shingles` says so."""
    folded = _fold(text)
    if chars_only or uses_char_shingles(text, lang, min_space_ratio):
        letters = "".join(folded.split())
        if not letters:
            return np.empty(0, dtype=_U64)
        code_points = np.frombuffer(letters.encode("utf-32-le"), dtype=np.uint32)
        tokens = _fmix64(code_points.astype(_U64))
        return _sorted_unique(_window_hashes(tokens, char_size))
    words = folded.encode("utf-8").split()
    if not words:
        return np.empty(0, dtype=_U64)
    tokens = np.fromiter(map(xxhash.xxh64_intdigest, words), dtype=_U64, count=len(words))
    return _sorted_unique(_window_hashes(tokens, size))


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    # np.unique's generality costs tens of microseconds per call; this is all a document needs.
    values = np.sort(values)
    keep = np.empty(len(values), dtype=bool)
    keep[:1] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique hash arrays (0 when both are empty)."""
    union = len(a) + len(b)
    if union == 0:
        return 0.0
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (union - common)


def content_hash(text: str) -> str:
    """Key of exact deduplication: 128-bit xxh3 of the text with outer whitespace stripped."""
    return xxhash.xxh3_128_hexdigest(text.strip().encode("utf-8"))
