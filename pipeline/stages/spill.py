"""Spill: texts wait on disk, not in memory, between filtering and writing.

Once a record leaves the filter stages its text goes into a spill file under the run's work folder
(any Beam FileSystems path; one file per bundle, UTF-8 bytes back to back) and the record carries
`text_ref` = (file, offset, length) instead; so does the HTML a page dropped at extraction keeps
(`html_ref`), the largest field of all. Only such compact records cross the shuffles of the
dedup join and of the writer, which reads each text back by offset.

A spill file is complete when its bundle finishes, so texts are only read back after a shuffle,
which no runner starts before the bundles feeding it have finished. A retried bundle writes a new
file; the records of the attempt that failed die with it. With spilling off the records keep their
text and everything downstream reads it from there: the output bytes are the same either way.
"""
from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from common.fileio import ensure_dir, join
from pipeline.document import HTML_REF, JOURNAL_REF, REPLAYED_FIELDS, TEXT_REF
from pipeline.stages.journal import journaled_record

_ENCODING = ("utf-8", "surrogatepass")  # lone surrogates from JSON inputs survive the round trip
SPILLED = {"text": TEXT_REF, "html": HTML_REF}   # field -> the field that says where it waits


class _SpillTexts(beam.DoFn):
    def __init__(self, work_dir: str, flush_each: bool):
        self._work_dir = work_dir
        self._flush_each = flush_each

    def setup(self):
        ensure_dir(self._work_dir)

    def start_bundle(self):
        self._file = None

    def process(self, record: dict):
        spilled = [field for field in SPILLED if record.get(field)]
        if not spilled:
            yield record
            return
        if self._file is None:
            self._path = join(self._work_dir, f"spill-{uuid.uuid4().hex}.txt")
            self._file = FileSystems.create(self._path, compression_type=CompressionTypes.UNCOMPRESSED)
            self._offset = 0
        compact = {key: value for key, value in record.items() if key not in spilled}
        for field in spilled:
            data = record[field].encode(*_ENCODING)
            self._file.write(data)
            compact[SPILLED[field]] = (self._path, self._offset, len(data))
            self._offset += len(data)
        if self._flush_each:
            self._file.flush()
        yield compact

    def finish_bundle(self):
        if self._file is not None:
            self._file.close()
            self._file = None


class SpillTexts(beam.PTransform):
    """records → the same records, each text moved to a file under `work_dir` (when `enabled`).

    With `flush_each` every text reaches the file before its record moves on, so a record journaled
    downstream (`pipeline.stages.journal`) never points past what a killed run left on disk."""

    def __init__(self, work_dir: str, enabled: bool, flush_each: bool = False):
        super().__init__()
        self._work_dir = work_dir
        self._enabled = enabled
        self._flush_each = flush_each

    def expand(self, records):
        if not self._enabled:
            return records
        return records | "SpillTexts" >> beam.ParDo(_SpillTexts(self._work_dir, self._flush_each))


class SpillReader:
    """Reads texts and journaled fields back, keeping the files last read open (a shard's records
    come from any of them).

    One reader serves one thread: DoFns make theirs in `setup`, or use one per call.
    """

    def __init__(self, max_open: int = 32):
        self._max_open = max_open
        self._files: OrderedDict[str, Any] = OrderedDict()

    def text(self, record: dict, field: str = "text") -> str:
        """The text of `record` (or another spilled `field`), spilled or not."""
        ref = record.get(SPILLED[field])
        if ref is None:
            return record.get(field) or ""
        return self.bytes_at(ref).decode(*_ENCODING)

    def restore(self, record: dict) -> dict:
        """`record` whole again: with the fields a replayed record left in its unit's journal
        (`JOURNAL_REF`, see `pipeline.stages.journal`), and its text (and HTML) in place of
        `text_ref` (and `html_ref`)."""
        if JOURNAL_REF in record:
            journaled = journaled_record(self.bytes_at(record[JOURNAL_REF]))
            record = {**{key: value for key, value in journaled.items() if key not in REPLAYED_FIELDS},
                      **{key: value for key, value in record.items() if key != JOURNAL_REF}}
        spilled = [field for field, ref in SPILLED.items() if ref in record]
        if not spilled:
            return record
        refs = {SPILLED[field] for field in spilled}
        return {**{key: value for key, value in record.items() if key not in refs},
                **{field: self.text(record, field) for field in spilled}}

    def bytes_at(self, ref: tuple[str, int, int]) -> bytes:
        """The `length` bytes at `offset` of file `path`, for `ref` = (path, offset, length)."""
        path, offset, length = ref
        handle = self._open(path)
        handle.seek(offset)
        data = handle.read(length)
        if len(data) != length:
            raise IOError(f"work file {path} ends before byte {offset + length}; was the work folder changed?")
        return data

    def _open(self, path: str):
        if path in self._files:
            self._files.move_to_end(path)
            return self._files[path]
        if len(self._files) >= self._max_open:
            _, oldest = self._files.popitem(last=False)
            oldest.close()
        self._files[path] = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        return self._files[path]

    def close(self) -> None:
        while self._files:
            self._files.popitem()[1].close()

    def __enter__(self) -> "SpillReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ReadsSpill(beam.DoFn):
    """A DoFn that reads spilled texts back through `self._reader`, one reader per DoFn instance."""

    def setup(self):
        self._reader = SpillReader()

    def teardown(self):
        self._reader.close()


def remove_work_dir(work_dir: str) -> None:
    """Delete the work folder of a finished run: its files (those of failed runs too), then the
    folder itself where there is one (object stores such as gs:// have no folders)."""
    leftovers = [m.path for r in FileSystems.match([join(work_dir, "*")]) for m in r.metadata_list]
    if leftovers:
        FileSystems.delete(leftovers)
    if FileSystems.exists(work_dir):
        FileSystems.delete([work_dir])
