"""Write records as sorted, gzipped JSONL shards: the same records always give the same bytes."""
from __future__ import annotations

import itertools
import json

import apache_beam as beam

from common.fileio import atomic_gzip_create, jsonl_line, shard_name
from common.hashing import bucket
from pipeline.stages.spill import SpillReader


def _record_order(record: dict) -> tuple[str, str]:
    # Ids should be unique, but ordering must stay total even if they are not.
    return record.get("id") or "", json.dumps(record, sort_keys=True, ensure_ascii=False)


def _write_shard(keyed, directory: str, drop_fields: tuple[str, ...]) -> str:
    """Write one shard: records sorted by id (whole content breaking ties), each made whole again
    (text read back from the spill, fields from the journal) and compressed into the shard file as
    it comes, so a shard is never whole in memory."""
    index, (records, _) = keyed
    rows = sorted(records, key=lambda row: row.get("id") or "")
    path = f"{directory.rstrip('/')}/{shard_name(index)}"
    with SpillReader() as reader, atomic_gzip_create(path) as shard:
        for _, same_id in itertools.groupby(rows, key=lambda row: row.get("id") or ""):
            whole = ({k: v for k, v in reader.restore(row).items() if k not in drop_fields} for row in same_id)
            for record in sorted(whole, key=_record_order):
                shard.write(jsonl_line(record))
    return path


class WriteJsonlShards(beam.PTransform):
    """Write `records` into `directory/part-NNNNN.jsonl.gz`, exactly `num_shards` files.

    A record's shard is a stable hash of its id and records are sorted by id inside a shard, so
    the output does not depend on the runner, the bundle sizes or the order records arrive in.
    Records may come spilled (`text_ref`, `pipeline.stages.spill`): only they cross the shuffle,
    and each text is read back as its shard is written.
    Every shard file is written, empty or not, so a directory never mixes files of two runs.
    Returns a PCollection of the written paths.
    """

    def __init__(self, directory: str, num_shards: int, drop_fields: tuple[str, ...] = ()):
        super().__init__()
        if num_shards < 1:
            raise ValueError(f"num_shards must be at least 1, got {num_shards}")
        self._directory = directory
        self._num_shards = num_shards
        self._drop_fields = drop_fields

    def expand(self, records):
        num_shards = self._num_shards
        keyed = records | "KeyByShard" >> beam.Map(lambda r: (bucket(r.get("id") or "", num_shards), r))
        every_shard = records.pipeline | "AllShards" >> beam.Create([(i, None) for i in range(num_shards)])
        return (
            (keyed, every_shard)
            | "GroupByShard" >> beam.CoGroupByKey()
            | "WriteShard" >> beam.Map(_write_shard, self._directory, self._drop_fields)
        )
