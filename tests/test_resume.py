"""A killed local `clean` resumes from the work units it finished, and ends byte-identical to a one-shot run."""
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from pipeline.document import FINGERPRINT, JOURNAL_REF, REPLAYED_FIELDS, TEXT_REF, TRAIL
from pipeline.resume import frame, frames, plan_fingerprint, unit_is_done, unit_key
from pipeline.stages.journal import PASSES, JournalUnits, ReplayJournals
from pipeline.stages.routing import KEPT, REJECTED
from pipeline.stages.spill import SpillReader
from pipeline.units import Unit

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data/sample"


def test_unit_keys_are_stable_distinct_and_safe_as_folder_names():
    assert unit_key(Unit("/data/a/part-0000.jsonl")) == unit_key(Unit("/data/a/part-0000.jsonl"))
    assert unit_key(Unit("/data/a/part-0000.jsonl")) != unit_key(Unit("/data/b/part-0000.jsonl"))
    assert unit_key(Unit("x.warc.gz", 0, 2)) != unit_key(Unit("x.warc.gz", 1, 2))
    key = unit_key(Unit("https://host/path/a b?c=d&e"))
    assert key.startswith("a_b_c_d_e-") and "/" not in key


def test_the_plan_fingerprint_changes_with_what_decides_the_output():
    config, inputs, versions = {"output": {"num_shards": 4}}, [("a.jsonl", 10, 1.0)], {"webcorpus-gpt": "0.1"}
    same = plan_fingerprint(config, inputs, versions)
    assert plan_fingerprint({"output": {"num_shards": 4}}, [("a.jsonl", 10, 1.0)], {"webcorpus-gpt": "0.1"}) == same
    assert plan_fingerprint({"output": {"num_shards": 2}}, inputs, versions) != same
    assert plan_fingerprint(config, [("a.jsonl", 10, 2.0)], versions) != same          # the file was rewritten
    assert plan_fingerprint(config, [("b.jsonl", 1, 1.0), *inputs], versions) != same  # another input
    assert plan_fingerprint(config, inputs, {"webcorpus-gpt": "0.2"}) != same


def test_a_unit_is_done_only_when_its_journal_holds_what_its_marker_counts():
    assert unit_is_done(3, 3) and unit_is_done(0, 0)
    assert not unit_is_done(None, 3)   # read, but killed before the end of the unit
    assert not unit_is_done(3, 2)      # marked, but the journal did not reach the disk
    assert not unit_is_done(3, 4)


def test_a_journal_entry_cut_short_ends_the_journal():
    whole = frame(b"first") + frame(b"") + frame(b"third")
    assert list(frames(io.BytesIO(whole))) == [(8, b"first"), (21, b""), (29, b"third")]
    assert [payload for _, payload in frames(io.BytesIO(whole[:-1]))] == [b"first", b""]
    assert list(frames(io.BytesIO(whole[:3]))) == []
    assert all(whole[offset:offset + len(payload)] == payload for offset, payload in frames(io.BytesIO(whole)))


# A real run killed part-way: several small inputs, one unit each, read one after another (--workers 1).

def test_replayed_records_carry_only_what_later_steps_read_and_are_restored_whole(tmp_path):
    # Between the journal and the writers, FnApiRunner holds every record of the corpus in memory;
    # there a record is its routing fields and a reference, not its ~40 quality signals.
    work = str(tmp_path / ".work")
    unit = Unit("in.jsonl", 0, 1)
    (tmp_path / "spill.txt").write_bytes("ünï".encode())
    signals = {f"signal_{i}": i / 7 for i in range(40)}
    kept = {"id": "a", "source": "in.jsonl", "url": "https://a", "lang": "en", "date": "2024-01-01",
            TEXT_REF: (str(tmp_path / "spill.txt"), 0, 5), FINGERPRINT: ("hash", [b"band"], 0.0), **signals}
    rejected = {"id": "b", "source": "in.jsonl", "url": None, "stage": "quality", "reason": "too_short",
                "lang": "en", "decision": {"signal": "words", "value": 3}, "text": "short"}
    trail = {TRAIL: (unit_key(unit), (("read", 5),))}
    with beam.Pipeline(runner=FnApiRunner()) as p:
        streams = (p | "Kept" >> beam.Create([{**kept, **trail}]), p | "Rejected" >> beam.Create([{**rejected, **trail}]))
        streams | JournalUnits(work)

    def restored(record):
        with SpillReader() as reader:   # the dedup stage drops the fingerprint; it must not come back
            return reader.restore({key: value for key, value in record.items() if key != FINGERPRINT})

    with beam.Pipeline(runner=FnApiRunner()) as p:
        replayed = p | ReplayJournals(work, [unit])
        replayed_kept, replayed_rejected, passes = replayed[KEPT], replayed[REJECTED], replayed[PASSES]
        assert_that(replayed_kept | "KeptFields" >> beam.Map(sorted), equal_to(
            [sorted({"id", "source", "url", "lang", TEXT_REF, FINGERPRINT, JOURNAL_REF})]), label="KeptCompact")
        assert_that(replayed_rejected | "RejectedFields" >> beam.Map(sorted), equal_to(
            [sorted({*rejected} & REPLAYED_FIELDS | {JOURNAL_REF})]), label="RejectedCompact")
        whole_kept = {key: value for key, value in kept.items() if key not in (TEXT_REF, FINGERPRINT)}
        assert_that(replayed_kept | "RestoreKept" >> beam.Map(restored), equal_to([{**whole_kept, "text": "ünï"}]),
                    label="KeptWhole")
        assert_that(replayed_rejected | "RestoreRejected" >> beam.Map(restored), equal_to([rejected]),
                    label="RejectedWhole")
        assert_that(passes, equal_to([("read", 5)] * 2), label="Passes")


def _inputs(root: Path) -> Path:
    inputs = root / "in"
    inputs.mkdir()
    shutil.copy(SAMPLE / "web/cc-main-2020-34-sample.warc.gz", inputs / "crawl.warc.gz")
    for page in sorted((SAMPLE / "html").glob("*.html"))[:4]:
        shutil.copy(page, inputs / page.name)
    for name in ("en-1.txt", "en-2.txt"):   # the same text twice: dedup must see both, resumed or not
        shutil.copy(SAMPLE / "text/udhr/en.txt", inputs / name)
    shutil.copy(SAMPLE / "jsonl/dolma-cc_en_head-0174.jsonl.gz", inputs / "docs.jsonl.gz")
    return inputs


def _clean_command(inputs: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "clean", "--input", str(inputs), "--output", str(out),
            "--workers", "1", *extra]


def _clean(inputs: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(_clean_command(inputs, out, *extra), cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    return result


def _markers(out: Path) -> list[Path]:
    return sorted((out / ".work" / "units").glob("*/done.json"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The inputs, a one-shot run of them, and a run killed once at least two units were marked done."""
    root = tmp_path_factory.mktemp("resume")
    inputs = _inputs(root)
    killed = root / "killed"
    process = subprocess.Popen(_clean_command(inputs, killed), cwd=REPO, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        while len(_markers(killed)) < 2 and process.poll() is None:
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert len(_markers(killed)) >= 2, "the run ended before two units were done"
    one_shot = root / "one-shot"
    _clean(inputs, one_shot)
    return inputs, killed, one_shot


def _outputs(out: Path) -> dict[str, bytes]:
    files = [out / "stats.json", *sorted((out / "cleaned").glob("part-*")), *sorted((out / "rejected").glob("part-*"))]
    return {str(path.relative_to(out)): path.read_bytes() for path in files}


def _resumed(stderr: str) -> tuple[int, int]:
    line = next(line for line in stderr.splitlines() if "resuming:" in line)
    assert line.startswith("pipeline clean: resuming: ") and line.endswith(" work units already done"), line
    done, _, total = line.split("resuming: ")[1].split()[:3]
    return int(done), int(total)


def test_a_killed_run_resumes_from_its_done_units_and_ends_as_a_one_shot_run(runs, tmp_path):
    inputs, killed, one_shot = runs
    out = tmp_path / "out"
    shutil.copytree(killed, out)
    rerun = _clean(inputs, out)
    done, total = _resumed(rerun.stderr)
    assert (done, total) == (len(_markers(killed)), len(list(inputs.iterdir())))
    assert "documents in" in rerun.stdout
    assert _outputs(out) == _outputs(one_shot)
    assert not (out / ".work").exists()


def test_a_changed_config_discards_the_unfinished_run(runs, tmp_path):
    inputs, killed, one_shot = runs
    out = tmp_path / "out"
    shutil.copytree(killed, out)
    rerun = _clean(inputs, out, "--stages", "extract")   # another plan, and a quick one to run
    assert f"pipeline clean: discarding the unfinished run in {out}/.work: its options or inputs differ" in rerun.stderr
    assert "resuming" not in rerun.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["stages"] == ["read", "extract"]
    assert stats["input_docs"] == json.loads((one_shot / "stats.json").read_text())["input_docs"]
    assert not (out / ".work").exists()


def test_a_unit_whose_journal_is_short_of_its_marker_is_read_again(runs, tmp_path):
    inputs, killed, one_shot = runs
    out = tmp_path / "out"
    shutil.copytree(killed, out)
    # Drop the last byte of a done unit's journal, as a kill before the write reached the disk would.
    shortened = next(journal for marker in _markers(out) for journal in sorted(marker.parent.glob("*.journal")))
    shortened.write_bytes(shortened.read_bytes()[:-1])
    rerun = _clean(inputs, out)
    assert _resumed(rerun.stderr) == (len(_markers(killed)) - 1, len(list(inputs.iterdir())))
    assert _outputs(out) == _outputs(one_shot)
