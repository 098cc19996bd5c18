"""RUN/loss.png from RUN/metrics.jsonl: what is plotted (`loss_curves`, pure) apart from how (`draw`).

Top panel: every step's training loss, faint, with its exponential moving average over it, the validation
points, the best of them marked, and the loss of a uniform guess over the vocabulary (ln V) dashed: a model
above that line has learnt nothing yet. Bottom panel: the learning rate.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from train.checkpoint import durable_write

# Weight of the past in the moving average of the per-step losses: about the last ten steps count; debiased,
# so the first steps are not pulled towards zero.
SMOOTHING = 0.9


@dataclass
class LossCurves:
    train_steps: list[int]
    train_losses: list[float]  # one per step
    train_smoothed: list[float]
    val_steps: list[int]
    val_losses: list[float]
    lr_steps: list[int]
    lrs: list[float]
    uniform_loss: float | None  # ln(vocab_size): the loss of predicting every token with equal probability
    best_step: int | None
    best_val_loss: float | None


def moving_average(values: list[float], smoothing: float = SMOOTHING) -> list[float]:
    """Debiased exponential moving average, as Adam debiases its moments."""
    averaged, total = [], 0.0
    for n, value in enumerate(values, 1):
        total = smoothing * total + (1 - smoothing) * value
        averaged.append(total / (1 - smoothing ** n))
    return averaged


def loss_curves(rows: list[dict], vocab_size: int | None = None) -> LossCurves:
    """The curves of loss.png from metrics.jsonl's rows. A row's `train_losses` holds the loss of each step
    since the previous row; rows without it (fine-tuning, runs begun before it was logged) give their one
    `train_loss`."""
    train_steps, train_losses = [], []
    for row in rows:
        losses = row.get("train_losses") or [row["train_loss"]]
        train_steps += range(row["step"] - len(losses) + 1, row["step"] + 1)
        train_losses += losses
    evals = [row for row in rows if "val_loss" in row]
    best = min(evals, key=lambda row: row["val_loss"], default=None)  # the first of equal losses, as the loop
    return LossCurves(
        train_steps=train_steps, train_losses=train_losses, train_smoothed=moving_average(train_losses),
        val_steps=[row["step"] for row in evals], val_losses=[row["val_loss"] for row in evals],
        lr_steps=[row["step"] for row in rows], lrs=[row["lr"] for row in rows],
        uniform_loss=math.log(vocab_size) if vocab_size else None,
        best_step=best["step"] if best else None, best_val_loss=best["val_loss"] if best else None)


def draw(curves: LossCurves, path: Path) -> None:
    """Write the plot to `path` whole or not at all (a viewer reloading it mid-run never sees half a file)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, lr_ax) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, height_ratios=(3, 1))
    loss_ax.plot(curves.train_steps, curves.train_losses, color="tab:blue", alpha=0.25, linewidth=0.8)
    loss_ax.plot(curves.train_steps, curves.train_smoothed, color="tab:blue", label="train (moving average)")
    if curves.val_steps:
        loss_ax.plot(curves.val_steps, curves.val_losses, "o-", color="tab:orange", markersize=4, label="val")
    if curves.best_step is not None:
        loss_ax.plot([curves.best_step], [curves.best_val_loss], "*", color="tab:red", markersize=14,
                     label=f"best val {curves.best_val_loss:.4f} @ step {curves.best_step}")
    if curves.uniform_loss is not None:
        loss_ax.axhline(curves.uniform_loss, color="gray", linestyle="--", linewidth=1,
                        label=f"uniform guess ln V = {curves.uniform_loss:.2f}")
    loss_ax.set_ylabel("loss (nats/token)")
    loss_ax.grid(alpha=0.3)
    loss_ax.legend(fontsize="small")
    # markers: only the logged steps record their lr, and straight lines join them
    lr_ax.plot(curves.lr_steps, curves.lrs, ".-", color="tab:green", markersize=3)
    lr_ax.set_xlabel("step")
    lr_ax.set_ylabel("learning rate")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    lr_ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        durable_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)


def read_metrics(metrics_path: Path) -> list[dict]:
    return [json.loads(line) for line in metrics_path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_losses(metrics_path: Path, out_path: Path, vocab_size: int | None = None) -> None:
    draw(loss_curves(read_metrics(metrics_path), vocab_size), out_path)
