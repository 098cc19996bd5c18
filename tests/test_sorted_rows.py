"""Rows of numbers sorted on disk: runs from bundles, read back a range of first numbers at a time."""
from __future__ import annotations

import random
from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from pipeline.stages.sorted_rows import SortedRows, repeated_rows, sort_rows, sorted_ranges

TOP = 2**64 - 1


def _write_run(path: Path, rows: np.ndarray) -> tuple[str, int]:
    path.write_bytes(sort_rows(rows).tobytes())
    return str(path), len(rows)


def test_rows_sort_by_their_first_number_then_the_next():
    rows = np.array([[3, 1], [1, 9], [3, 0], [TOP, 0], [1, 2]], dtype=np.uint64)
    assert sort_rows(rows).tolist() == [[1, 2], [1, 9], [3, 0], [3, 1], [TOP, 0]]


def test_repeated_rows_are_the_distinct_rows_found_twice_or_more():
    rows = sort_rows(np.array([[7, 1], [7, 1], [7, 1], [7, 2], [3, 0], [3, 0], [5, 5]], dtype=np.uint64))
    assert repeated_rows(rows).tolist() == [[3, 0], [7, 1]]
    assert repeated_rows(rows[:1]).tolist() == []


def test_sorted_ranges_give_all_rows_in_order_and_never_split_a_first_number(tmp_path):
    rng = random.Random(7)
    firsts = [rng.randrange(2**64) for _ in range(300)] + [0, TOP]
    rows = np.array([[first, rng.randrange(4)] for first in firsts for _ in range(rng.randrange(1, 4))],
                    dtype=np.uint64)
    order = list(range(len(rows)))
    rng.shuffle(order)
    runs = [_write_run(tmp_path / f"run-{i}", rows[order[i::5]]) for i in range(5)]
    blocks = list(sorted_ranges(runs, 2, range_bytes=1024))
    assert len(blocks) > 5
    assert np.concatenate(blocks).tolist() == sort_rows(rows).tolist()
    firsts_per_block = [set(block[:, 0].tolist()) for block in blocks]
    assert all(not (a & b) for i, a in enumerate(firsts_per_block) for b in firsts_per_block[i + 1:])
    assert list(sorted_ranges(runs, 2)) and len(list(sorted_ranges(runs, 2))) == 1   # small: one range
    assert list(sorted_ranges([], 2)) == []


def test_more_runs_than_are_read_at_once_are_merged_in_rounds(tmp_path):
    rng = random.Random(11)
    rows = np.array([[rng.randrange(2**64), i] for i in range(1000)], dtype=np.uint64)
    runs = [_write_run(tmp_path / f"rows-x-{i:03d}", rows[i::150]) for i in range(150)]   # 64 at a time: 3 rounds
    assert np.concatenate(list(sorted_ranges(runs, 2, range_bytes=4096))).tolist() == sort_rows(rows).tolist()
    assert len(list(tmp_path.glob("rows-x-merged-*.run"))) == 3


def rows_of(element: tuple[int, int]) -> tuple[int, ...]:
    return element


def all_rows(blocks) -> list[tuple[int, ...]]:
    return [tuple(row) for block in blocks for row in block.tolist()]


def test_sorted_rows_gathers_every_row_of_a_collection_through_run_files(tmp_path):
    elements = [((i * 2654435761) % 2**64, i % 3) for i in range(5000)]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        # 5,000 rows of 16 bytes in runs of at most 16 KB: several runs, merged back in order
        gathered = (p | beam.Create(elements)
                    | SortedRows(str(tmp_path / "scratch"), "test", 2, rows_of, all_rows, run_mb=16 / 1024))
        assert_that(gathered, equal_to([sorted(elements)]))
    assert len(list((tmp_path / "scratch").glob("rows-test-*.run"))) >= 5
    with beam.Pipeline(runner=FnApiRunner()) as p:
        nothing = p | beam.Create([]) | SortedRows(str(tmp_path / "empty"), "test", 2, rows_of, all_rows)
        assert_that(nothing, equal_to([[]]))
