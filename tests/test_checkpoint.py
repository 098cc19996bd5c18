import json
import os
import random

import numpy as np
import pytest
import torch

from tests.train_shards import write_byte_shards
from train import checkpoint as ckpt
from train.config import TrainConfig
from train.loop import train

# Dropout and gradient accumulation on, so that resuming must restore RNG states and loader position.
CONFIG = TrainConfig(preset="tiny", block_size=32, batch_size=4, grad_accum=2, dropout=0.1, max_steps=8,
                     decay_steps=8, warmup_steps=2, lr=3e-3, min_lr=3e-4, log_interval=1, eval_interval=2,
                     eval_steps=2, ckpt_interval=4, keep_last=2, sample_interval=0, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_byte_shards(tmp_path_factory.mktemp("byte-shards"))


def logged(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_resume_gives_the_same_losses_step_for_step(shards, tmp_path):
    straight = train(CONFIG, shards, tmp_path / "straight")

    # A run that died after step 6 was logged but before its checkpoint reached the disk.
    interrupted = tmp_path / "interrupted"
    train(CONFIG.__class__(**{**vars(CONFIG), "max_steps": 6}), shards, interrupted)
    ckpt.checkpoint_path(interrupted, 6).unlink()
    assert [step for step, _ in ckpt.list_checkpoints(interrupted)] == [4]
    resumed = train(CONFIG, shards, interrupted, resume=True)

    expected, actual = logged(tmp_path / "straight"), logged(interrupted)
    assert [r["step"] for r in actual] == list(range(1, 9))
    for want, got in zip(expected, actual):
        assert got["train_loss"] == want["train_loss"] and got["lr"] == want["lr"]
        assert got.get("val_loss") == want.get("val_loss")
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_a_new_run_refuses_to_overwrite_checkpoints(shards, tmp_path):
    config = TrainConfig(**{**vars(CONFIG), "max_steps": 2, "grad_accum": 1})
    train(config, shards, tmp_path / "run")
    from train.loop import TrainError

    with pytest.raises(TrainError, match="--resume"):
        train(config, shards, tmp_path / "run")


def test_retention_keeps_the_newest(tmp_path):
    for step in range(1, 6):
        ckpt.save_checkpoint(tmp_path, step, {"step": step}, keep_last=2)
    assert [step for step, _ in ckpt.list_checkpoints(tmp_path)] == [4, 5]
    assert ckpt.latest_checkpoint(tmp_path) == ckpt.checkpoint_path(tmp_path, 5)
    assert ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path, 4)) == {"step": 4}


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    ckpt.save_checkpoint(tmp_path, 1, {"step": 1}, keep_last=3)

    def broken_save(obj, file):
        file.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(ckpt.CheckpointError, match=r"step-00000002.pt: No space left on device \[Errno 28\]"):
        ckpt.save_checkpoint(tmp_path, 2, {"step": 2}, keep_last=3)
    assert os.listdir(tmp_path / ckpt.CHECKPOINT_DIR) == ["step-00000001.pt"]


def test_loading_is_weights_only_and_errors_are_one_line(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"payload": np.random.default_rng()}, path)  # an arbitrary pickled object
    with pytest.raises(ckpt.CheckpointError, match="cannot read checkpoint"):
        ckpt.load_checkpoint(path)
    truncated = tmp_path / "truncated.pt"
    torch.save({"w": torch.ones(100)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:50])
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.load_checkpoint(truncated)
    assert "\n" not in str(info.value)
    with pytest.raises(ckpt.CheckpointError, match="not found"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.random(), np.random.normal(), torch.rand(1)  # mid-stream, with numpy's cached gaussian
    ckpt.save_checkpoint(tmp_path, 1, {"rng": ckpt.rng_state()}, keep_last=1)
    draws = (random.random(), np.random.normal(), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.set_rng_state(ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path, 1))["rng"])
    again = (random.random(), np.random.normal(), torch.rand(3))
    assert draws[0] == again[0] and draws[1] == again[1] and torch.equal(draws[2], again[2])


def test_a_checkpoint_without_its_keys_is_named_in_one_line(shards, tmp_path, capsys):
    from train.__main__ import main

    run = tmp_path / "run"
    ckpt.save_checkpoint(run, 1, {"model": {}, "step": 1}, keep_last=1)
    path = ckpt.checkpoint_path(run, 1)
    for argv in (["export", "--checkpoint", str(path), "--output", str(tmp_path / "hf")],
                 ["--data", str(shards), "--out", str(run), "--resume", "--device", "cpu"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err and "lacks model_config" in err, err
    torch.save({"model": {}, "model_config": {"n_layer": "two"}}, path)
    assert main(["export", "--checkpoint", str(path), "--output", str(tmp_path / "hf")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err


def test_resume_falls_back_past_a_cut_checkpoint_cleans_leftovers_and_a_cut_metrics_line(shards, tmp_path, capsys):
    train(CONFIG, shards, tmp_path / "straight")
    run = tmp_path / "run"
    train(TrainConfig(**{**vars(CONFIG), "max_steps": 6}), shards, run)
    newest = ckpt.checkpoint_path(run, 6)
    newest.write_bytes(newest.read_bytes()[:newest.stat().st_size // 2])  # a crash mid-copy, say
    leftover = newest.with_name(".step-00000007.pt.tmp-4242")
    leftover.write_bytes(b"an interrupted write")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 7, "train_lo')  # the process died mid-line
    capsys.readouterr()

    train(CONFIG, shards, run, resume=True)
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and str(newest) in warning and "step-00000004.pt" in warning
    assert not leftover.exists()
    expected, actual = logged(tmp_path / "straight"), logged(run)
    assert [r["step"] for r in actual] == list(range(1, 9))
    assert [r["train_loss"] for r in actual] == [r["train_loss"] for r in expected]


def test_resume_refuses_when_no_checkpoint_is_readable(shards, tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(**{**vars(CONFIG), "max_steps": 2, "grad_accum": 1}), shards, run)
    for _, path in ckpt.list_checkpoints(run):
        path.write_bytes(b"")
    with pytest.raises(ckpt.CheckpointError, match="no readable checkpoint"):
        train(CONFIG, shards, run, resume=True)


def test_resume_refuses_shards_retokenized_into_another_layout(shards, tmp_path):
    from tests.train_shards import BYTE_EOT, BYTE_VOCAB
    from common.shard_format import open_shards, write_shard_dir
    from train.data import DataError

    # The same documents per shard in reverse order: equal token counts and windows, different batches.
    reordered = {split: [[shard.document(k).tolist() for k in reversed(range(shard.num_docs))]
                         for shard in open_shards(shards, split)] for split in ("train", "val")}
    other = write_shard_dir(tmp_path / "other", reordered, BYTE_VOCAB, BYTE_EOT)
    run = tmp_path / "run"
    config = TrainConfig(**{**vars(CONFIG), "max_steps": 2, "grad_accum": 1})
    train(config, shards, run)
    with pytest.raises(DataError, match="not the ones this run was trained on"):
        train(TrainConfig(**{**vars(config), "max_steps": 4}), other, run, resume=True)


def test_best_validation_keeps_weights_only_not_a_full_checkpoint(shards, tmp_path):
    from train.sample import load_model

    result = train(CONFIG, shards, tmp_path / "run")
    # full checkpoints only at ckpt_interval and the end, however often validation improved
    assert [step for step, _ in ckpt.list_checkpoints(tmp_path / "run")] == [4, 8]
    evals = [r for r in logged(tmp_path / "run") if "val_loss" in r]
    best = min(evals, key=lambda r: r["val_loss"])
    saved = ckpt.load_checkpoint(tmp_path / "run" / ckpt.CHECKPOINT_DIR / ckpt.BEST_FILE)
    assert "optimizer" not in saved and saved["step"] == best["step"] and saved["val_loss"] == best["val_loss"]
    if best["step"] == CONFIG.max_steps:
        best_model = load_model(tmp_path / "run" / ckpt.CHECKPOINT_DIR / ckpt.BEST_FILE)
        for name, tensor in result.model.state_dict().items():
            assert torch.equal(tensor, best_model.state_dict()[name]), name
    assert all(r["eval_s"] > 0 for r in evals)


def test_a_checkpoint_write_failing_in_the_background_stops_the_run(shards, tmp_path, monkeypatch):
    def full_disk(obj, file):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(ckpt.CheckpointError, match="No space left on device"):
        train(TrainConfig(**{**vars(CONFIG), "eval_interval": 0, "ckpt_interval": 2}), shards, tmp_path / "run")
    assert ckpt.list_checkpoints(tmp_path / "run") == []
