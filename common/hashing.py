"""Stable hashes: the same string gives the same number on every machine, run and Python version.

Python's `hash()` is salted per process, so anything that decides where a document goes (which
output shard, train or validation) must use these instead.
"""
from __future__ import annotations

import xxhash


def stable_hash(key: str, seed: int = 0) -> int:
    """64-bit unsigned hash of `key`."""
    return xxhash.xxh64_intdigest(key.encode("utf-8"), seed=seed)


def bucket(key: str, num_buckets: int, seed: int = 0) -> int:
    """Which of `num_buckets` buckets `key` falls into."""
    return stable_hash(key, seed) % num_buckets


def unit_interval(key: str, seed: int = 0) -> float:
    """A number in [0, 1) derived from `key`, for deterministic sampling and splits."""
    return stable_hash(key, seed) / 2.0**64
