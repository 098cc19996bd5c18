"""What classification fine-tuning and instruction tuning share: the starting point, records on disk,
the config keys, LoRA, and one training loop that resumes exactly.

A task (train/finetune_cls.py, train/finetune_sft.py) supplies its model, batches, loss and evaluation;
`finetune` does the rest the way `train` does: RUN/config.toml, metrics.jsonl, TensorBoard events,
loss.png, checkpoints under RUN/checkpoints (model, optimizer, schedule, RNG, example order), and at the
end RUN/model.safetensors (the backbone, LoRA merged in: `train sample` and `train export` read it),
RUN/adapters.safetensors when LoRA was on, and RUN/eval.json.
"""
from __future__ import annotations

import csv
import json
import resource
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn as nn

from common.config_io import ConfigError
from common.shard_format import sha256_of
from model.gpt import GPT, GPTConfig, save_safetensors
from model.hf_import import hf_weights_file, is_hf_folder, load_hf_gpt2
from model.lora import LoRAError, adapter_state_dict, apply_lora, count_parameters, merge_lora, parse_targets
from train import checkpoint as ckpt
from train.config import to_toml
from train.loop import (CONFIG_FILE, METRICS_FILE, MODEL_FILE, PLOT_FILE, WarmupCosine, pick_device, pick_dtype,
                        truncate_metrics)
from train.plot import plot_losses
from train.sample import TOKENIZER_DIR, load_tokenizer, run_dir_of

EVAL_FILE = "eval.json"
ADAPTERS_FILE = "adapters.safetensors"


class FinetuneError(ValueError):
    """Fine-tuning cannot start or go on as asked; the message is one line for the user."""


@dataclass(frozen=True)
class FinetuneConfig:
    """Keys both fine-tuning commands take (TOML file and --KEY VALUE alike)."""
    max_steps: int = 200
    batch_size: int = 8
    max_length: int | None = None  # tokens per example, cut beyond this (default: the model's block_size)
    lr: float = 3e-4
    min_lr: float = 3e-5
    warmup_steps: int = 10
    decay_steps: int | None = None  # cosine decay ends here (default: max_steps)
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 1.0
    val_fraction: float = 0.1  # held out (seeded) when no --val file is given
    eval_interval: int = 50
    ckpt_interval: int = 50
    keep_last: int = 2
    log_interval: int = 10
    # LoRA: rank 0 trains the weights themselves; otherwise they stay frozen and only adapters train
    lora_rank: int = 0
    lora_alpha: float = 16.0
    lora_targets: str = "attn"  # comma-separated: attn, mlp
    seed: int = 1337
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"

    def __post_init__(self):
        for name in ("max_steps", "batch_size", "keep_last", "log_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_interval", "ckpt_interval", "weight_decay", "grad_clip", "min_lr",
                     "lora_rank"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("max_length", "decay_steps"):
            if getattr(self, name) is not None and getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be at least 2, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be between 0 and 1, got {self.val_fraction}")
        try:
            parse_targets(self.lora_targets)
        except LoRAError as e:
            raise ConfigError(str(e)) from None


# ---- the starting point

@dataclass
class StartingPoint:
    model: GPT
    tokenizer: Any
    tokenizer_dir: Path
    base: dict  # "path" and "sha256" of the weights file the run starts from


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return sha256_of(f)


def weights_file_of(checkpoint: str | Path) -> Path:
    """The file whose weights `checkpoint` (run directory, .pt, .safetensors or GPT-2 folder) names."""
    path = Path(checkpoint)
    if is_hf_folder(path):
        return hf_weights_file(path)
    if path.is_dir():
        latest = ckpt.latest_checkpoint(path)
        if latest is None:
            raise FinetuneError(f"{path} is neither a run directory with checkpoints nor a GPT-2 folder "
                                f"(config.json + model.safetensors)")
        return latest
    if not path.is_file():
        raise FinetuneError(f"--checkpoint {path}: no such file or directory")
    return path


def find_tokenizer_dir(checkpoint: str | Path, tokenizer_dir: str | Path | None) -> Path:
    if tokenizer_dir is not None:
        candidates = [Path(tokenizer_dir)]
    else:
        path = Path(checkpoint)
        folder = path if is_hf_folder(path) else run_dir_of(path)
        candidates = [folder / TOKENIZER_DIR, folder]
    from tokenizer import META_FILE

    found = next((c for c in candidates if (c / META_FILE).is_file()), None)
    if found is None:
        raise FinetuneError(f"no tokenizer at {candidates[0]}; pass --tokenizer DIR (a `python -m tokenizer train` "
                            f"directory)")
    return found


def copy_tokenizer_dir(tokenizer_dir: Path, run_dir: Path) -> None:
    """Copy a tokenizer into RUN/tokenizer, so the run directory is self-contained."""
    target = run_dir / TOKENIZER_DIR
    if target.resolve() == tokenizer_dir.resolve():
        return
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(tokenizer_dir.iterdir()):
        if item.is_file():
            shutil.copy2(item, target / item.name)


def load_starting_point(checkpoint: str | Path, tokenizer_dir: str | Path | None = None) -> StartingPoint:
    """Our run (latest checkpoint), a checkpoint file, or a Hugging Face GPT-2 folder, with its tokenizer."""
    from train.sample import load_model

    weights = weights_file_of(checkpoint)
    found = find_tokenizer_dir(checkpoint, tokenizer_dir)
    tokenizer = load_tokenizer(found)
    if is_hf_folder(checkpoint):
        model, notes = load_hf_gpt2(checkpoint, tokenizer.vocab_size)
        for note in notes:
            print(f"note: {note}", flush=True)
    else:
        model = load_model(weights)
    if model.config.vocab_size != tokenizer.vocab_size:
        raise FinetuneError(f"the model in {checkpoint} has a {model.config.vocab_size}-token vocabulary, the "
                            f"tokenizer {found} {tokenizer.vocab_size}: they belong to different models")
    return StartingPoint(model, tokenizer, found, {"path": str(weights), "sha256": file_sha256(weights)})


# ---- records on disk

def read_records(path: str | Path) -> list[dict]:
    """JSON lines, a JSON list of objects, or CSV with a header row; an error names the bad line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FinetuneError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FinetuneError(f"{path}: cannot read ({type(e).__name__})") from None
    if not text.strip():
        raise FinetuneError(f"{path}: the file is empty")
    if path.suffix.lower() == ".csv":
        records = list(csv.DictReader(text.splitlines()))
    elif text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise FinetuneError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise FinetuneError(f"{path}:{number}: not valid JSON ({e.msg})") from None
    if not records:
        raise FinetuneError(f"{path}: holds no records")
    bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    if bad is not None:
        raise FinetuneError(f"{path}: record {bad + 1} is not an object")
    return records


def require_fields(records: list[dict], fields: list[str], path: str | Path, what: str = "field") -> None:
    for field in fields:
        missing = next((i for i, r in enumerate(records) if not isinstance(r.get(field), str)), None)
        if missing is None:
            continue
        if all(field not in r for r in records):
            raise FinetuneError(f"{path}: unknown {what} {field!r}; the records have {', '.join(sorted(records[0]))}")
        raise FinetuneError(f"{path}: record {missing + 1} has no text in {field!r}")


def seeded_split(groups: dict[Any, list[int]], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, val) indices: each group shuffled with `seed`, `fraction` of it (at least one, when the group
    has two or more) to val; stratified when the groups are the labels."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for key in sorted(groups, key=str):
        members = [int(i) for i in rng.permutation(groups[key])]
        take = max(1, round(fraction * len(members))) if len(members) > 1 else 0
        val.extend(members[:take])
        train.extend(members[take:])
    return sorted(train), sorted(val)


# ---- example order: the loader's state for an exact resume

class ExampleOrder:
    """Batches of example indices, every example once per epoch in a permutation seeded by (seed, epoch)."""

    def __init__(self, count: int, batch_size: int, seed: int):
        self.count, self.batch_size, self.seed = count, batch_size, seed
        self.epoch, self.position = 0, 0

    def next_batch(self) -> list[int]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.count)
        batch = [int(i) for i in order[self.position:self.position + self.batch_size]]
        self.position += len(batch)
        if self.position >= self.count:
            self.epoch, self.position = self.epoch + 1, 0
        return batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "count": self.count, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if int(state["count"]) != self.count or int(state["seed"]) != self.seed:
            raise FinetuneError(f"cannot resume: the checkpoint trained on {int(state['count'])} examples with seed "
                                f"{int(state['seed'])}, this run has {self.count} with seed {self.seed}")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


# ---- LoRA and rebuilding a fine-tuned model from its checkpoint

def lora_settings(config: FinetuneConfig) -> dict | None:
    if not config.lora_rank:
        return None
    return {"rank": config.lora_rank, "alpha": config.lora_alpha, "targets": ",".join(parse_targets(config.lora_targets))}


def build_task_model(backbone: GPT, info: dict) -> nn.Module:
    """The model a fine-tuning run trains, from its backbone and the run's "finetune" record."""
    if info.get("lora"):
        lora = info["lora"]
        apply_lora(backbone, lora["rank"], lora["alpha"], lora["targets"])
    if info["task"] == "classification":
        from model.classifier import GPTClassifier

        return GPTClassifier(backbone, len(info["labels"]))
    return backbone


def backbone_of(model: nn.Module) -> GPT:
    return model if isinstance(model, GPT) else model.backbone


def load_finetuned(state: dict) -> nn.Module:
    """The task model a fine-tuning checkpoint holds (LoRA still separate)."""
    model = build_task_model(GPT(GPTConfig(**state["model_config"])), state["finetune"])
    model.load_state_dict(state["model"])
    return model.eval()


def merged_backbone(state: dict) -> GPT:
    """A fine-tuning checkpoint's GPT with any LoRA merged: what `train sample` and `train export` use."""
    return merge_lora(backbone_of(load_finetuned(state)))


def finetune_record(checkpoint: str | Path) -> dict | None:
    """The "finetune" record of a run's latest checkpoint, or None for a pretraining run."""
    try:
        weights = weights_file_of(checkpoint)
    except FinetuneError:
        return None
    if weights.suffix != ".pt":
        return None
    return ckpt.load_checkpoint(weights).get("finetune")


def save_adapters(model: nn.Module, path: Path, info: dict) -> None:
    """LoRA matrices (and a classifier's head, which the base lacks) with what is needed to put them back."""
    from safetensors.torch import save_file

    tensors = adapter_state_dict(model)
    if info["task"] == "classification":
        tensors.update({f"head.{k}": v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()})
    save_file(tensors, str(path), metadata={"finetune": json.dumps(info)})


def load_adapters(base: GPT, path: str | Path, base_sha256: str) -> nn.Module:
    """`base` (whose weights file has `base_sha256`) with the adapters of `path` put on it."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        info = json.loads((f.metadata() or {}).get("finetune", "null") or "null")
    if not info or not info.get("lora"):
        raise FinetuneError(f"{path}: not an adapters file written by a LoRA fine-tuning run")
    if info["base"]["sha256"] != base_sha256:
        raise FinetuneError(f"{path} was trained on a base with sha256 {info['base']['sha256'][:12]}..., "
                            f"this base has {base_sha256[:12]}...")
    model = build_task_model(base, info)
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    if unexpected or any(k.endswith((".lora_a", ".lora_b")) or k.startswith("head.") for k in missing):
        raise FinetuneError(f"{path}: the adapters do not fit this base model")
    return model.eval()


# ---- the loop

class Task:
    """What a fine-tuning task supplies; see train/finetune_cls.py and train/finetune_sft.py."""
    info: dict  # plain values saved in every checkpoint as "finetune": "task" ("classification" or
    # "instruction"), labels, template, ...; `build_task_model` makes the model from it
    train_count: int

    def choose_trainable(self, model: nn.Module) -> None: ...
    def batch(self, indices: list[int], device: torch.device): ...
    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, int]: ...  # (mean loss, tokens in the batch)
    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]: ...  # val_loss and more
    def report(self, model: nn.Module, device: torch.device, run_dir: Path) -> dict: ...  # for eval.json


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def finetune(task: Task, config: FinetuneConfig, start: StartingPoint, run_dir: str | Path,
             resume: bool = False) -> dict:
    """Train `task` from `start` into run_dir; returns what was written to eval.json."""
    run_dir = Path(run_dir)
    device = pick_device(config, 0)
    ptdtype = pick_dtype(config, device)
    autocast = torch.autocast(device.type, dtype=ptdtype) if ptdtype != torch.float32 else nullcontext()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    resumed = None
    if resume:
        latest = ckpt.latest_checkpoint(run_dir)
        if latest is None:
            print(f"note: --resume found no checkpoint in {run_dir}; starting from step 0", flush=True)
        else:
            resumed = ckpt.load_checkpoint(latest)
    elif ckpt.latest_checkpoint(run_dir) is not None:
        raise FinetuneError(f"{run_dir} already holds checkpoints; pass --resume to continue it or choose another --out")

    torch.manual_seed(config.seed)
    info = {**task.info, "base": start.base, "lora": lora_settings(config)}
    # with LoRA the backbone is frozen and its adapters train (and a classifier's new head, built after)
    model = build_task_model(start.model, info)
    if not info["lora"]:
        task.choose_trainable(model)
    model.to(device)
    trainable, total = count_parameters(model)
    # GPT's grouping (decay on matrices only) needs nothing of the model but .parameters()
    optimizer = GPT.configure_optimizer(model, config.weight_decay, config.lr, (config.beta1, config.beta2),
                                        device.type)
    decay_steps = config.decay_steps or config.max_steps
    schedule = WarmupCosine(config.warmup_steps, decay_steps, config.min_lr / config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    order = ExampleOrder(task.train_count, config.batch_size, config.seed)
    step, best_val_loss, best_step, initial = 0, None, None, None
    if resumed is not None:
        if resumed.get("finetune", {}).get("task") != info["task"] or resumed["model_config"] != vars(start.model.config):
            raise FinetuneError(f"cannot resume: {run_dir} was fine-tuned from another model or for another task")
        if resumed["finetune"]["lora"] != info["lora"] or resumed["finetune"]["base"]["sha256"] != start.base["sha256"]:
            raise FinetuneError(f"cannot resume: {run_dir} started from base {resumed['finetune']['base']['path']} "
                                f"with LoRA {resumed['finetune']['lora']}; this invocation differs")
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        scheduler.lr_lambdas = [schedule] * len(optimizer.param_groups)
        for group, base_lr in zip(optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base_lr * schedule(scheduler.last_epoch)
        order.load_state_dict(resumed["loader"])
        step, best_val_loss, best_step = resumed["step"], resumed["best_val_loss"], resumed["best_step"]
        initial = resumed["initial_eval"]
        ckpt.set_rng_state(resumed["rng"][0])

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(to_toml(config), encoding="utf-8")
    copy_tokenizer_dir(start.tokenizer_dir, run_dir)
    truncate_metrics(run_dir / METRICS_FILE, step)
    from torch.utils.tensorboard import SummaryWriter

    tensorboard = SummaryWriter(str(run_dir / "tensorboard"), purge_step=step + 1)
    metrics = open(run_dir / METRICS_FILE, "a", encoding="utf-8")
    lora_note = f", LoRA rank {config.lora_rank} on {info['lora']['targets']}" if info["lora"] else ""
    print(f"{info['task']} fine-tuning: {trainable:,} of {total:,} parameters trainable "
          f"({100 * trainable / total:.2f}%){lora_note}; {task.train_count} training examples; device {device}",
          flush=True)

    def evaluate() -> dict[str, float]:
        model.eval()
        with torch.no_grad(), autocast:
            result = task.evaluate(model, device)
        model.train()
        return result

    if initial is None:
        initial = evaluate()  # before any step: what fine-tuning is measured against
        print(f"step 0: " + ", ".join(f"{k} {v:.4f}" for k, v in initial.items()), flush=True)

    def save(at_step: int) -> None:
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "step": at_step, "loader": order.state_dict(),
                 "rng": [ckpt.rng_state()], "config": vars(config), "model_config": vars(start.model.config),
                 "best_val_loss": best_val_loss, "best_step": best_step, "initial_eval": initial, "finetune": info}
        ckpt.save_checkpoint(run_dir, at_step, state, config.keep_last)

    model.train()
    last_time, tokens = time.perf_counter(), 0
    while step < config.max_steps:
        batch = task.batch(order.next_batch(), device)
        with autocast:
            loss, batch_tokens = task.loss(model, batch)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], config.grad_clip)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens += batch_tokens

        log_now = step % config.log_interval == 0 or step == config.max_steps
        eval_now = step == config.max_steps or (config.eval_interval and step % config.eval_interval == 0)
        is_best = False
        if log_now or eval_now:
            record = {"step": step, "train_loss": float(loss.detach()), "lr": lr,
                      "tokens_per_s": tokens / (time.perf_counter() - last_time)}
            if eval_now:
                record.update(evaluate())
                is_best = best_val_loss is None or record["val_loss"] < best_val_loss
                if is_best:
                    best_val_loss, best_step = record["val_loss"], step
            print(", ".join(f"{k} {v:.4g}" for k, v in record.items()), flush=True)
            metrics.write(json.dumps(record) + "\n")
            metrics.flush()
            for key, value in record.items():
                if key != "step":
                    tensorboard.add_scalar(key, value, step)
        if is_best or step == config.max_steps or (config.ckpt_interval and step % config.ckpt_interval == 0):
            save(step)
        if log_now or eval_now:
            last_time, tokens = time.perf_counter(), 0
    metrics.close()
    tensorboard.close()
    plot_losses(run_dir / METRICS_FILE, run_dir / PLOT_FILE)

    model.eval()
    with torch.no_grad(), autocast:
        report = task.report(model, device, run_dir)
    if info["lora"]:
        save_adapters(model, run_dir / ADAPTERS_FILE, info)
    result = {**report, "initial": initial, "trainable_params": trainable, "total_params": total,
              "peak_memory_mb": round(peak_memory_mb(device), 1), "steps": step, "lora": info["lora"]}
    save_safetensors(merge_lora(backbone_of(model)).cpu(), run_dir / MODEL_FILE)
    (run_dir / EVAL_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
