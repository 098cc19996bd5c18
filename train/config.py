"""Training configuration: one typed dataclass, loaded from TOML plus `--key value` overrides.

The defaults train the "tiny" preset on a 2-core CPU, 200 steps in a minute or two even with a 32k
vocabulary (whose output layer dominates at this size); pass `--preset gpt2
--block_size 1024 --batch_size 16 --grad_accum 32` (or a config file) for GPT-2 124M on a GPU.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from common import config_io
from common.config_io import ConfigError
from model.gpt import PRESETS


@dataclass(frozen=True)
class TrainConfig:
    # model: a named preset; n_layer / n_head / n_embd, when set, override the preset's value
    preset: str = "tiny"
    n_layer: int | None = None
    n_head: int | None = None
    n_embd: int | None = None
    block_size: int = 128
    dropout: float = 0.0
    bias: bool = True
    # optimization: tokens per optimizer step = batch_size * block_size * grad_accum, whatever the number of
    # processes: grad_accum counts micro-batches over all of them (each of W runs grad_accum / W)
    max_steps: int = 1000
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 20
    # cosine decay ends here, then lr stays min_lr; unset, it is max_steps, also a max_steps raised on --resume
    decay_steps: int | None = None
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 disables clipping
    # evaluation, checkpoints, samples and logging every N optimizer steps (0 disables all but logging);
    # the last step is always logged, evaluated and checkpointed
    eval_interval: int = 50
    eval_steps: int = 10
    ckpt_interval: int = 100
    keep_last: int = 2
    sample_interval: int = 100
    sample_tokens: int = 64
    log_interval: int = 10
    # runtime
    seed: int = 1337
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    compile: bool = False
    # dense peak TFLOP/s of one device, for the MFU logged; unset, it is looked up by GPU name (bf16 runs only)
    peak_tflops: float | None = None
    # speed switches: how the model computes, never what (model.gpt.GPTConfig); a resumed run may change them
    loss_chunk: int = 0  # > 0: the training loss runs over this many rows of logits at a time, never all of them
    sdpa_backend: Literal["auto", "flash", "cudnn", "efficient", "math"] = "auto"

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ConfigError(f"preset must be one of {', '.join(PRESETS)}; got {self.preset!r}")
        # nan and inf pass every comparison below the wrong way (or overflow the weights): refuse them first
        for name in ("lr", "min_lr", "dropout", "weight_decay", "beta1", "beta2", "grad_clip"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name} must be a finite number, got {getattr(self, name)}")
        positive = ("block_size", "max_steps", "batch_size", "grad_accum", "eval_steps", "keep_last", "log_interval")
        non_negative = ("warmup_steps", "eval_interval", "ckpt_interval", "sample_interval", "sample_tokens",
                        "weight_decay", "grad_clip", "min_lr", "loss_chunk")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("n_layer", "n_head", "n_embd", "decay_steps", "peak_tflops"):
            if getattr(self, name) is not None and not 0 < getattr(self, name) < math.inf:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        for name in ("dropout", "beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    def check_consistency(self) -> "TrainConfig":
        """Checks across keys, once every key is set (overrides arrive one at a time: `--lr 1e-4 --min_lr
        1e-5` passes through lr=1e-4 beside the default min_lr)."""
        if self.min_lr > self.lr:
            raise ConfigError(f"min_lr ({self.min_lr}) must not exceed lr ({self.lr}): the schedule decays to it")
        shape = self.model_shape()
        if shape["n_embd"] % shape["n_head"]:
            raise ConfigError(f"n_embd ({shape['n_embd']}) must be divisible by n_head ({shape['n_head']}): "
                              f"each head gets an equal slice of the width")
        return self

    def model_shape(self) -> dict[str, int]:
        """n_layer, n_head, n_embd: the preset's values, each replaced by the explicit key when set."""
        shape = dict(PRESETS[self.preset])
        for name in shape:
            if getattr(self, name) is not None:
                shape[name] = getattr(self, name)
        return shape

    @property
    def schedule_end(self) -> int:
        """The step where the cosine reaches min_lr."""
        return self.decay_steps if self.decay_steps is not None else self.max_steps

    def resolved(self) -> "TrainConfig":
        """The same config with the preset's shape written out, as recorded in the run directory.

        An unset decay_steps stays unset, so that `--resume --max_steps 2N` moves the schedule's end along."""
        return dataclasses.replace(self, **self.model_shape())


def load_config(path: str | Path | None = None, overrides: dict[str, str] | None = None) -> TrainConfig:
    return config_io.load(TrainConfig, path, overrides).check_consistency()


def to_toml(config: TrainConfig) -> str:
    """The config as TOML that `--config` reads back (keys whose value is None are left out)."""
    lines = []
    for name, value in config_io.to_dict(config).items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        else:
            text = repr(value)
        lines.append(f"{name} = {text}")
    return "\n".join(lines) + "\n"
