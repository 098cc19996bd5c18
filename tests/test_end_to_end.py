"""The whole product on the bundled sample, through its command lines, as a user runs it."""
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.run_outputs import identical_outputs

REPO = Path(__file__).resolve().parents[1]
SAMPLE = [str(REPO / "data/sample" / part) for part in ("web", "jsonl", "html", "text/udhr")]


def run(*args, check=True):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def read_jsonl_dir(directory: Path):
    return [json.loads(line) for f in sorted(directory.glob("part-*.jsonl.gz"))
            for line in gzip.open(f, "rt", encoding="utf-8")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e")
    run("pipeline", "clean", "--input", *SAMPLE, "--output", str(out / "clean"), "--langs", "en,de,fr,es")
    run("tokenizer", "train", "--input", str(out / "clean/cleaned"), "--output", str(out / "tok"), "--vocab-size", "2000")
    run("pipeline", "tokenize", "--input", str(out / "clean/cleaned"), "--tokenizer", str(out / "tok"),
        "--output", str(out / "shards"), "--num-shards", "2")
    run("train", "--data", str(out / "shards"), "--out", str(out / "run"), "--preset", "tiny", "--max_steps", "150",
        "--eval_interval", "50", "--ckpt_interval", "150", "--batch_size", "8", "--block_size", "64", "--lr", "3e-3")
    return out


def test_clean_accounts_for_every_document(demo):
    stats = json.loads((demo / "clean/stats.json").read_text())
    kept = read_jsonl_dir(demo / "clean/cleaned")
    rejected = read_jsonl_dir(demo / "clean/rejected")
    assert stats["input_docs"] == stats["kept_docs"] + sum(stats["rejected"].values())
    assert stats["kept_docs"] == len(kept) > 100
    assert sum(stats["rejected"].values()) == len(rejected)
    reasons = set(stats["rejected"])
    assert any(r.startswith("lang") for r in reasons), reasons
    assert {"exact_duplicate", "near_duplicate"} & reasons, reasons
    assert len(reasons) >= 4, reasons
    assert {d["lang"] for d in kept} <= {"en", "de", "fr", "es"}
    assert len({d["id"] for d in kept}) == len(kept)
    for doc in kept:
        assert doc["text"].strip() and doc["source"] and 0.0 <= doc["lang_score"] <= 1.0
    for record in rejected:
        assert record["stage"] and record["reason"] and record["id"]
        if record["reason"].endswith("_duplicate"):
            assert record["duplicate_of"]
    report = (demo / "clean/report.html").read_text()
    assert "Funnel" in report and "<script" not in report


def test_shards_verify_and_decode_back_to_cleaned_text(demo):
    assert run("pipeline", "verify", str(demo / "shards")).returncode == 0
    manifest = json.loads((demo / "shards/manifest.json").read_text())
    assert manifest["shards"] and sum(s["num_docs"] for s in manifest["shards"]) == \
        json.loads((demo / "clean/stats.json").read_text())["kept_docs"]
    texts = {d["text"] for d in read_jsonl_dir(demo / "clean/cleaned")}
    for k in (0, 1, 5):
        decoded = run("pipeline", "inspect", str(demo / "shards"), "--doc", str(k)).stdout
        assert decoded.rstrip("\n") in texts or decoded in texts


def test_training_loss_falls_and_sample_generates(demo):
    metrics = [json.loads(line) for line in (demo / "run/metrics.jsonl").read_text().splitlines()]
    losses = [m["train_loss"] for m in metrics if "train_loss" in m]
    val_losses = [m["val_loss"] for m in metrics if "val_loss" in m]
    assert losses[-1] < losses[0] - 0.5, losses
    assert len(val_losses) == 3 and val_losses[-1] < val_losses[0], val_losses
    sample = run("train", "sample", "--checkpoint", str(demo / "run"), "--prompt", "The", "--max-new-tokens", "20")
    assert sample.stdout.strip()


def test_clean_is_byte_identical_across_runs_and_runners(tmp_path):
    sources = [str(REPO / "data/sample/jsonl/dolma-cc_en_head-0091.jsonl.gz"), str(REPO / "data/sample/web/cc_net-sample.warc.wet.gz"),
               str(REPO / "data/sample/html")]
    run("pipeline", "clean", "--input", *sources, "--output", str(tmp_path / "a"), "--langs", "all")
    run("pipeline", "clean", "--input", *sources, "--output", str(tmp_path / "b"), "--langs", "all",
        "--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    outputs_a, outputs_b = identical_outputs(tmp_path / "a"), identical_outputs(tmp_path / "b")
    assert sorted(outputs_a) == sorted(outputs_b) and {"stats.json", "report.html"} <= set(outputs_a)
    for rel, data in outputs_a.items():
        assert data == outputs_b[rel], rel


@pytest.mark.parametrize("args, message", [
    (["--input", "/nonexistent/nothing-*.warc.gz", "--output", "OUT"], "nothing"),
    (["--input", "data/sample/html", "--output", "OUT", "--stages", "extract,bogus"], "bogus"),
    (["--input", "data/sample/html", "--output", "OUT", "--set", "quality.nope=1"], "quality.nope"),
    (["--input", "data/sample/html", "--output", "OUT", "--runnr=DirectRunner"], "runnr"),
    (["--output", "OUT"], "--input"),
])
def test_clean_usage_errors_are_one_line_exit_2(tmp_path, args, message):
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    result = run("pipeline", "clean", *args, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message.lower() in lines[0].lower(), result.stderr
    assert not (tmp_path / "out").exists()


def test_help_of_every_command():
    for command in (["pipeline", "clean"], ["pipeline", "tokenize"], ["pipeline", "verify"], ["pipeline", "inspect"],
                    ["tokenizer", "train"], ["train"], ["train", "sample"]):
        result = run(*command, "--help")
        assert "usage" in result.stdout.lower()
