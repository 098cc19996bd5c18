"""Write records as sorted, gzipped JSONL shards: the same records always give the same bytes.

The sort happens on disk, as an external merge sort: records are cut into sorted runs of bounded
size in files under a scratch folder, and each shard is written by merging its runs. No step holds
a shard, let alone the corpus, in memory, and no shuffle carries the records themselves (a local
runner would hold everything a shuffle carries), only the names of the run files.
"""
from __future__ import annotations

import heapq
import itertools
import json
import pickle
import uuid
from contextlib import ExitStack
from typing import Iterable, Iterator, Mapping

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from common.fileio import atomic_gzip_create, ensure_dir, join, jsonl_line, shard_name
from common.hashing import bucket
from pipeline.config import WorkConfig
from pipeline.resume import frame, frames
from pipeline.stages.sorted_rows import fewer_runs
from pipeline.stages.spill import SpillReader


_ID_ENCODING = ("utf-8", "surrogatepass")


def _record_id(record: dict) -> str:
    return record.get("id") or ""


def _record_order(record: dict) -> tuple[str, str]:
    # Ids should be unique, but ordering must stay total even if they are not.
    return _record_id(record), json.dumps(record, sort_keys=True, ensure_ascii=False)


class _SortedRuns(beam.DoFn):
    """record → nothing, until `run_bytes` of pickled records have come: then one sorted run file
    per shard they fall in, and (shard, run file) for each. What is left goes out at the bundle's end."""

    def __init__(self, scratch_dir: str, name: str, num_shards: int, run_bytes: int):
        self._scratch_dir = scratch_dir
        self._name = name
        self._num_shards = num_shards
        self._run_bytes = run_bytes

    def setup(self):
        ensure_dir(self._scratch_dir)

    def start_bundle(self):
        self._buffered: dict[int, list[tuple[str, bytes]]] = {}
        self._size = 0

    def process(self, record: dict):
        record_id = _record_id(record)
        payload = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        self._buffered.setdefault(bucket(record_id, self._num_shards), []).append((record_id, payload))
        self._size += len(payload)
        if self._size >= self._run_bytes:
            yield from self._flush()

    def finish_bundle(self):
        for shard_and_run in self._flush():
            yield GlobalWindows.windowed_value(shard_and_run)

    def _flush(self) -> Iterator[tuple[int, str]]:
        for shard, rows in sorted(self._buffered.items()):
            rows.sort(key=lambda row: row[0])
            yield shard, _write_run(join(self._scratch_dir, f"sort-{self._name}-{shard:05d}"), rows)
        self._buffered, self._size = {}, 0


def _write_run(prefix: str, rows: Iterable[tuple[str, bytes]]) -> str:
    """A run file `prefix-<unique>.run` of sorted (id, pickled record) rows: each the id's frame, then the record's."""
    path = f"{prefix}-{uuid.uuid4().hex}.run"
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as run:
        for record_id, payload in rows:
            run.write(frame(record_id.encode(*_ID_ENCODING)) + frame(payload))
    return path


def _run_rows(stack: ExitStack, path: str) -> Iterator[tuple[str, bytes]]:
    stream = stack.enter_context(FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED))
    entries = (payload for _, payload in frames(stream))
    return ((record_id.decode(*_ID_ENCODING), payload) for record_id, payload in zip(entries, entries))


def _merged(runs: list[str]) -> Iterator[tuple[str, bytes]]:
    """The rows of `runs` in id order (`fewer_runs` first, when there are many)."""
    runs = fewer_runs(runs, lambda group: _write_run(group[0].rsplit("-", 1)[0] + "-merged", _merged(group)))
    with ExitStack() as stack:
        yield from heapq.merge(*(_run_rows(stack, run) for run in runs), key=lambda row: row[0])


def _write_shard(index: int, runs: "Mapping[int, list[str]]", directory: str, drop_fields: tuple[str, ...]) -> str:
    """Write shard `index` from its sorted runs: records by id (whole content breaking ties), each
    made whole again (text read back from the spill, fields from the journal) and compressed into
    the shard as it comes. Only one record per run, and the records of one id, are in memory."""
    path = f"{directory.rstrip('/')}/{shard_name(index)}"
    with SpillReader() as reader, atomic_gzip_create(path) as shard:
        for _, same_id in itertools.groupby(_merged(sorted(runs[index])), key=lambda row: row[0]):
            whole = ({k: v for k, v in reader.restore(pickle.loads(payload)).items() if k not in drop_fields}
                     for _, payload in same_id)
            for record in sorted(whole, key=_record_order):
                shard.write(jsonl_line(record))
    return path


class WriteJsonlShards(beam.PTransform):
    """Write `records` (a PCollection, or a tuple of them: each is sorted into runs as it comes,
    never flattened first) into `directory/part-NNNNN.jsonl.gz`, exactly `num_shards` files.

    A record's shard is a stable hash of its id and records are sorted by id inside a shard, so
    the output does not depend on the runner, the bundle sizes or the order records arrive in.
    The sorted runs wait in `scratch_dir` (any Beam FileSystems path; the caller deletes it once
    the run is over), each up to `run_mb` of pickled records, the memory a writer holds.
    Records may come spilled (`text_ref`, `pipeline.stages.spill`) or replayed (`journal_ref`,
    `pipeline.stages.journal`): each is made whole as its shard is written.
    Every shard file is written, empty or not, so a directory never mixes files of two runs.
    Returns a PCollection of the written paths.
    """

    def __init__(self, directory: str, num_shards: int, scratch_dir: str, drop_fields: tuple[str, ...] = (),
                 run_mb: float = WorkConfig.sort_run_mb):
        super().__init__()
        if num_shards < 1:
            raise ValueError(f"num_shards must be at least 1, got {num_shards}")
        self._directory = directory
        self._num_shards = num_shards
        self._scratch_dir = scratch_dir
        self._drop_fields = drop_fields
        self._run_bytes = max(1, int(run_mb * 1024**2))

    def expand(self, records):
        streams = records if isinstance(records, tuple) else (records,)
        name = self._directory.rstrip("/").rsplit("/", 1)[-1]
        runs = tuple(stream | f"SortedRuns{i}" >> beam.ParDo(
            _SortedRuns(self._scratch_dir, name, self._num_shards, self._run_bytes)) for i, stream in enumerate(streams))
        runs = runs | "AllRuns" >> beam.Flatten()
        return (
            streams[0].pipeline
            | "AllShards" >> beam.Create(list(range(self._num_shards)))
            | "WriteShard" >> beam.Map(_write_shard, beam.pvalue.AsMultiMap(runs), self._directory, self._drop_fields)
        )
