"""Group (key, value) pairs on disk instead of in a shuffle: an external merge sort, a shard at a time.

A local runner (FnApiRunner) holds everything a shuffle carries in its one process, decoded, until
the stage that reads it runs; what grows with the corpus must not cross one. Here each bundle cuts
its pairs into runs of bounded size, sorted by key, one file per shard (a stable hash of the key)
under a scratch folder; only the names of the run files cross a shuffle. A shard's runs are then
merged back into key order, one shard per element, so on a cluster the shards are merged in
parallel and locally one at a time. The writers (`pipeline.stages.write`) sort records this way,
dedup groups its exact duplicates and LSH buckets this way (`GroupOnDisk`), and its verdict table
is sorted this way (`pipeline.stages.lookup`).
"""
from __future__ import annotations

import heapq
import itertools
import pickle
import uuid
from contextlib import ExitStack
from typing import Any, Iterable, Iterator, Mapping

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from common.fileio import ensure_dir, join
from common.hashing import bucket
from pipeline.resume import frame, frames
from pipeline.stages.sorted_rows import fewer_runs

_KEY_ENCODING = ("utf-8", "surrogatepass")


def write_run(prefix: str, rows: Iterable[tuple[str, bytes]]) -> str:
    """A run file `prefix-<unique>.run` of sorted (key, payload) rows, such as (id, pickled record):
    each the key's frame, then the payload's."""
    path = f"{prefix}-{uuid.uuid4().hex}.run"
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as run:
        for key, payload in rows:
            run.write(frame(key.encode(*_KEY_ENCODING)) + frame(payload))
    return path


def _run_rows(stack: ExitStack, path: str) -> Iterator[tuple[str, bytes]]:
    stream = stack.enter_context(FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED))
    entries = (payload for _, payload in frames(stream))
    return ((key.decode(*_KEY_ENCODING), payload) for key, payload in zip(entries, entries))


def merged_runs(runs: list[str]) -> Iterator[tuple[str, bytes]]:
    """The rows of the run files `runs` in key order (`fewer_runs` first, when there are many)."""
    runs = fewer_runs(runs, lambda group: write_run(group[0].rsplit("-", 1)[0] + "-merged", merged_runs(group)))
    with ExitStack() as stack:
        yield from heapq.merge(*(_run_rows(stack, run) for run in runs), key=lambda row: row[0])


def merged_groups(runs: list[str], prefix: int | None = None) -> Iterator[tuple[str, Iterator[Any]]]:
    """(key, its values, unpickled, in key order) for every key of the run files `runs`, in key
    order; with `prefix`, a group is every key that starts with the same `prefix` characters."""
    for key, rows in itertools.groupby(merged_runs(sorted(runs)), key=lambda row: row[0][:prefix]):
        yield key, (pickle.loads(payload) for _, payload in rows)


class SortedRuns(beam.DoFn):
    """(key, value) → nothing, until `run_bytes` of pickled values have come: then one run file
    per shard they fall in (by a stable hash of the key, or of its first `prefix` characters),
    sorted by key, and (shard, run file) for each. Keys are strings; what is left goes out at the
    bundle's end."""

    def __init__(self, scratch_dir: str, name: str, num_shards: int, run_bytes: int, prefix: int | None = None):
        self._scratch_dir = scratch_dir
        self._name = name
        self._num_shards = num_shards
        self._run_bytes = run_bytes
        self._prefix = prefix

    def setup(self):
        ensure_dir(self._scratch_dir)

    def start_bundle(self):
        self._buffered: dict[int, list[tuple[str, bytes]]] = {}
        self._size = 0

    def process(self, pair):
        key, value = pair
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self._buffered.setdefault(bucket(key[:self._prefix], self._num_shards), []).append((key, payload))
        self._size += len(payload)
        if self._size >= self._run_bytes:
            yield from self._flush()

    def finish_bundle(self):
        for shard_and_run in self._flush():
            yield GlobalWindows.windowed_value(shard_and_run)

    def _flush(self) -> Iterator[tuple[int, str]]:
        for shard, rows in sorted(self._buffered.items()):
            rows.sort(key=lambda row: row[0])
            yield shard, write_run(join(self._scratch_dir, f"sort-{self._name}-{shard:05d}"), rows)
        self._buffered, self._size = {}, 0


def sorted_runs(streams: tuple, scratch_dir: str, name: str, num_shards: int, run_bytes: int,
                prefix: int | None = None):
    """The (shard, run file) of every run that `SortedRuns` cuts from the (key, value) `streams`
    (each sorted into runs as it comes, never flattened first: a runner may hold a flatten)."""
    runs = tuple(stream | f"SortedRuns{i}" >> beam.ParDo(SortedRuns(scratch_dir, name, num_shards, run_bytes, prefix))
                 for i, stream in enumerate(streams))
    return runs | "AllRuns" >> beam.Flatten()


class _GroupsOfShard(beam.DoFn):
    """shard → what `group_fn` (a DoFn taking (key, values)) gives for each group of the shard's runs."""

    def __init__(self, group_fn: beam.DoFn, prefix: int | None):
        self._group_fn = group_fn
        self._prefix = prefix

    def setup(self):
        self._group_fn.setup()

    def process(self, shard: int, runs: "Mapping[int, list[str]]"):
        for group in merged_groups(runs[shard], self._prefix):
            yield from self._group_fn.process(group)

    def teardown(self):
        self._group_fn.teardown()


class GroupOnDisk(beam.PTransform):
    """`streams | GroupOnDisk(scratch_dir, name, num_shards, group_fn)`: as `beam.GroupByKey()`
    then `beam.ParDo(group_fn)`, for (key, value) pairs with string keys, but with the groups on disk
    (runs of at most `run_mb` of pickled values, under `scratch_dir`, which the caller deletes once
    the run is over) and each group's values a one-pass iterator. `streams` is a PCollection or a
    tuple of them. `group_fn` must not need `start_bundle` or `finish_bundle`.

    With `prefix`, a group is every key that starts with the same `prefix` characters (its shard
    is that of the prefix) and its values come in the order of their whole keys: a secondary
    sort. With `tags`, `group_fn` also yields `TaggedOutput`s of those tags, and the result is
    the outputs, the main one under `main`."""

    def __init__(self, scratch_dir: str, name: str, num_shards: int, group_fn: beam.DoFn, run_mb: float = 8.0,
                 prefix: int | None = None, tags: tuple[str, ...] = (), main: str = "main"):
        super().__init__()
        self._scratch_dir = scratch_dir
        self._name = name
        self._num_shards = num_shards
        self._group_fn = group_fn
        self._run_bytes = max(1, int(run_mb * 1024**2))
        self._prefix = prefix
        self._tags = tags
        self._main = main

    def expand(self, streams):
        streams = streams if isinstance(streams, tuple) else (streams,)
        runs = sorted_runs(streams, self._scratch_dir, self._name, self._num_shards, self._run_bytes, self._prefix)
        groups = beam.ParDo(_GroupsOfShard(self._group_fn, self._prefix), beam.pvalue.AsMultiMap(runs))
        if self._tags:
            groups = groups.with_outputs(*self._tags, main=self._main)
        return (streams[0].pipeline
                | "AllShards" >> beam.Create(list(range(self._num_shards)))
                | "Groups" >> groups)
