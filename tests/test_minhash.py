"""Pure dedup functions: normalisation, shingles, MinHash signatures, LSH parameters, config."""
from __future__ import annotations

from pathlib import Path

import datasketch
import numpy as np
import pytest
from datasketch.lsh import _optimal_param

from common.config_io import ConfigError, from_dict
from pipeline.config import DedupConfig
from pipeline.text.line_dedup import line_key, line_keys, remove_lines, strip_from
from pipeline.text.lsh import band_keys, holds, key_digest, optimal_bands_rows, text_digest
from pipeline.text.minhash import SCRATCH_VALUES, MinHasher, check_config, estimate_jaccard, permutations, shingles_of
from pipeline.text.shingles import content_hash, jaccard, normalize, shingle_hashes, uses_char_shingles

SHAKESPEARE = (Path(__file__).parent / "data" / "dedup" / "tinyshakespeare-head.txt").read_text(encoding="utf-8")
WORDS = SHAKESPEARE.split()


def shingles(text: str, lang: str | None = None) -> np.ndarray:
    return shingle_hashes(text, size=5, char_size=5, lang=lang)


def test_normalize_folds_case_punctuation_and_whitespace():
    assert normalize("  Hello,\tWORLD!!  It's\n\n“fine” — ok ") == "hello world it s fine ok"
    assert normalize("ｆｕｌｌ　ｗｉｄｔｈ") == "full width"  # NFKC
    assert normalize("...!?") == ""


def test_shingles_ignore_formatting_but_not_word_order():
    text = " ".join(WORDS[:60])
    noisy = "  ".join(WORDS[:60]).upper().replace(",", " ;; ")
    assert np.array_equal(shingles(text), shingles(noisy))
    assert not np.array_equal(shingles(text), shingles(" ".join(reversed(WORDS[:60]))))
    hashes = shingles(text)
    assert hashes.dtype == np.uint64 and np.all(np.diff(hashes.astype(np.float64)) > 0)  # sorted, unique
    assert len(hashes) == len(normalize(text).split()) - 4


def test_short_and_empty_texts():
    assert len(shingles("two words")) == 1
    assert len(shingles("")) == 0 and len(shingles(" !! ")) == 0
    assert not np.array_equal(shingles("two words"), shingles("words two"))


def test_char_shingles_for_languages_without_spaces():
    chinese = "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。"
    assert uses_char_shingles(chinese, None, 0.05)  # detected from the text alone
    assert not uses_char_shingles(SHAKESPEARE, None, 0.05)
    assert uses_char_shingles("a b c", "ja", 0.05) and not uses_char_shingles("a b c", "en", 0.05)
    hashes = shingles(chinese, lang="zh")
    assert len(hashes) == len(normalize(chinese).replace(" ", "")) - 4
    edited = chinese.replace("良心", "良知")
    assert 0.6 < jaccard(hashes, shingles(edited, lang="zh")) < 1.0
    english = "It is a truth universally acknowledged"
    assert len(shingles_of(english, "en", DedupConfig(shingle_kind="char", char_shingle_size=4))) == 33 - 3  # 33 letters
    assert len(shingles_of(english, "en", DedupConfig(shingle_size=3))) == 6 - 2


def test_jaccard_and_content_hash():
    a = np.array([1, 2, 3, 4], dtype=np.uint64)
    b = np.array([3, 4, 5, 6], dtype=np.uint64)
    assert jaccard(a, b) == pytest.approx(2 / 6)
    assert jaccard(a, a) == 1.0 and jaccard(a[:0], b[:0]) == 0.0
    assert content_hash(" some text\n") == content_hash("some text")
    assert content_hash("some text") != content_hash("some text.")


def test_permutations_are_seeded():
    a, b = permutations(64, 7)
    assert a.dtype == b.dtype == np.uint64 and len(set(a.tolist())) == 64
    assert np.array_equal(a, permutations(64, 7)[0]) and not np.array_equal(a, permutations(64, 8)[0])
    assert a.min() < 2**60 and a.max() > 2**63  # spread over the whole 64-bit range


@pytest.mark.parametrize("scratch_values", [SCRATCH_VALUES, 1000, 1])  # one block, a few, one permutation at a time
def test_signature_is_multiply_add_shift(scratch_values):
    minhasher = MinHasher(num_perm=32, seed=3, scratch_values=scratch_values)
    a, b = permutations(32, 3)
    edge = [0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1]
    values = np.concatenate([np.random.default_rng(0).integers(0, 2**64, 300, dtype=np.uint64),
                             np.array(edge, dtype=np.uint64)])
    keys = [(int(x) ^ (int(x) >> 32)) & 0xFFFFFFFF for x in values]
    expected = [min(((int(ai) * key + int(bi)) % 2**64) >> 32 for key in keys) for ai, bi in zip(a, b)]
    assert minhasher.signature(values).dtype == np.uint32
    assert minhasher.signature(values).tolist() == expected
    assert minhasher.signature(values[::-1]).tolist() == expected
    assert np.all(minhasher.signature(values[:0]) == 2**32 - 1)


def test_estimates_as_good_as_datasketch_on_real_text():
    """Both estimators track the true Jaccard of real text pairs equally well and without bias."""
    minhasher = MinHasher(num_perm=128, seed=1)

    def datasketch_minhash(text):
        words = normalize(text).split(" ")
        minhash = datasketch.MinHash(num_perm=128, seed=1)
        for i in range(len(words) - 4):
            minhash.update(" ".join(words[i:i + 5]).encode("utf-8"))
        return minhash

    rows = []
    for i, shift in enumerate(range(0, 300, 5)):  # 60 overlapping passages: Jaccard from 1 down to ~0.15
        start = i * 100 % (len(WORDS) - 700)
        a = " ".join(WORDS[start:start + 400])
        b = " ".join(WORDS[start + shift:start + shift + 400])
        true = jaccard(shingles(a), shingles(b))
        ours = estimate_jaccard(minhasher.signature(shingles(a)), minhasher.signature(shingles(b)))
        rows.append((true, ours, datasketch_minhash(a).jaccard(datasketch_minhash(b))))
    true, ours, reference = np.array(rows).T
    assert true.max() == 1.0 and true.min() < 0.2
    assert np.abs(ours - true).mean() < 0.04 and np.abs(reference - true).mean() < 0.04
    assert abs((ours - true).mean()) < 0.01  # unbiased
    assert abs(np.abs(ours - true).mean() - np.abs(reference - true).mean()) < 0.01
    assert np.abs(ours - reference).max() < 0.2  # both have a standard deviation of at most 0.045


@pytest.mark.parametrize("threshold, num_perm", [(0.8, 128), (0.7, 112), (0.5, 64), (0.9, 256)])
def test_band_choice_matches_datasketch(threshold, num_perm):
    assert optimal_bands_rows(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_band_keys_match_only_equal_bands():
    signature = np.arange(12, dtype=np.uint64)
    changed = signature.copy()
    changed[5] = 99
    keys, changed_keys = band_keys(signature, 3, 4), band_keys(changed, 3, 4)
    assert len(set(keys)) == 3
    assert [k == c for k, c in zip(keys, changed_keys)] == [True, False, True]


def test_config_defaults_and_errors():
    assert check_config(DedupConfig()) == (16, 8)  # recall first: candidates are verified
    assert check_config(DedupConfig(verify_jaccard=False)) == (9, 13)  # datasketch's balanced choice
    config = from_dict(DedupConfig, {"threshold": 0.7, "num_perm": 112, "keep": "highest_score", "bands": None})
    assert check_config(config) == _optimal_param(0.7, 112, 0.05, 0.95)
    assert check_config(DedupConfig(bands=20, rows=5)) == (20, 5)
    for bad in (DedupConfig(threshold=0.0), DedupConfig(bands=4), DedupConfig(bands=20, rows=7),
                DedupConfig(shingle_size=0), DedupConfig(max_cc_rounds=0), DedupConfig(false_positive_weight=2.0),
                DedupConfig(line_dedup_min_docs=1)):
        with pytest.raises(ConfigError, match="dedup"):
            check_config(bad)
    with pytest.raises(ConfigError, match="keep"):
        from_dict(DedupConfig, {"keep": "newest"})


def test_line_keys_and_removal():
    text = "Jump to navigation\n\n  Real content here.\r\nJump to navigation  \nLast line"
    keys = line_keys(text)
    assert len(keys) == 3 and line_key("  ") is None
    assert line_key("Jump to navigation") == line_key("  Jump to navigation ") != line_key("jump to navigation")
    assert remove_lines(text, {line_key("Jump to navigation")}) == "\n  Real content here.\r\nLast line"
    assert remove_lines(text, set()) == text
    assert remove_lines("only boilerplate\n", {line_key("only boilerplate")}) == ""


def test_lines_stay_in_the_first_document_only():
    documents = [("b", "1"), ("a", "2"), ("c", "0")]
    assert list(strip_from(documents, 2)) == [("b", "1"), ("c", "0")]  # ("a", "2") is first
    assert list(strip_from(documents, 3)) == [("b", "1"), ("c", "0")]
    assert list(strip_from(documents, 4)) == []  # in too few documents
    assert list(strip_from(documents[:1], 2)) == []


def test_key_digest_is_a_stable_64_bit_digest_of_a_band_key():
    first, second = b"\x00\x01first", b"\x00\x02second"
    assert key_digest(first) == key_digest(b"\x00\x01first") != key_digest(second)
    assert 0 <= key_digest(first) < 2**64


def test_a_sorted_digest_array_holds_exactly_its_digests():
    digests = np.array([5, 2**63 + 7, 2**64 - 1], dtype=np.uint64)
    assert all(holds(digests, d) for d in (5, 2**63 + 7, 2**64 - 1))
    assert not any(holds(digests, d) for d in (0, 6, 2**63, 2**64 - 2))
    assert not holds(np.empty(0, dtype=np.uint64), 5)


def test_text_digest_counts_any_string_as_its_utf8_bytes():
    assert text_digest("é") == key_digest("é".encode()) != text_digest("e")
    assert text_digest("lone \udc80 surrogate") == key_digest("lone \udc80 surrogate".encode("utf-8", "surrogatepass"))
