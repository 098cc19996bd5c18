"""A lookup side input that stays small however many entries it has: a file on disk and an index.

Beam's map side inputs (`AsDict`, `AsMultiMap`) fetch each key looked up from the runner, decode it
and cache it for the bundle, and FnApiRunner keeps every entry, encoded, until the pipeline ends:
measured on the 10 GB scale run, some 1.2 KB of memory per key looked up, in a step that looks up
every duplicate of the corpus. `WriteLookup` writes (key, value) pairs into one file instead, sorted
by a 64-bit digest of the key (an external merge sort, as the writers do), and hands on a
`DiskMultiMap`: the file's path and, per distinct digest, where its entries end: 16 bytes a key.
The pairs are sorted on disk first (`pipeline.stages.sorted_runs`), in runs of `_RUN_BYTES`.
"""
from __future__ import annotations

import array
import io
import itertools
import pickle
import uuid
from typing import Any, Callable, Iterable, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from common.fileio import join
from pipeline.resume import frame, frames
from pipeline.stages.sorted_runs import merged_runs, sorted_runs

_RUN_BYTES = 8 * 1024**2  # pickled entries a bundle holds before it sorts them into a run file


class DiskMultiMap(NamedTuple):
    """The entries of a `WriteLookup`: `path` holds them as frames of pickled (key, value), grouped
    by the digest of their key in ascending order; the entries of `digests[i]` end at byte `ends[i]`
    and start where those of `digests[i - 1]` end (at 0 for the first)."""
    path: str
    digests: np.ndarray
    ends: np.ndarray

    def values(self, key: Any, digest: int, read: Callable[[tuple[str, int, int]], bytes]) -> list:
        """The values of `key` (whose digest is `digest`), in no particular order; `read` gives
        the bytes at (path, offset, length), such as `SpillReader.bytes_at`."""
        index = int(np.searchsorted(self.digests, np.uint64(digest)))
        if index == len(self.digests) or int(self.digests[index]) != digest:
            return []
        start = int(self.ends[index - 1]) if index else 0
        data = read((self.path, start, int(self.ends[index]) - start))
        entries = (pickle.loads(payload) for _, payload in frames(io.BytesIO(data)))
        return [value for entry_key, value in entries if entry_key == key]


def _by_digest(entry, digest_of: Callable[[Any], int]) -> tuple[str, Any]:
    # `merged_runs` orders keys as strings: zero-padded hexadecimal sorts as the number does.
    return f"{digest_of(entry[0]):016x}", entry


def write_table(runs: Iterable[str], path: str) -> DiskMultiMap:
    """Merge the run files `runs` into the table file `path`, and index it."""
    digests, ends, offset = array.array("Q"), array.array("Q"), 0
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as table:
        for hex_digest, rows in itertools.groupby(merged_runs(sorted(runs)), key=lambda row: row[0]):
            for _, payload in rows:
                entry = frame(payload)
                table.write(entry)
                offset += len(entry)
            digests.append(int(hex_digest, 16))
            ends.append(offset)
    return DiskMultiMap(path, np.frombuffer(digests, dtype=np.uint64), np.frombuffer(ends, dtype=np.uint64))


class WriteLookup(beam.PTransform):
    """`pairs | WriteLookup(scratch_dir, name, digest_of)` → one `DiskMultiMap` of the (key, value)
    `pairs` (a side input with `beam.pvalue.AsSingleton`), its file and runs under `scratch_dir`
    (the caller deletes it once the run is over). `digest_of` maps a key to a number below 2**64,
    the same for equal keys; a module-level function (it travels to the workers)."""

    def __init__(self, scratch_dir: str, name: str, digest_of: Callable[[Any], int]):
        super().__init__()
        self._scratch_dir = scratch_dir
        self._name = name
        self._digest_of = digest_of

    def expand(self, pairs):
        path = join(self._scratch_dir, f"lookup-{self._name}-{uuid.uuid4().hex}.table")
        keyed = pairs | "ByDigest" >> beam.Map(_by_digest, self._digest_of)
        return (sorted_runs((keyed,), self._scratch_dir, f"lookup-{self._name}", 1, _RUN_BYTES)
                | "RunFiles" >> beam.Values()
                | "AllRunFiles" >> beam.combiners.ToList()
                | "Table" >> beam.Map(write_table, path))
