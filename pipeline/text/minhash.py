"""MinHash signatures, and the check of the dedup stage's configuration (`DedupConfig`, in pipeline/config.py).

Permutations are Dietzfelbinger's multiply-add-shift family ("Universal hashing and k-wise
independent functions via integer multiplication and division", STACS 1996):
h_i(x) = ((a_i * x + b_i) mod 2^64) >> 32, with a_i, b_i uniform 64-bit values and x a 32-bit key.
For 32-bit keys and 32-bit outputs in 64-bit words it is strongly universal (2-independent), like
datasketch's (a * x + b) mod (2^61 - 1), yet it needs no modular reduction: uint64 arithmetic
wraps by itself. The key is the 64-bit shingle hash folded to 32 bits (its two halves xor-ed).

Because `>> 32` is monotone, the minimum of the shifted values is the shifted minimum of the full
64-bit values, so a document costs one multiply and one add per shingle x permutation and one
`min` reduction, all in NumPy. `tests/test_minhash.py` checks that its Jaccard estimates are as
good as datasketch's on real text.
"""
from __future__ import annotations

import numpy as np

from common.config_io import ConfigError
from pipeline.config import DedupConfig
from pipeline.text.lsh import optimal_bands_rows
from pipeline.text.shingles import shingle_hashes

_U64 = np.uint64
_HALF = _U64(32)
# Largest (permutations x shingles) block of uint64 values computed at once (8 MiB): a typical
# page is one block; a book-length document is done a few permutations at a time.
SCRATCH_VALUES = 1 << 20


def check_config(config: DedupConfig) -> tuple[int, int]:
    """Validate `config`; return the LSH (bands, rows) it implies. Raises a one-line ConfigError."""
    if not 0.0 < config.threshold <= 1.0:
        raise ConfigError(f"dedup.threshold must be in (0, 1], got {config.threshold}")
    for name in ("shingle_size", "char_shingle_size", "num_perm", "max_cc_rounds", "all_pairs_bucket_limit"):
        if getattr(config, name) < 1:
            raise ConfigError(f"dedup.{name} must be at least 1, got {getattr(config, name)}")
    if config.line_dedup_min_docs < 2:
        raise ConfigError(f"dedup.line_dedup_min_docs must be at least 2, got {config.line_dedup_min_docs}")
    if (config.bands is None) != (config.rows is None):
        raise ConfigError("dedup.bands and dedup.rows must be given together (or both left unset)")
    if config.bands is None:
        weight = config.false_positive_weight
        if weight is None:
            weight = 0.05 if config.verify_jaccard else 0.5
        if not 0.0 <= weight <= 1.0:
            raise ConfigError(f"dedup.false_positive_weight must be in [0, 1], got {weight}")
        return optimal_bands_rows(config.threshold, config.num_perm, weight, 1.0 - weight)
    if config.bands < 1 or config.rows < 1 or config.bands * config.rows > config.num_perm:
        raise ConfigError(f"dedup.bands x dedup.rows must be between 1 and num_perm={config.num_perm}, "
                          f"got {config.bands} x {config.rows}")
    return config.bands, config.rows


def shingles_of(text: str, lang: str | None, config: DedupConfig) -> np.ndarray:
    """The shingle hashes `config` asks for, of a document's text and language."""
    return shingle_hashes(text, config.shingle_size, config.char_shingle_size, lang,
                          config.min_space_ratio, chars_only=config.shingle_kind == "char")


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Parameters (a, b) of the `num_perm` hash functions: uniform uint64 values from a seeded PCG64."""
    generator = np.random.default_rng(seed)
    a = generator.integers(0, 1 << 64, num_perm, dtype=_U64, endpoint=False)
    b = generator.integers(0, 1 << 64, num_perm, dtype=_U64, endpoint=False)
    return a, b


def fold_to_32_bits(hashes: np.ndarray) -> np.ndarray:
    """The keys the permutations hash: each 64-bit hash with its high half xor-ed into its low half."""
    hashes = np.asarray(hashes, dtype=_U64)
    return (hashes ^ (hashes >> _HALF)).astype(np.uint32)


class MinHasher:
    """Computes MinHash signatures for one set of permutation parameters."""

    def __init__(self, num_perm: int = 128, seed: int = 1, scratch_values: int = SCRATCH_VALUES):
        a, b = permutations(num_perm, seed)
        self.num_perm = num_perm
        self._a = a[:, None]
        self._b = b[:, None]
        self._scratch_values = scratch_values

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """uint32 signature of a set of 64-bit shingle hashes: per permutation, the minimum of
        ((a * x + b) mod 2^64) >> 32 over the folded keys x. An empty set gives all 2^32 - 1;
        the dedup stage gives such documents no LSH bucket."""
        keys = fold_to_32_bits(hashes)
        if not len(keys):
            return np.full(self.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        minima = np.empty(self.num_perm, dtype=_U64)
        step = max(1, self._scratch_values // len(keys))
        for start in range(0, self.num_perm, step):
            values = self._a[start:start + step] * keys  # uint32 keys widen to uint64; the product wraps
            values += self._b[start:start + step]
            np.minimum.reduce(values, axis=1, out=minima[start:start + step])
        minima >>= _HALF
        return minima.astype(np.uint32)


def estimate_jaccard(signature_a: np.ndarray, signature_b: np.ndarray) -> float:
    """Share of permutations whose minima agree: an unbiased estimate of the Jaccard similarity."""
    if len(signature_a) != len(signature_b):
        raise ValueError(f"signatures of different lengths: {len(signature_a)} and {len(signature_b)}")
    return float(np.count_nonzero(signature_a == signature_b)) / len(signature_a)
