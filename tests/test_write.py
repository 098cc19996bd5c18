import gzip
import io
import json

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from common.fileio import atomic_create, atomic_gzip_create, atomic_write
from pipeline.stages.write import WriteJsonlShards


def _write(records, directory, num_shards, run_mb=64.0):
    with beam.Pipeline(runner=FnApiRunner()) as p:
        p | beam.Create(records) | WriteJsonlShards(str(directory), num_shards, str(directory.parent / "scratch"),
                                                    drop_fields=("html",), run_mb=run_mb)


def _read_all(directory):
    files = sorted(directory.glob("part-*.jsonl.gz"))
    return files, [[json.loads(line) for line in gzip.open(f, "rt", encoding="utf-8")] for f in files]


def test_shards_are_sorted_complete_and_byte_identical(tmp_path):
    records = [{"id": f"doc-{i:03d}", "text": f"text {i} ünïcödé", "html": "<p>x</p>"} for i in range(50)]
    _write(records, tmp_path / "a", 4)
    _write(list(reversed(records)), tmp_path / "b", 4)
    files_a, shards_a = _read_all(tmp_path / "a")
    files_b, _ = _read_all(tmp_path / "b")
    assert [f.name for f in files_a] == [f"part-{i:05d}.jsonl.gz" for i in range(4)]
    assert [f.read_bytes() for f in files_a] == [f.read_bytes() for f in files_b]
    rows = [row for shard in shards_a for row in shard]
    assert sorted(r["id"] for r in rows) == [r["id"] for r in records]
    assert all("html" not in r for r in rows)
    for shard in shards_a:
        assert [r["id"] for r in shard] == sorted(r["id"] for r in shard)


def test_shards_merged_from_many_small_runs_have_the_bytes_of_one_run_per_shard(tmp_path):
    # ids repeat, so records of one id come from several runs and their order is settled in the merge;
    # a run per record gives each shard more runs than are merged at once, so runs are merged in rounds
    records = [{"id": f"doc-{i % 90:03d}", "text": f"text {i}", "n": i} for i in range(450)]
    _write(records, tmp_path / "one" / "out", 3)
    _write(list(reversed(records)), tmp_path / "many" / "out", 3, run_mb=1e-4)
    runs = sorted(p.name for p in (tmp_path / "many" / "scratch").iterdir())
    assert all(name.startswith("sort-out-0000") and name.endswith(".run") for name in runs)
    assert len(runs) > 3 * 64 and any("-merged-" in name for name in runs)
    files_one, shards = _read_all(tmp_path / "one" / "out")
    files_many, _ = _read_all(tmp_path / "many" / "out")
    assert [f.read_bytes() for f in files_one] == [f.read_bytes() for f in files_many]
    rows = [row for shard in shards for row in shard]
    assert sorted(row["n"] for row in rows) == list(range(450))
    for shard in shards:
        assert shard == sorted(shard, key=lambda r: (r["id"], json.dumps(r, sort_keys=True)))


def test_every_shard_exists_even_when_empty(tmp_path):
    _write([{"id": "only", "text": "x"}], tmp_path, 3)
    files, shards = _read_all(tmp_path)
    assert len(files) == 3 and sum(len(s) for s in shards) == 1


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "sub" / "stats.json"
    atomic_write(str(target), b"{}")
    atomic_write(str(target), b'{"a": 1}')
    assert target.read_bytes() == b'{"a": 1}'
    assert [p.name for p in target.parent.iterdir()] == ["stats.json"]


def test_a_gzip_file_streamed_line_by_line_has_the_bytes_of_one_compressed_at_once(tmp_path):
    lines = [json.dumps({"id": i, "text": "wörds " * (i % 97)}).encode() + b"\n" for i in range(3000)]
    with atomic_gzip_create(str(tmp_path / "part.jsonl.gz")) as shard:
        for line in lines:
            shard.write(line)
    at_once = io.BytesIO()  # how shards were written before they were streamed
    with gzip.GzipFile(fileobj=at_once, mode="wb", mtime=0, filename="") as f:
        f.write(b"".join(lines))
    assert (tmp_path / "part.jsonl.gz").read_bytes() == at_once.getvalue()


def test_a_writer_that_fails_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "part.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_create(str(target)) as f:
            f.write(b"half of the new")
            raise RuntimeError("the writer died")
    assert [p.name for p in tmp_path.iterdir()] == ["part.bin"] and target.read_bytes() == b"old"
