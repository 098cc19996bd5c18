"""Progress while a run goes on: worker totals, the lines or bar the launcher shows, the Dataflow job page."""
import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipeline.progress import (FILES, INPUT_BYTES, ProgressDisplay, ProgressWriter, RunProgress, announce_job,
                               dataflow_console_url, docs_key, read_totals)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data/sample"
LINE = re.compile(r"^pipeline clean: \d+s: files ([\d.]+)/12; ([\d.]+)/([\d.]+) MB \((\d+)%\); [\d,.]+ docs/s; "
                  r"docs read (\d+), extract (\d+), lang (\d+), quality (\d+), dedup (\d+)$")


def _progress_folders(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if name.startswith("webcorpus-progress-")]


def test_clean_away_from_a_terminal_prints_progress_lines(tmp_path):
    # The run gets a temporary folder of its own: other tests running beside it make theirs.
    run_tmp = tmp_path / "tmp"
    run_tmp.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "clean", "--input", str(SAMPLE / "html"), "--output", str(tmp_path / "out"),
         "--langs", "all", "--workers", "2", "--set", "work.progress_seconds=0.2"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(run_tmp)}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    matches = [LINE.match(line) for line in lines]
    assert lines and all(matches), result.stderr          # nothing else on stderr, every line complete
    counts = [tuple(float(g) for g in m.groups()) for m in matches]
    assert all(list(column) == sorted(column) for column in zip(*counts))   # totals only grow
    total_mb = float(matches[0].group(3))
    assert total_mb == round(sum(p.stat().st_size for p in (SAMPLE / "html").iterdir()) / 1e6, 1)
    stats = json.loads((tmp_path / "out/stats.json").read_text())
    files, mb, _, percent, read, extract, lang, quality, dedup = counts[-1]
    assert files <= 12 and percent <= 100 and read >= extract >= lang >= quality
    # reading ends long before the run does (dedup and the writers follow): a later line has its totals
    assert max(c[4] for c in counts) == stats["input_docs"] and max(c[0] for c in counts) == 12
    assert _progress_folders(run_tmp) == []                # the run's totals folder is gone
    # the summary line gives the run's speed, as timing.json records it
    timing = json.loads((tmp_path / "out/timing.json").read_text())
    assert f"in {timing['wall_seconds']:.1f}s ({timing['docs_per_second']:,.1f} docs/s, " \
           f"{timing['input_mb_per_second']:.2f} MB/s)" in result.stdout


def test_a_non_positive_progress_interval_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "clean", "--input", str(SAMPLE / "html"), "--output", str(tmp_path / "out"),
         "--set", "work.progress_seconds=0"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["pipeline clean: error: work.progress_seconds must be positive, got 0.0"]


def test_writers_add_up_and_a_reader_never_sees_half_a_file(tmp_path):
    progress = RunProgress(str(tmp_path), {"a.warc.gz": 3000, "b.jsonl": 1000})
    first, second = ProgressWriter(progress.folder), ProgressWriter(progress.folder)
    for _ in range(5):
        first.add(docs_key("read"))
    first.add(FILES, 0.5)
    second.add(docs_key("read"), 2)
    second.add(INPUT_BYTES, 1500)
    first.flush()
    second.flush()
    (tmp_path / "progress-gone.json.tmp").write_text('{"docs:read": 10')   # a writer caught mid-write
    totals = read_totals(progress.folder)
    assert totals[docs_key("read")] == 7 and totals[FILES] == 0.5 and totals[INPUT_BYTES] == 1500
    assert read_totals(str(tmp_path / "no-such-folder")) == {}


def _written_totals(folder):
    writer = ProgressWriter(folder)
    writer.add(docs_key("read"), 40)
    writer.add(docs_key("extract"), 30)
    writer.add(FILES, 1)
    writer.add(INPUT_BYTES, 2_000_000)
    writer.flush()


def test_lines_name_files_bytes_rate_and_stage_counts(tmp_path):
    progress = RunProgress(str(tmp_path), {"a.warc.gz": 3_000_000, "b.jsonl": 1_000_000})
    _written_totals(progress.folder)
    stream = io.StringIO()
    with ProgressDisplay("pipeline clean", progress, ["read", "extract"], stream=stream, interval_s=0.05):
        while stream.getvalue().count("\n") < 2:
            threading.Event().wait(0.05)
    line = stream.getvalue().splitlines()[0]
    assert re.fullmatch(r"pipeline clean: \d+s: files 1/2; 2\.0/4\.0 MB \(50%\); [\d,.]+ docs/s; docs read 40, extract 30",
                        line), line


@pytest.mark.parametrize("ending", [KeyboardInterrupt, RuntimeError])
def test_the_display_stops_however_the_run_ends(tmp_path, ending):
    progress = RunProgress(str(tmp_path), {})
    with pytest.raises(ending):
        with ProgressDisplay("pipeline clean", progress, ["read"], stream=io.StringIO(), interval_s=0.05):
            raise ending()
    assert not [t for t in threading.enumerate() if t.name == "progress"]


def test_at_a_terminal_the_progress_is_a_bar(tmp_path):
    progress = RunProgress(str(tmp_path), {"a.warc.gz": 4_000_000})
    _written_totals(progress.folder)
    controller, terminal = pty.openpty()
    shown = b""
    with open(terminal, "w", closefd=True) as stream:
        with ProgressDisplay("pipeline clean", progress, ["read", "extract"], stream=stream):
            while b"docs read 40, extract 30" not in shown:
                ready, _, _ = select.select([controller], [], [], 30)
                assert ready, shown
                shown += os.read(controller, 4096)
    os.close(controller)
    assert b"pipeline clean:  50%" in shown and b"\r" in shown     # one line, redrawn in place


def test_a_dataflow_job_is_announced_with_its_console_page():
    beam_args = ["--runner=DataflowRunner", "--project=my-project", "--region=europe-west4"]
    url = dataflow_console_url("2026-11-28_01_02_03-123", beam_args)
    assert url == ("https://console.cloud.google.com/dataflow/jobs/europe-west4/2026-11-28_01_02_03-123"
                   "?project=my-project")

    class SubmittedJob:   # what DataflowRunner returns (its client is not installed offline): a job id
        def job_id(self):
            return "2026-11-28_01_02_03-123"

    stream = io.StringIO()
    announce_job("pipeline clean", SubmittedJob(), beam_args, stream)
    assert stream.getvalue() == f"pipeline clean: Dataflow job 2026-11-28_01_02_03-123: {url}\n"
    quiet = io.StringIO()
    announce_job("pipeline clean", SubmittedJob(), ["--runner=DirectRunner"], quiet)
    assert quiet.getvalue() == ""
