import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.config_io import ConfigError
from tests.train_shards import write_byte_shards, write_tokenized_shards
from train.__main__ import main
from train.config import TrainConfig, load_config, to_toml
from train.loop import WarmupCosine, train

ROOT = Path(__file__).resolve().parents[1]
# One thread: tiny matrices run several times faster than with two threads on a shared 2-core machine.
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def byte_shards(tmp_path_factory):
    return write_byte_shards(tmp_path_factory.mktemp("byte-shards"))


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory):
    return write_tokenized_shards(tmp_path_factory.mktemp("tokenized"))


def run_cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "train", *map(str, args)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_loss_falls_on_real_text(byte_shards, tmp_path):
    config = TrainConfig(preset="tiny", block_size=64, batch_size=16, max_steps=40, lr=5e-3, min_lr=5e-4,
                         warmup_steps=5, log_interval=5, eval_interval=20, eval_steps=4, ckpt_interval=0,
                         sample_interval=0, device="cpu")
    result = train(config, byte_shards, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r["val_loss"] for r in rows if "val_loss" in r]
    assert rows[0]["train_loss"] > 4.5  # ln(320) = 5.77 at the start; UTF-8 bytes of 12 languages
    assert result.train_loss < 3.6 and evals[-1] < 3.6 and evals[-1] < evals[0]
    assert all(r["tokens_per_s"] > 0 and r["lr"] > 0 for r in rows)


def test_cli_trains_samples_and_exports(tokenized, tmp_path, capsys):
    run = tmp_path / "run"
    done = run_cli("--data", tokenized, "--out", run, "--preset", "tiny", "--block_size", "32",
                   "--batch_size", "4", "--max_steps", "6", "--log-interval", "2", "--eval_interval=3",
                   "--eval_steps", "2", "--sample_interval", "3", "--sample_tokens", "8")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("trained 6 steps")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 3, 4, 6]
    assert {"step", "train_loss", "lr", "tokens_per_s"} <= set(rows[0]) and "val_loss" not in rows[0]
    assert "val_loss" in rows[1] and "val_loss" in rows[3] and rows[1]["eval_s"] > 0
    assert "of the wall time" in done.stdout.strip().splitlines()[-1]
    assert load_config(run / "config.toml") == TrainConfig(
        preset="tiny", n_layer=2, n_head=2, n_embd=64, block_size=32, batch_size=4, max_steps=6,
        log_interval=2, eval_interval=3, eval_steps=2, sample_interval=3, sample_tokens=8)
    assert sorted(p.name for p in (run / "tokenizer").iterdir()) == ["tokenizer.model", "tokenizer_meta.json"]
    assert [json.loads(line)["step"] for line in (run / "samples.jsonl").read_text().splitlines()] == [3, 6]
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(run / "tensorboard"))
    assert (run / "model.safetensors").is_file()

    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(run), "--prompt", "All human beings", "--max-new-tokens", "12"]) == 0
    sampled = capsys.readouterr().out
    assert sampled.startswith("All human beings") and len(sampled.strip()) > len("All human beings")

    for weights in (run / "model.safetensors", sorted((run / "checkpoints").iterdir())[0]):
        assert main(["sample", "--checkpoint", str(weights), "--prompt", "Article", "--max-new-tokens", "4"]) == 0
        assert capsys.readouterr().out.startswith("Article")

    assert main(["export", "--checkpoint", str(run), "--output", str(tmp_path / "hf")]) == 0
    hf_config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert hf_config["n_layer"] == 2 and hf_config["eos_token_id"] == json.loads(
        (run / "tokenizer" / "tokenizer_meta.json").read_text())["eot_id"]


def test_resume_through_the_cli_reuses_the_run_config(byte_shards, tmp_path):
    run = tmp_path / "run"
    assert main(["--data", str(byte_shards), "--out", str(run), "--preset", "tiny", "--block_size", "16",
                 "--batch_size", "2", "--max_steps", "2", "--decay_steps", "4", "--log_interval", "1",
                 "--eval_interval", "0"]) == 0
    assert main(["--data", str(byte_shards), "--out", str(run), "--resume", "--max_steps", "4"]) == 0
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert load_config(run / "config.toml").block_size == 16


def test_speed_switches_reach_the_model_and_may_change_on_resume(byte_shards, tmp_path):
    run = tmp_path / "run"
    common = ["--data", str(byte_shards), "--out", str(run), "--log_interval", "1", "--eval_interval", "0"]
    assert main([*common, "--preset", "tiny", "--block_size", "16", "--batch_size", "2", "--max_steps", "2",
                 "--loss_chunk", "7", "--sdpa_backend", "math"]) == 0
    saved = torch.load(sorted((run / "checkpoints").glob("step-*.pt"))[-1], weights_only=False)
    assert saved["model_config"]["loss_chunk"] == 7 and saved["model_config"]["sdpa_backend"] == "math"
    # how the loss is computed is not part of the model: a resumed run may switch it
    assert main([*common, "--resume", "--max_steps", "4", "--loss_chunk", "0", "--sdpa_backend", "auto"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(math.isfinite(r["train_loss"]) for r in rows)


def test_resume_with_a_larger_max_steps_stretches_the_schedule_to_the_new_end(byte_shards, tmp_path):
    common = ["--data", str(byte_shards), "--preset", "tiny", "--block_size", "16", "--batch_size", "2",
              "--warmup_steps", "1", "--log_interval", "1", "--eval_interval", "0", "--ckpt_interval", "4"]
    assert main([*common, "--out", str(tmp_path / "straight"), "--max_steps", "8"]) == 0
    assert main([*common, "--out", str(tmp_path / "run"), "--max_steps", "4"]) == 0
    assert main(["--data", str(byte_shards), "--out", str(tmp_path / "run"), "--resume", "--max_steps", "8"]) == 0
    straight, extended = ([json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
                          for name in ("straight", "run"))
    # After the resume the lr follows the 8-step cosine, as if the run had been asked for 8 steps from the start.
    assert [r["lr"] for r in extended[4:]] == [r["lr"] for r in straight[4:]]
    assert extended[4]["lr"] > 3 * TrainConfig().min_lr
    assert "decay_steps" not in (tmp_path / "run" / "config.toml").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--out", "x"], "--data"),
    (["--data", ".", "--out", "x", "--no_such_key", "1"], "unknown config key 'no_such_key'"),
    (["--data", ".", "--out", "x", "--batch_size", "many"], "batch_size must be an integer"),
    (["--data", ".", "--out", "x", "--device", "tpu"], "device must be one of"),
    (["--data", ".", "--out", "x", "--preset", "huge"], "preset must be one of"),
    (["--data", ".", "--out", "x", "--lr"], "--lr needs a value"),
    (["--data", ".", "--out", "x", "stray"], "unexpected argument 'stray'"),
    (["--data", "/no/such/dir", "--out", "x"], "/no/such/dir: no such file or directory"),
    (["--data", ".", "--out", "x", "--n_head", "3"], "n_embd (64) must be divisible by n_head (3)"),
    (["--data", ".", "--out", "x", "--preset", "mini", "--n_embd", "66"], "n_embd (66) must be divisible by n_head (4)"),
    (["--data", ".", "--out", "x", "--lr", "1e-4", "--min_lr", "1e-3"], "min_lr (0.001) must not exceed lr (0.0001)"),
    (["--data", ".", "--out", "x", "--beta1", "2"], "beta1 must be in [0, 1), got 2.0"),
    (["--data", ".", "--out", "x", "--beta2", "nan"], "beta2 must be a finite number, got nan"),
    (["--data", ".", "--out", "x", "--lr", "inf"], "lr must be a finite number, got inf"),
    (["--data", ".", "--out", "x", "--min_lr", "nan"], "min_lr must be a finite number, got nan"),
    (["--data", ".", "--out", "x", "--weight_decay", "-inf"], "weight_decay must be a finite number"),
    (["--data", ".", "--out", "x", "--max_steps", "-5"], "max_steps must be positive, got -5"),
    (["--data", ".", "--out", "x", "--batch_size", "0"], "batch_size must be positive, got 0"),
    (["--data", ".", "--out", "x", "--decay_steps", "0"], "decay_steps must be positive, got 0"),
    (["--data", ".", "--out", "x", "--dropout", "1"], "dropout must be in [0, 1), got 1.0"),
    (["--data", ".", "--out", "x", "--grad_clip", "-1"], "grad_clip must not be negative"),
    (["--data", ".", "--out", "x", "--config", "/no/such.toml"], "/no/such.toml: no such file or directory"),
    (["sample"], "--checkpoint"),
    (["sample", "--checkpoint", ".", "--max-new-tokens", "0"], "--max-new-tokens must be positive"),
    (["sample", "--checkpoint", ".", "--temperature", "nan"], "--temperature must be a finite number >= 0"),
    (["sample", "--checkpoint", ".", "--temperature", "inf"], "--temperature must be a finite number >= 0"),
    (["sample", "--checkpoint", ".", "--temperature", "-0.5"], "--temperature must be a finite number >= 0"),
    (["sample", "--checkpoint", ".", "--top-k", "0"], "--top-k must be positive"),
    (["sample", "--checkpoint", ".", "--num-samples", "-1"], "--num-samples must be positive"),
])
def test_bad_arguments_give_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_diverging_run_stops_with_one_line_and_exit_1(byte_shards, tmp_path, capsys):
    # An absurd learning rate overflows the weights within a few steps: the loss becomes nan or inf.
    assert main(["--data", str(byte_shards), "--out", str(tmp_path / "run"), "--preset", "tiny",
                 "--block_size", "16", "--batch_size", "2", "--max_steps", "30", "--warmup_steps", "0",
                 "--lr", "1e30", "--min_lr", "1e30", "--grad_clip", "0", "--log_interval", "10",
                 "--eval_interval", "0", "--ckpt_interval", "5", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "loss is not finite" in err and "lower lr" in err, err
    assert not list((tmp_path / "run" / "checkpoints").glob("*.pt")), "a diverged state was checkpointed"


def test_data_problems_give_one_line_and_exit_1(tmp_path, capsys):
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "no manifest" in err and err.count("\n") == 1
    assert main(["sample", "--checkpoint", str(tmp_path), "--tokenizer", str(tmp_path)]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_help_lists_the_config_keys(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "python -m train sample" in out
    assert all(f"--{key}" in out for key in ("max-steps", "n-layer", "grad-accum", "compile", "dtype"))
    assert "--max_steps 100" in " ".join(out.split())  # the underscore spelling (the TOML key's) is stated to work too
    assert "grad-accum is global" in out and "--resume --max-steps 2N" in " ".join(out.split())


def test_the_trainer_never_imports_beam(tokenized):
    code = ("import sys, train, train.__main__, train.loop, train.sample, model, model.hf_export\n"
            f"train.sample.load_tokenizer({str(tokenized.parent / 'tok')!r})\n"
            "assert 'apache_beam' not in sys.modules, 'beam was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_schedule_warms_up_then_decays_to_min_lr():
    schedule = WarmupCosine(warmup_steps=10, decay_steps=110, min_ratio=0.1)
    assert schedule(0) == pytest.approx(0.1) and schedule(9) == pytest.approx(1.0)
    assert schedule(60) == pytest.approx(0.55)
    assert schedule(110) == schedule(500) == pytest.approx(0.1)
    values = [schedule(i) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_config_round_trips_through_toml(tmp_path):
    config = TrainConfig(lr=1e-5, min_lr=1e-6, device="cpu", compile=True, n_layer=3).resolved()
    (tmp_path / "c.toml").write_text(to_toml(config))
    assert load_config(tmp_path / "c.toml") == config
    assert config.model_shape() == {"n_layer": 3, "n_head": 2, "n_embd": 64}
    with pytest.raises(ConfigError, match="must be positive"):
        TrainConfig(max_steps=0)
    assert math.isclose(load_config(None, {"lr": "2e-4", "min_lr": "2e-5"}).lr, 2e-4)
    # keys that are checked together may be overridden in any order
    assert load_config(None, {"lr": "1e-4", "min_lr": "1e-5", "n_embd": "66", "n_head": "6"}).n_head == 6
