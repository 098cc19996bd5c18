"""What a training run shows while it runs: loss.png at each evaluation, every step's loss, MFU, hparams."""
import math
import os
from pathlib import Path

import pytest
import torch

from common.config_io import ConfigError
from model.gpt import GPT, GPTConfig
from tests.train_shards import BYTE_VOCAB, write_byte_shards
from train import loop
from train.config import TrainConfig
from train.mfu import device_peak_tflops, mfu, peak_bf16_tflops
from train.plot import loss_curves, moving_average, read_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# rows at 3 (evaluation), 4 (log_interval) and 6 (the end, evaluated too)
RUN = dict(preset="tiny", block_size=16, batch_size=2, max_steps=6, log_interval=4, eval_interval=3, eval_steps=2,
           ckpt_interval=0, sample_interval=0, device="cpu", peak_tflops=0.5)


@pytest.fixture(scope="module")
def byte_shards(tmp_path_factory):
    return write_byte_shards(tmp_path_factory.mktemp("byte-shards"))


@pytest.fixture(scope="module")
def plotted_run(byte_shards, tmp_path_factory):
    """A run whose plotting is watched: after each call, the last step in metrics.jsonl and loss.png's bytes."""
    run = tmp_path_factory.mktemp("run") / "run"
    seen = []

    def plot_and_look(metrics_path, out_path, vocab_size):
        plot_losses(metrics_path, out_path, vocab_size)
        seen.append((read_metrics(metrics_path)[-1]["step"], out_path.read_bytes()))

    plot_losses = loop.plot_losses
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "plot_losses", plot_and_look)
        result = loop.train(TrainConfig(**RUN), byte_shards, run)
    torch.set_num_threads(threads)
    return run, seen, result


def test_loss_png_is_drawn_at_each_evaluation_not_only_at_the_end(plotted_run):
    run, seen, _ = plotted_run
    assert [step for step, _ in seen] == [3, 6]
    first, last = seen[0][1], seen[1][1]
    assert first.startswith(PNG_MAGIC) and last.startswith(PNG_MAGIC) and first != last
    assert (run / "loss.png").read_bytes() == last
    assert not [name for name in os.listdir(run) if ".tmp-" in name]  # written aside, then renamed


def test_every_step_loss_and_mfu_are_logged(plotted_run):
    run, _, result = plotted_run
    rows = read_metrics(run / "metrics.jsonl")
    assert [row["step"] for row in rows] == [3, 4, 6]
    assert [len(row["train_losses"]) for row in rows] == [3, 1, 2]
    for row in rows:
        assert {"step", "train_loss", "lr", "tokens_per_s", "mfu"} <= set(row)
        assert row["train_loss"] == row["train_losses"][-1]
        assert all(math.isfinite(loss) and loss > 0 for loss in row["train_losses"])
        assert row["mfu"] == pytest.approx(row["tokens_per_s"] * result.model.flops_per_token() / 0.5e12)
    assert "val_loss" in rows[0] and "val_loss" not in rows[1] and "val_loss" in rows[2]
    assert list(rows[0])[-1] == "train_losses"


def test_the_plotted_curves_hold_the_baseline_and_the_best_step(plotted_run):
    run, _, result = plotted_run
    curves = loss_curves(read_metrics(run / "metrics.jsonl"), BYTE_VOCAB)
    assert curves.train_steps == [1, 2, 3, 4, 5, 6] and len(curves.train_smoothed) == 6
    assert curves.uniform_loss == pytest.approx(math.log(BYTE_VOCAB))
    assert curves.val_steps == [3, 6] and curves.best_val_loss == result.best_val_loss == min(curves.val_losses)
    assert curves.best_step == curves.val_steps[curves.val_losses.index(result.best_val_loss)]
    assert curves.lr_steps == [3, 4, 6] and all(lr > 0 for lr in curves.lrs)


def test_loss_curves_from_rows():
    rows = [{"step": 2, "train_loss": 5.0, "train_losses": [6.0, 5.0], "lr": 1e-3, "tokens_per_s": 1.0},
            {"step": 4, "train_loss": 4.0, "train_losses": [4.5, 4.0], "lr": 2e-3, "tokens_per_s": 1.0,
             "val_loss": 4.2},
            {"step": 5, "train_loss": 3.9, "lr": 1e-3, "tokens_per_s": 1.0},  # logged before train_losses were
            {"step": 6, "train_loss": 3.0, "train_losses": [3.0], "lr": 5e-4, "tokens_per_s": 1.0, "val_loss": 4.2},
            {"step": 8, "train_loss": 2.0, "train_losses": [2.5, 2.0], "lr": 1e-4, "tokens_per_s": 1.0,
             "val_loss": 4.4}]
    curves = loss_curves(rows, vocab_size=4096)
    assert curves.train_steps == [1, 2, 3, 4, 5, 6, 7, 8]
    assert curves.train_losses == [6.0, 5.0, 4.5, 4.0, 3.9, 3.0, 2.5, 2.0]
    assert curves.val_steps == [4, 6, 8] and curves.val_losses == [4.2, 4.2, 4.4]
    assert (curves.best_step, curves.best_val_loss) == (4, 4.2)  # the first of equal losses, as the loop keeps
    assert curves.lr_steps == [2, 4, 5, 6, 8] and curves.lrs == [1e-3, 2e-3, 1e-3, 5e-4, 1e-4]
    assert curves.uniform_loss == pytest.approx(8.3178, abs=1e-4)
    assert loss_curves(rows).uniform_loss is None and loss_curves(rows[:1]).best_step is None


def test_moving_average_is_debiased():
    assert moving_average([4.0, 4.0, 4.0]) == pytest.approx([4.0, 4.0, 4.0])
    assert moving_average([2.0, 4.0], smoothing=0.5) == pytest.approx([2.0, (0.25 * 2 + 0.5 * 4) / 0.75])


def test_hparams_are_written_with_the_final_and_best_val_loss(plotted_run):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    run, _, result = plotted_run
    hparams, metrics, scalars = None, None, {}
    for name in os.listdir(run / "tensorboard"):
        for event in EventFileLoader(str(run / "tensorboard" / name)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME:
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    if value.tag == metadata.SESSION_START_INFO_TAG:
                        hparams = data.session_start_info.hparams
                    elif value.tag == metadata.EXPERIMENT_TAG:
                        metrics = {info.name.tag for info in data.experiment.metric_infos}
                elif value.tag in ("best_val_loss", "final_val_loss", "final_train_loss"):
                    scalars[value.tag] = value.tensor.float_val[0] if value.tensor.float_val else value.simple_value
    assert hparams["preset"].string_value == "tiny" and hparams["n_layer"].number_value == 2
    assert hparams["peak_tflops"].number_value == 0.5 and hparams["compile"].bool_value is False
    assert "decay_steps" not in hparams  # unset keys are left out, as in config.toml
    assert metrics == {"best_val_loss", "final_val_loss", "final_train_loss"}
    assert scalars["best_val_loss"] == pytest.approx(result.best_val_loss)
    assert scalars["final_train_loss"] == pytest.approx(result.train_loss)


def test_a_resumed_run_keeps_every_step_loss(byte_shards, tmp_path, one_torch_thread):
    """A row at every checkpoint: the resume drops the rows after its checkpoint, not losses before it."""
    shape = dict(RUN, max_steps=8, decay_steps=8, ckpt_interval=5, eval_interval=0, peak_tflops=None)
    loop.train(TrainConfig(**shape), byte_shards, tmp_path / "whole")
    loop.train(TrainConfig(**{**shape, "max_steps": 6}), byte_shards, tmp_path / "cut")
    # as if killed after logging step 6 and before its checkpoint was written
    (tmp_path / "cut" / "checkpoints" / "step-00000006.pt").unlink()
    loop.train(TrainConfig(**shape), byte_shards, tmp_path / "cut", resume=True)
    whole, cut = (loss_curves(read_metrics(tmp_path / name / "metrics.jsonl")) for name in ("whole", "cut"))
    assert cut.train_steps == whole.train_steps == list(range(1, 9))
    assert cut.train_losses == whole.train_losses
    assert all("mfu" not in row for row in read_metrics(tmp_path / "whole" / "metrics.jsonl"))  # CPU: no peak


def test_mfu_of_gpt2_124m():
    with torch.device("meta"):  # shapes only: no memory, no time
        model = GPT(GPTConfig.from_preset("gpt2", vocab_size=50257, block_size=1024))
    non_embedding_params = 123_689_472  # nanoGPT's count for GPT-2 124M at its padded vocabulary of 50304
    assert model.flops_per_token() == 6 * non_embedding_params + 12 * 12 * 768 * 1024
    assert mfu(400_000, model.flops_per_token(), peak_bf16_tflops("NVIDIA H100 80GB HBM3")) == pytest.approx(
        0.3458, abs=1e-4)
    assert mfu(8 * 400_000, model.flops_per_token(), 989.5, devices=8) == pytest.approx(0.3458, abs=1e-4)


@pytest.mark.parametrize("name, peak", [("NVIDIA H100 80GB HBM3", 989.5), ("NVIDIA H100 PCIe", 756.0),
                                        ("NVIDIA H200", 989.5), ("NVIDIA A100-SXM4-80GB", 312.0),
                                        ("NVIDIA GeForce GTX 1080", None)])
def test_peak_by_device_name(name, peak):
    assert peak_bf16_tflops(name) == peak


def test_cpu_has_no_known_peak():
    peak, reason = device_peak_tflops(torch.device("cpu"), torch.float32)
    assert peak is None and "cpu" in reason


@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf])
def test_a_peak_that_is_not_a_positive_number_is_refused(value):
    with pytest.raises(ConfigError, match="peak_tflops"):
        TrainConfig(peak_tflops=value)


def test_the_readme_shows_a_demo_loss_plot():
    root = Path(__file__).resolve().parents[1]
    assert "](docs/loss.png)" in (root / "README.md").read_text(encoding="utf-8")
    assert (root / "docs" / "loss.png").read_bytes().startswith(PNG_MAGIC)
