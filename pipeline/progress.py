"""Progress of a running pipeline: workers write running totals, the launching process shows them.

Beam's metrics cannot be read while FnApiRunner's worker processes run, so every counting step of a
local run keeps its own totals and rewrites one small JSON file with them in a folder on this machine
(at most once a second, and at the end of each bundle). A temporary folder, not OUT/.work: OUT may be
on an object store, where rewriting files every second is slow, and a local run's workers all share
this machine. A thread of the launching process sums the
files it finds there: at a terminal into a tqdm bar on stderr, elsewhere (a log, CI) into one plain
line every `interval` seconds. Runners whose workers are elsewhere (Dataflow) write no files; for
Dataflow the command prints the job's console page instead (`announce_job`).

Totals are named by strings: `FILES` (input files finished; a file split into n units counts 1/n
per unit), `INPUT_BYTES` (their size), and one `docs:<stage>` per counted stage.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import TextIO

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

from pipeline.sources.formats import is_url

FILES = "files"
INPUT_BYTES = "input_bytes"
_DOCS = "docs:"
WRITE_EVERY_S = 1.0
LINE_EVERY_S = 60.0          # between plain progress lines when stderr is not a terminal
_BAR_REFRESH_S = 0.5
_TEMPORARY_SUFFIX = ".tmp"


def docs_key(stage: str) -> str:
    return _DOCS + stage


@dataclass(frozen=True)
class RunProgress:
    """Where the steps of one local run write their totals, and the size of each of its sources."""
    folder: str
    sizes: dict[str, int]

    @classmethod
    def start(cls, sources: list[str]) -> "RunProgress":
        return cls(tempfile.mkdtemp(prefix="webcorpus-progress-"), {source: input_size(source) for source in sources})

    def finish(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def input_size(source: str) -> int:
    """Bytes of a source as stored (compressed where it is); 0 for a URL, or when it cannot be told."""
    if is_url(source):
        return 0
    try:
        if os.path.isdir(source):
            return sum(os.path.getsize(os.path.join(folder, name))
                       for folder, _, names in os.walk(source) for name in names)
        return sum(m.size_in_bytes for r in FileSystems.match([source]) for m in r.metadata_list)
    except (OSError, ValueError):   # a file gone or unreadable: its reader reports it where it belongs
        return 0


class ProgressWriter:
    """Running totals of one counting step in one worker, kept in its own file under `folder`."""

    def __init__(self, folder: str):
        self._path = os.path.join(folder, f"progress-{uuid.uuid4().hex}.json")
        self._totals: Counter = Counter()
        self._written_at = 0.0
        self._dirty = False

    def add(self, key: str, amount: float = 1) -> None:
        self._totals[key] += amount
        self._dirty = True
        if time.monotonic() - self._written_at >= WRITE_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Write the totals now (the file is replaced whole: a reader never sees half of it)."""
        if not self._dirty:
            return
        temporary = self._path + _TEMPORARY_SUFFIX
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(self._totals, f)
        os.replace(temporary, self._path)
        self._written_at = time.monotonic()
        self._dirty = False


def read_totals(folder: str) -> Counter:
    """The totals of every writer under `folder`, added up."""
    totals: Counter = Counter()
    try:
        names = [name for name in os.listdir(folder) if name.endswith(".json")]
    except OSError:       # the run is over and its folder gone
        return totals
    for name in names:
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                totals.update(json.load(f))
        except (OSError, ValueError):
            continue      # replaced or removed while listed: the next reading has it
    return totals


class _CountDocs(beam.DoFn):
    def __init__(self, folder: str, stage: str):
        self._folder = folder
        self._key = docs_key(stage)

    def setup(self):
        self._writer = ProgressWriter(self._folder)

    def process(self, element):
        self._writer.add(self._key)
        yield element

    def finish_bundle(self):
        self._writer.flush()


def count_progress(elements, progress: RunProgress | None, stage: str, label: str):
    """`elements`, counted as documents that `stage` let through by a step named `label` when there is
    `progress` to report; without, the graph is left as it is (a dry run shows no counting step)."""
    if progress is None:
        return elements
    return elements | label >> beam.ParDo(_CountDocs(progress.folder, stage))


def progress_line(totals: Counter, elapsed_s: float, total_files: int, total_bytes: int, stages: list[str]) -> str:
    """How far a run is, in one line: files and bytes read of the total, documents read per second,
    and the documents each stage let through so far."""
    parts = []
    if total_files:
        parts.append(f"files {totals[FILES]:.4g}/{total_files}")
    if total_bytes:
        parts.append(f"{_megabytes(totals[INPUT_BYTES])}/{_megabytes(total_bytes)} MB "
                     f"({100 * totals[INPUT_BYTES] / total_bytes:.0f}%)")
    first = totals[docs_key(stages[0])] if stages else 0
    parts.append(f"{first / elapsed_s if elapsed_s > 0 else 0:,.1f} docs/s")
    parts.append("docs " + ", ".join(f"{stage} {int(totals[docs_key(stage)]):,}" for stage in stages))
    return "; ".join(parts)


def _megabytes(n: float) -> str:
    return f"{n / 1e6:,.1f}"


class ProgressDisplay:
    """`with ProgressDisplay(...):` around a run shows its progress on `stream` until the block ends,
    however it ends (success, an exception, Ctrl-C). With `progress` None it shows nothing.
    `stages` name the document counts shown, the first being the one whose rate is shown."""

    def __init__(self, prog: str, progress: RunProgress | None, stages: list[str], stream: TextIO | None = None,
                 interval_s: float = LINE_EVERY_S):
        self._prog = prog
        self._folder = progress.folder if progress else None
        self._stages = stages
        self._total_files = len(progress.sizes) if progress else 0
        self._total_bytes = sum(progress.sizes.values()) if progress else 0
        self._stream = stream or sys.stderr
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "ProgressDisplay":
        if self._folder is not None:
            self._started = time.monotonic()
            show = self._bar if self._stream.isatty() else self._lines
            self._thread = threading.Thread(target=show, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _line(self, totals: Counter) -> str:
        return progress_line(totals, time.monotonic() - self._started, self._total_files, self._total_bytes,
                             self._stages)

    def _lines(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._stream.write(f"{self._prog}: {time.monotonic() - self._started:.0f}s: "
                               f"{self._line(read_totals(self._folder))}\n")
            self._stream.flush()

    def _bar(self) -> None:
        from tqdm import tqdm

        by_bytes = self._total_bytes > 0
        with tqdm(total=self._total_bytes if by_bytes else None, desc=self._prog, file=self._stream,
                  unit="B" if by_bytes else " files", unit_scale=by_bytes, leave=False) as bar:
            while not self._stop.wait(_BAR_REFRESH_S):
                totals = read_totals(self._folder)
                bar.n = totals[INPUT_BYTES] if by_bytes else totals[FILES]
                bar.set_postfix_str(self._line(totals), refresh=False)
                bar.refresh()


def dataflow_console_url(job_id: str, beam_args: list[str]) -> str:
    """The Cloud console page of a Dataflow job started with `beam_args`."""
    options = PipelineOptions(beam_args).view_as(GoogleCloudOptions)
    return f"https://console.cloud.google.com/dataflow/jobs/{options.region}/{job_id}?project={options.project}"


def announce_job(prog: str, result: object, beam_args: list[str], stream: TextIO | None = None) -> None:
    """Right after a Dataflow job is submitted, say where to watch it; nothing for other runners."""
    runner = PipelineOptions(beam_args).view_as(StandardOptions).runner or ""
    if "dataflow" not in runner.lower() or not callable(getattr(result, "job_id", None)):
        return
    stream = stream or sys.stderr
    stream.write(f"{prog}: Dataflow job {result.job_id()}: {dataflow_console_url(result.job_id(), beam_args)}\n")
    stream.flush()
