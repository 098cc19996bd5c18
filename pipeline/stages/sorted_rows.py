"""Gather rows of 64-bit numbers from a whole PCollection, sorted on disk, into one small result.

The id census and dedup's count look at every record of a corpus at once, yet need only a few
numbers of each (a digest, a rank, a position): a row. Rows are sorted in bundles into run files
under a scratch folder, a bounded number at a time, and `finish` then reads them back as one
sorted stream, a range of first-column values at a time: a range holds a bounded share of all
rows, and rows that agree on their first column (a digest) always fall in the same range. What
`finish` returns (the few rows that repeat something) is all that is held, however large the corpus.
"""
from __future__ import annotations

import array
import math
import uuid
from contextlib import ExitStack
from typing import Any, Callable, Iterable, Iterator

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from common.fileio import ensure_dir, join

_RANGE_BYTES = 16 * 1024**2    # rows sorted together at a time when the runs are read back
_READ_ROWS = 4096              # rows read from a run at a time
_MERGE_FAN_IN = 64              # runs read at once
_DIGEST_SPACE = 1 << 64


def sort_rows(rows: np.ndarray) -> np.ndarray:
    """`rows` (n × width) in lexicographic order, the first column first."""
    return rows[np.lexsort(rows.T[::-1])]


class _RunReader:
    """The rows of one sorted run file, handed out a range of first-column values at a time."""

    def __init__(self, stream, width: int):
        self._stream = stream
        self._width = width
        self._left = np.empty((0, width), dtype=np.uint64)

    def rows_below(self, bound: int) -> np.ndarray:
        """The next rows whose first column is below `bound` (all that remain, for `_DIGEST_SPACE`)."""
        taken = []
        while True:
            cut = len(self._left) if bound >= _DIGEST_SPACE else int(np.searchsorted(self._left[:, 0], np.uint64(bound)))
            taken.append(self._left[:cut])
            self._left = self._left[cut:]
            if len(self._left):
                break
            data = _read_up_to(self._stream, _READ_ROWS * self._width * 8)
            if not data:
                break
            self._left = np.frombuffer(data, dtype=np.uint64).reshape(-1, self._width)
        return np.concatenate(taken)


def _read_up_to(stream, size: int) -> bytes:
    """`size` bytes of `stream`, fewer only at its end (a remote file's read may return less)."""
    chunks = []
    while size > 0 and (chunk := stream.read(size)):
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def repeated_rows(rows: np.ndarray) -> np.ndarray:
    """The distinct rows found twice or more in sorted `rows`."""
    again = rows[1:][np.all(rows[1:] == rows[:-1], axis=1)]
    return again[np.concatenate([[True], np.any(again[1:] != again[:-1], axis=1)])] if len(again) else again


def fewer_runs(runs: list, merge: Callable[[list], Any]) -> list:
    """`runs`, merged by `merge` (a group of runs → one run) in groups of `_MERGE_FAN_IN` until no
    more than that are left: each run read at once holds an open file and its buffer."""
    while len(runs) > _MERGE_FAN_IN:
        runs = [merge(runs[i:i + _MERGE_FAN_IN]) for i in range(0, len(runs), _MERGE_FAN_IN)]
    return runs


def sorted_ranges(runs: list[tuple[str, int]], width: int, range_bytes: int = _RANGE_BYTES) -> Iterator[np.ndarray]:
    """The rows of the sorted run files `runs` ((path, rows) each), as consecutive blocks in sorted
    order, each of about `range_bytes`: every row whose first column falls in one slice of the
    64-bit space. First columns are digests, so the slices share the rows about evenly."""
    runs = fewer_runs(runs, lambda group: _write_run(group[0][0].rsplit("-", 1)[0] + "-merged",
                                                     sorted_ranges(group, width, range_bytes)))
    ranges = max(1, math.ceil(sum(rows for _, rows in runs) * width * 8 / range_bytes))
    with ExitStack() as stack:
        readers = [_RunReader(stack.enter_context(FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)),
                              width) for path, _ in runs]
        for index in range(1, ranges + 1):
            bound = _DIGEST_SPACE if index == ranges else index * (_DIGEST_SPACE // ranges)
            block = sort_rows(np.concatenate([np.empty((0, width), dtype=np.uint64),
                                              *(reader.rows_below(bound) for reader in readers)]))
            if len(block):
                yield block


def _write_run(prefix: str, blocks: Iterable[np.ndarray]) -> tuple[str, int]:
    """A run file `prefix-<unique>.run` of `blocks` of sorted rows, in order: (its path, its rows)."""
    path, rows = f"{prefix}-{uuid.uuid4().hex}.run", 0
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as run:
        for block in blocks:
            run.write(block.tobytes())
            rows += len(block)
    return path, rows


class _RowRuns(beam.DoFn):
    """element → nothing, until `run_rows` rows have come: then one sorted run file of them, as
    (path, rows). What is left goes out at the bundle's end."""

    def __init__(self, scratch_dir: str, name: str, width: int, rows_of: Callable[[Any], Iterable[int]],
                 run_rows: int):
        self._scratch_dir = scratch_dir
        self._name = name
        self._width = width
        self._rows_of = rows_of
        self._run_numbers = run_rows * width

    def setup(self):
        ensure_dir(self._scratch_dir)

    def start_bundle(self):
        self._numbers = array.array("Q")

    def process(self, element):
        self._numbers.extend(self._rows_of(element))
        if len(self._numbers) >= self._run_numbers:
            yield self._flush()

    def finish_bundle(self):
        if len(self._numbers):
            yield GlobalWindows.windowed_value(self._flush())

    def _flush(self) -> tuple[str, int]:
        rows = np.frombuffer(self._numbers, dtype=np.uint64).reshape(-1, self._width)
        run = _write_run(join(self._scratch_dir, f"rows-{self._name}"), [sort_rows(rows)])
        self._numbers = array.array("Q")
        return run


class SortedRows(beam.PTransform):
    """`elements | SortedRows(scratch_dir, name, width, rows_of, finish)` → one element:
    `finish(blocks)`, where `blocks` are the rows `rows_of` gives for every element (a flat
    iterable of numbers below 2**64, `width` a row, the first a digest), sorted, in blocks from
    `sorted_ranges`. A bundle holds at most `run_mb` of rows before sorting them into a run file
    under `scratch_dir` (the caller deletes it once the run is over). `rows_of` and `finish` are
    module-level functions (they travel to the workers)."""

    def __init__(self, scratch_dir: str, name: str, width: int, rows_of: Callable[[Any], Iterable[int]],
                 finish: Callable[[Iterator[np.ndarray]], Any], run_mb: float = 8.0):
        super().__init__()
        self._scratch_dir = scratch_dir
        self._name = name
        self._width = width
        self._rows_of = rows_of
        self._finish = finish
        self._run_rows = max(1, int(run_mb * 1024**2) // (8 * width))

    def expand(self, elements):
        width, finish = self._width, self._finish
        return (elements
                | "SortedRuns" >> beam.ParDo(_RowRuns(self._scratch_dir, self._name, width, self._rows_of, self._run_rows))
                | "AllRuns" >> beam.combiners.ToList()
                | "Finish" >> beam.Map(lambda runs: finish(sorted_ranges(sorted(runs), width))))
