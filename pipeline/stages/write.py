"""Write records as sorted, gzipped JSONL shards: the same records always give the same bytes.

The sort happens on disk, as an external merge sort (`pipeline.stages.sorted_runs`): records are
cut into sorted runs of bounded size in files under a scratch folder, and each shard is written by
merging its runs. No step holds a shard, let alone the corpus, in memory, and no shuffle carries
the records themselves (a local runner would hold everything a shuffle carries), only the names of
the run files.
"""
from __future__ import annotations

import json
from typing import Mapping

import apache_beam as beam

from common.fileio import atomic_gzip_create, jsonl_line, shard_name
from pipeline.config import WorkConfig
from pipeline.stages.sorted_runs import merged_groups, sorted_runs
from pipeline.stages.spill import SpillReader


def _record_id(record: dict) -> str:
    return record.get("id") or ""


def _by_id(record: dict) -> tuple[str, dict]:
    return _record_id(record), record


def _record_order(record: dict) -> tuple[str, str]:
    # Ids should be unique, but ordering must stay total even if they are not.
    return _record_id(record), json.dumps(record, sort_keys=True, ensure_ascii=False)


def _write_shard(index: int, runs: "Mapping[int, list[str]]", directory: str, drop_fields: tuple[str, ...]) -> str:
    """Write shard `index` from its sorted runs: records by id (whole content breaking ties), each
    made whole again (text read back from the spill, fields from the journal) and compressed into
    the shard as it comes. Only one record per run, and the records of one id, are in memory."""
    path = f"{directory.rstrip('/')}/{shard_name(index)}"
    with SpillReader() as reader, atomic_gzip_create(path) as shard:
        for _, same_id in merged_groups(runs[index]):
            whole = ({k: v for k, v in reader.restore(record).items() if k not in drop_fields} for record in same_id)
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
        keyed = tuple(stream | f"ById{i}" >> beam.Map(_by_id) for i, stream in enumerate(streams))
        runs = sorted_runs(keyed, self._scratch_dir, name, self._num_shards, self._run_bytes)
        return (
            streams[0].pipeline
            | "AllShards" >> beam.Create(list(range(self._num_shards)))
            | "WriteShard" >> beam.Map(_write_shard, beam.pvalue.AsMultiMap(runs), self._directory, self._drop_fields)
        )
