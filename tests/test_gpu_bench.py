"""Every part of bench/gpu.sh at tiny size on the CPU: the script a GPU session will run, exercised end to end."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["--device", "cpu", "--dtype", "float32", "--preset", "tiny", "--block-size", "32", "--batch-size", "4",
        "--vocab-size", "512", "--steps", "6", "--log-interval", "2", "--measure-from", "2", "--resume-steps", "2",
        "--rounds", "2", "--ref-steps", "2", "--compile-backend", "eager", "--budget-s", "240"]


def gpu_sh(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out), "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(REPO / "bench/gpu.sh"), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_every_part_runs_at_tiny_size_and_the_summary_reports_it(tmp_path):
    out = tmp_path / "gpu"
    done = gpu_sh(out, *TINY, "--loss-chunk", "16", "--peak-tflops", "1")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0 and summary["ok"], done.stderr
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["part"] for r in records] == ["preflight", "shards", "train_compiled", "train_eager", "reference", "resume"]
    assert summary["parts"] == {r["part"]: "ok" for r in records}
    assert json.loads((out / "summary.json").read_text()) == summary
    parts = {r["part"]: r for r in records}
    assert "math" in summary["sdpa_ok"] and parts["preflight"]["peak_bf16_tflops"] == 1
    assert parts["shards"]["writer"] == "common.shard_format.write_shard_dir" and not parts["shards"]["beam_imported"]
    for mode in ("compiled", "eager"):
        assert summary["tokens_per_s"][mode] > 0 and 0 < summary["mfu"][mode] < 1
        assert parts[f"train_{mode}"]["measured_steps"] == [3, 6] and parts[f"train_{mode}"]["peak_rss_mib"] > 0
    assert summary["graph_breaks"] == 0 and parts["train_compiled"]["graphs"] >= 1
    assert set(summary["ratio_vs_nanogpt"]) == {"ours", "ours_loss_chunk_16"}
    assert all(ratio > 0 for ratio in summary["ratio_vs_nanogpt"].values())
    assert set(parts["reference"]["mfu"]) == {"ours", "ours_loss_chunk_16", "nanogpt"}
    # the CPU is deterministic: the resumed half and the control must both agree exactly
    assert parts["resume"]["control_exact"] and parts["resume"]["resume_exact"] and summary["resume_ok"]


def test_a_part_that_hangs_or_fails_is_recorded_and_the_run_goes_on(tmp_path):
    out = tmp_path / "gpu"
    done = gpu_sh(out, *TINY, "--parts", "preflight,shards,train_eager,resume", "--timeout", "preflight=0.5",
                  "--train-arg", "no_such_key=1", "--timeout", "resume=0.5")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 1 and not summary["ok"]
    assert summary["parts"] == {"preflight": "timeout", "shards": "ok", "train_eager": "failed", "resume": "timeout"}
    records = {json.loads(line)["part"]: json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()}
    assert "unknown config key 'no_such_key'" in records["train_eager"]["error"]
    assert "\n" not in records["train_eager"]["error"]


def test_bad_options_are_one_line_errors(tmp_path):
    done = gpu_sh(tmp_path / "gpu", "--parts", "preflight,warp")
    assert done.returncode == 2 and "unknown part(s) warp" in done.stderr.strip().splitlines()[-1]
