"""Grouping on disk (`GroupOnDisk`) against Beam's own GroupByKey, in real pipelines (FnApiRunner)."""
from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipeline.stages.sorted_runs import GroupOnDisk


class _SortedGroup(beam.DoFn):
    """(key, values) → one JSON line: the key and its values, sorted; fails unless set up first."""

    def setup(self):
        self._ready = True

    def process(self, group):
        key, values = group
        assert self._ready
        yield json.dumps([key, sorted(values)])


def _groups(tmp_path, name, build) -> list:
    pipeline = beam.Pipeline(runner=FnApiRunner())
    out = tmp_path / f"{name}.jsonl"
    _ = build(pipeline) | f"Write{name}" >> beam.io.WriteToText(str(out), shard_name_template="")
    pipeline.run().wait_until_finish()
    return sorted(out.read_text().splitlines())


def test_groups_on_disk_are_those_of_a_group_by_key(tmp_path):
    pairs = [(f"k{i % 41:03d}", [i, "ü" * (i % 3)]) for i in range(500)] + [("", [-1, ""])]

    def on_disk(pipeline):
        first = pipeline | "First" >> beam.Create(pairs[:300])
        second = pipeline | "Second" >> beam.Create(pairs[300:])
        return (first, second) | GroupOnDisk(str(tmp_path / "scratch"), "test", 5, _SortedGroup(), run_mb=1e-3)

    def in_memory(pipeline):
        return pipeline | beam.Create(pairs) | beam.GroupByKey() | beam.ParDo(_SortedGroup())

    assert _groups(tmp_path, "disk", on_disk) == _groups(tmp_path, "memory", in_memory)
    runs = list((tmp_path / "scratch").glob("sort-test-*.run"))
    assert len(runs) > 5 * 2  # a run file every few pairs, per shard and stream


def test_no_pairs_make_no_groups(tmp_path):
    def on_disk(pipeline):
        return pipeline | beam.Create([]) | GroupOnDisk(str(tmp_path / "scratch"), "test", 3, _SortedGroup())

    assert _groups(tmp_path, "disk", on_disk) == []


class _FirstAndRest(beam.DoFn):
    """(prefix, values in key order) → the first value on "first", the rest as one JSON line."""

    def process(self, group):
        prefix, values = group
        yield beam.pvalue.TaggedOutput("first", json.dumps([prefix, next(values)]))
        yield json.dumps([prefix, list(values)])


def test_a_prefix_groups_keys_and_orders_each_group_by_the_whole_key(tmp_path):
    pairs = [(f"{group}{rank:03d}", rank) for group in ("aa", "ab", "zz") for rank in (7, 3, 11, 5)]
    pairs.reverse()

    def on_disk(pipeline):
        out = (pipeline | beam.Create(pairs)
               | GroupOnDisk(str(tmp_path / "scratch"), "test", 2, _FirstAndRest(), run_mb=1e-5, prefix=2,
                             tags=("first",), main="rest"))
        return (out["first"], out["rest"]) | beam.Flatten()

    assert _groups(tmp_path, "disk", on_disk) == sorted(
        [json.dumps([group, 3]) for group in ("aa", "ab", "zz")]
        + [json.dumps([group, [5, 7, 11]]) for group in ("aa", "ab", "zz")])
