"""A full disk while writing checkpoints, model.safetensors or an export: one line, exit 1, no half file,
the previous checkpoint intact. The disk "fills" through RLIMIT_FSIZE in a child process (with SIGXFSZ
ignored, writes past the limit fail with EFBIG), which needs no root and no real full disk."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train_shards import write_byte_shards
from train import checkpoint as ckpt
from train.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
TRAIN = ["--preset", "tiny", "--block_size", "16", "--batch_size", "2", "--log_interval", "1",
         "--eval_interval", "0", "--ckpt_interval", "2", "--device", "cpu"]


def main_with_file_size_limit(limit_bytes: int, *argv) -> subprocess.CompletedProcess:
    code = ("import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes}))\n"
            "from train.__main__ import main\n"
            f"sys.exit(main({[str(a) for a in argv]!r}))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=180)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if ".tmp-" in p.name)


@pytest.fixture(scope="module")
def run_of_two_steps(tmp_path_factory):
    shards = write_byte_shards(tmp_path_factory.mktemp("byte-shards"))
    run = tmp_path_factory.mktemp("runs") / "run"
    assert main(["--data", str(shards), "--out", str(run), "--max_steps", "2", *TRAIN]) == 0
    return shards, run


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(run_of_two_steps):
    shards, run = run_of_two_steps
    before = ckpt.checkpoint_path(run, 2).read_bytes()
    done = main_with_file_size_limit(100_000, "--data", shards, "--out", run, "--resume", "--max_steps", "4")
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "File too large" in done.stderr, done.stderr
    assert [step for step, _ in ckpt.list_checkpoints(run)] == [2]
    assert ckpt.checkpoint_path(run, 2).read_bytes() == before
    assert leftovers(run) == []


def test_a_full_disk_while_exporting_leaves_no_half_model(run_of_two_steps, tmp_path):
    _, run = run_of_two_steps
    done = main_with_file_size_limit(100_000, "export", "--checkpoint", run, "--output", tmp_path / "hf")
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "File too large" in done.stderr, done.stderr
    assert not (tmp_path / "hf" / "model.safetensors").exists()
    assert leftovers(tmp_path) == []
