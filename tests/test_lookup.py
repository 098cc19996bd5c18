"""The on-disk lookup side input, written by a real Beam pipeline (FnApiRunner)."""
from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipeline.stages import lookup
from pipeline.stages.lookup import WriteLookup
from pipeline.stages.spill import SpillReader


def _first_letter(key: str) -> int:
    return ord(key[0])  # "apple" and "avocado" share a digest: a collision, on purpose


def _looked_up(entries, scratch, queries) -> dict:
    """What a DoFn reading the table as a side input finds for each query."""

    class Record(beam.DoFn):
        def setup(self):
            self._reader = SpillReader()

        def process(self, key, table):
            yield json.dumps([key, sorted(table.values(key, _first_letter(key), self._reader.bytes_at))])

    pipeline = beam.Pipeline(runner=FnApiRunner())
    table = beam.pvalue.AsSingleton(pipeline | "Entries" >> beam.Create(entries)
                                    | "Lookup" >> WriteLookup(str(scratch), "test", _first_letter))
    found = scratch.parent / "found.jsonl"
    _ = (pipeline | "Queries" >> beam.Create(queries) | beam.ParDo(Record(), table)
         | beam.io.WriteToText(str(found), shard_name_template=""))
    pipeline.run().wait_until_finish()
    return dict(json.loads(line) for line in found.read_text().splitlines())


def test_each_key_finds_all_its_values_and_only_its_own(tmp_path):
    entries = [("apple", 1), ("banana", 2), ("apple", 3), ("avocado", 4), ("cherry", ("a", 5))]
    found = _looked_up(entries, tmp_path / "scratch", ["apple", "avocado", "banana", "cherry", "damson", "aardvark"])
    assert found == {"apple": [1, 3], "avocado": [4], "banana": [2], "cherry": [["a", 5]], "damson": [],
                     "aardvark": []}


def test_entries_past_one_run_are_merged_into_one_table(tmp_path, monkeypatch):
    monkeypatch.setattr(lookup, "_RUN_BYTES", 64)  # a run file every few entries
    entries = [(f"k{i % 37}", i) for i in range(300)]
    found = _looked_up(entries, tmp_path / "scratch", [f"k{i}" for i in range(37)])
    assert found == {f"k{i}": list(range(i, 300, 37)) for i in range(37)}
    assert len(list((tmp_path / "scratch").glob("sort-lookup-test-*.run"))) > 10
    assert len(list((tmp_path / "scratch").glob("lookup-test-*.table"))) == 1


def test_no_entries_make_an_empty_table(tmp_path):
    assert _looked_up([], tmp_path / "scratch", ["apple"]) == {"apple": []}
