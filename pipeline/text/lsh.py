"""Locality-sensitive hashing of MinHash signatures: the band/row choice and the bucket keys.

Two documents of Jaccard similarity s share at least one of b bands of r rows with probability
1 - (1 - s^r)^b. The (b, r) pair is chosen, as datasketch's MinHashLSH does, to minimise the
weighted area under that curve below the threshold (false positives) plus the area above the
threshold where it misses (false negatives).
"""
from __future__ import annotations

import functools
import struct

import numpy as np
import xxhash

# Points of the Simpson rule for the two areas; the optimum is stable well before this.
_INTEGRATION_POINTS = 1001


def _simpson(values: np.ndarray, start: float, stop: float) -> np.ndarray:
    """Simpson's rule along the last axis of `values`, sampled at _INTEGRATION_POINTS points."""
    step = (stop - start) / (values.shape[-1] - 1)
    weights = np.ones(values.shape[-1])
    weights[1:-1:2] = 4
    weights[2:-1:2] = 2
    return values @ weights * step / 3


@functools.cache
def optimal_bands_rows(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
                       false_negative_weight: float = 0.5) -> tuple[int, int]:
    """The (bands, rows), bands * rows <= num_perm, minimising the weighted error around `threshold`."""
    bands, rows = zip(*[(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)])
    b = np.array(bands, dtype=float)[:, None]
    r = np.array(rows, dtype=float)[:, None]
    below = np.linspace(0.0, threshold, _INTEGRATION_POINTS)[None, :]
    above = np.linspace(threshold, 1.0, _INTEGRATION_POINTS)[None, :]
    false_positive = _simpson(1 - (1 - below ** r) ** b, 0.0, threshold)
    false_negative = _simpson((1 - above ** r) ** b, threshold, 1.0)
    error = false_positive_weight * false_positive + false_negative_weight * false_negative
    best = int(np.argmin(error))  # first minimum: fewest bands among equals, as datasketch's scan
    return bands[best], rows[best]


def band_keys(signature: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One bucket key per band: the band's index and a 64-bit hash of its rows."""
    return [struct.pack(">HQ", band, xxhash.xxh3_64_intdigest(signature[band * rows:(band + 1) * rows].tobytes()))
            for band in range(bands)]


def holds(sorted_array: np.ndarray, digest: int) -> bool:
    """Whether `digest` is in `sorted_array`, a sorted uint64 array."""
    at = int(np.searchsorted(sorted_array, np.uint64(digest)))
    return at < len(sorted_array) and int(sorted_array[at]) == digest


def key_digest(key: bytes) -> int:
    """A band key as 8 bytes, to count keys compactly; two keys sharing a digest only cost a bucket
    that pairs nobody."""
    return xxhash.xxh3_64_intdigest(key)


def text_digest(text: str) -> int:
    """`text` (a content hash, a document key) as 8 bytes, counted the same way as band keys."""
    return key_digest(text.encode("utf-8", "surrogatepass"))
