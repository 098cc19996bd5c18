"""Outputs are whole or visibly unfinished: atomic files, completion markers, no output over an input."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.fileio import atomic_write
from tokenizer.corpus import InputError, cleaned_files

REPO = Path(__file__).resolve().parents[1]
JSONL = REPO / "data/sample/jsonl"
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", *map(str, args)]


def run(*args):
    return subprocess.run(command(*args), cwd=REPO, env=ENV, capture_output=True, text=True)


def clean_args(source, out, num_shards):
    return ("pipeline", "clean", "--input", source, "--output", out, "--stages", "quality", "--num-shards", num_shards)


def test_atomic_write_over_an_existing_file_never_lets_it_disappear(tmp_path):
    target = tmp_path / "stats.json"
    target.write_bytes(b"old")
    done = tmp_path / "done"
    # A second process stats the target as fast as it can while this one replaces it again and again.
    watcher = subprocess.Popen([sys.executable, "-c", f"""
import os, sys
target, done, missing = {str(target)!r}, {str(done)!r}, 0
while not os.path.exists(done):
    missing += not os.path.exists(target)
print(missing)
"""], stdout=subprocess.PIPE, text=True)
    time.sleep(0.2)  # let the watcher start looking before the writes begin
    for n in range(400):
        atomic_write(str(target), f"version {n}".encode())
    done.touch()
    assert watcher.communicate(timeout=60)[0].strip() == "0"
    assert target.read_bytes() == b"version 399"


def test_clean_killed_over_an_older_run_is_refused_by_every_reader_and_a_rerun_recovers(tmp_path):
    out = tmp_path / "out"
    old = run(*clean_args(JSONL / "dolma-cc_en_head-0174.jsonl.gz", out, 6))
    assert old.returncode == 0, old.stderr
    cleaned = out / "cleaned"
    before = {p: p.stat().st_mtime_ns for p in cleaned.glob("part-*.jsonl.gz")}

    newer = subprocess.Popen(command(*clean_args(JSONL / "dolma-cc_en_head-0091.jsonl.gz", out, 4)), cwd=REPO, env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill it as soon as it has replaced one part file of the older run.
    while newer.poll() is None and all(p.stat().st_mtime_ns == t for p, t in before.items()):
        time.sleep(0.002)
    assert newer.poll() is None, "clean finished before it could be killed mid-run"
    newer.send_signal(signal.SIGKILL)
    newer.wait()

    with pytest.raises(InputError, match="incomplete"):
        cleaned_files(str(cleaned))
    (tmp_path / "tok").mkdir()  # an input must exist for the command to get as far as reading cleaned/
    for reader in (("tokenizer", "train", "--input", cleaned, "--output", tmp_path / "tok", "--vocab-size", 300),
                   ("pipeline", "tokenize", "--input", cleaned, "--tokenizer", tmp_path / "tok",
                    "--output", tmp_path / "shards")):
        refused = run(*reader)
        assert refused.returncode != 0
        assert len(refused.stderr.splitlines()) == 1 and "incomplete" in refused.stderr, refused.stderr
    positive = run("pipeline", "train-quality", "--positive", cleaned / "part-00000.jsonl.gz",
                   "--negative", cleaned / "part-00001.jsonl.gz", "--output", tmp_path / "q.bin")
    assert positive.returncode == 1 and "incomplete" in positive.stderr, positive.stderr

    again = run(*clean_args(JSONL / "dolma-cc_en_head-0091.jsonl.gz", out, 4))
    assert again.returncode == 0, again.stderr
    files = cleaned_files(str(cleaned))
    assert [Path(f).name for f in files] == [f"part-{i:05d}.jsonl.gz" for i in range(4)]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["input_docs"] == 10


def test_verify_calls_shards_without_a_manifest_incomplete(tmp_path):
    (tmp_path / "train-00000.bin").write_bytes(b"left by a tokenize run that was killed")
    result = run("pipeline", "verify", tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and "incomplete" in result.stderr, result.stderr


@pytest.mark.parametrize("layout", ["same", "output inside input", "input inside output"])
def test_clean_refuses_an_output_that_overlaps_an_input(tmp_path, layout):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_text('{"id": "a", "text": "some text"}\n')
    source, out = {"same": (data, data), "output inside input": (data, data / "out"),
                   "input inside output": (data / "a.jsonl", tmp_path)}[layout]
    result = run(*clean_args(source, out, 1))
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "overlap" in result.stderr, result.stderr
    assert sorted(p.name for p in data.iterdir()) == ["a.jsonl"]


def test_tokenize_refuses_to_write_into_its_input(tmp_path):
    cleaned = tmp_path / "cleaned"
    cleaned.mkdir()
    (tmp_path / "tok").mkdir()  # inputs must exist to get as far as the overlap check
    result = run("pipeline", "tokenize", "--input", cleaned, "--tokenizer", tmp_path / "tok", "--output", cleaned)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "overlap" in result.stderr, result.stderr
