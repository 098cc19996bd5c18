"""The training loop, top to bottom: setup, then one optimizer step after another.

Single process:  python -m train --data SHARDS --out RUN
Several GPUs:    torchrun --nproc_per_node 8 -m train --data SHARDS --out RUN
(torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; NCCL is used on GPUs, gloo on CPUs.)
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from common import config_io
from common.shard_format import load_manifest
from model.gpt import GPT, SPEED_SWITCHES, GPTConfig
from train import checkpoint as ckpt
from train.config import TrainConfig, to_toml
from train.data import TrainLoader, ValLoader
from train.mfu import device_peak_tflops, mfu
from train.plot import plot_losses
from train.sample import TOKENIZER_DIR, load_tokenizer

METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
CONFIG_FILE = "config.toml"
PLOT_FILE = "loss.png"
MODEL_FILE = "model.safetensors"


class TrainError(RuntimeError):
    """Training cannot start or go on; the message is one line for the user."""


@dataclass
class TrainResult:
    steps: int
    train_loss: float
    best_val_loss: float | None
    tokens_per_s: float
    run_dir: Path
    model: GPT  # the trained weights (unwrapped from DDP / torch.compile)
    eval_seconds: float = 0.0  # spent in validation, of
    wall_seconds: float = 0.0  # the whole loop (this invocation)


class WarmupCosine:
    """lr multiplier for optimizer step i (0-based): linear warmup, cosine decay to min_ratio at
    decay_steps, then flat. A class, not a lambda, so LambdaLR's state_dict stays plain values."""

    def __init__(self, warmup_steps: int, decay_steps: int, min_ratio: float):
        self.warmup_steps, self.decay_steps, self.min_ratio = warmup_steps, decay_steps, min_ratio

    def __call__(self, i: int) -> float:
        if i < self.warmup_steps:
            return (i + 1) / self.warmup_steps
        if i >= self.decay_steps:
            return self.min_ratio
        progress = (i - self.warmup_steps) / max(1, self.decay_steps - self.warmup_steps)
        return self.min_ratio + 0.5 * (1.0 + math.cos(math.pi * progress)) * (1.0 - self.min_ratio)


def pick_device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainError("device=cuda was asked for, but torch sees no CUDA device")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def pick_dtype(config: TrainConfig, device: torch.device) -> torch.dtype:
    # bf16 autocast pays off where tensor cores run it; on CPUs float32 is faster unless asked otherwise.
    if config.dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if config.dtype == "bfloat16" else torch.float32


def copy_tokenizer(data_dir: Path, run_dir: Path) -> Path | None:
    """Copy the shards' tokenizer into RUN/tokenizer so the run directory is self-contained."""
    entry = load_manifest(data_dir).get("tokenizer") or {}
    source = entry.get("path")
    if not source:
        return None
    candidates = [Path(source)] if Path(source).is_absolute() else [Path(source), data_dir / source]
    found = next((p for p in candidates if p.is_dir()), None)
    if found is None:
        tqdm.write(f"note: tokenizer {source} named by the manifest is not a local directory; "
                   f"samples are off (give `train sample --tokenizer DIR` later)")
        return None
    target = run_dir / TOKENIZER_DIR
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(found.iterdir()):
        if item.is_file():
            shutil.copy2(item, target / item.name)
    return target


def check_tokenizer(tokenizer, data_dir: Path, vocab_size: int) -> None:
    """The run's tokenizer must be the one the shards were encoded with, or samples would be garbage."""
    expected = (load_manifest(data_dir).get("tokenizer") or {}).get("model_sha256")
    if expected and expected != tokenizer.model_sha256:
        raise TrainError(f"tokenizer {tokenizer.source} (sha256 {tokenizer.model_sha256[:12]}...) is not the one "
                         f"the shards in {data_dir} were made with (sha256 {expected[:12]}...)")
    if tokenizer.vocab_size != vocab_size:
        raise TrainError(f"tokenizer {tokenizer.source} has {tokenizer.vocab_size} tokens, the shards {vocab_size}")


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop logged lines after the checkpoint we resume from, so no step appears twice, and a last line the
    killed process left half-written; any other unreadable line is an error, not something to drop."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                continue
            raise TrainError(f"{path}:{number} is not a JSON line; repair or remove it to resume") from None
        if record["step"] <= last_step:
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def mean_across_ranks(value: torch.Tensor, world_size: int) -> torch.Tensor:
    """`value` (any shape) averaged elementwise over the processes, on every one of them."""
    if world_size > 1:
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= world_size
    return value


def write_hparams(tensorboard, config: TrainConfig, results: dict[str, float | None], step: int) -> None:
    """The resolved config as TensorBoard hparams, with `results` (those known) as the metrics beside it."""
    from torch.utils.tensorboard.summary import hparams

    values = {name: value for name, value in config_io.to_dict(config).items() if value is not None}
    known = {name: value for name, value in results.items() if value is not None}
    for summary in hparams(values, known):
        tensorboard.file_writer.add_summary(summary)
    for name, value in known.items():
        tensorboard.add_scalar(name, value, step)


@torch.no_grad()
def evaluate(model: torch.nn.Module, val_loader: ValLoader, autocast, world_size: int) -> float:
    model.eval()
    total = torch.zeros((), device=val_loader.device)
    batches = 0
    for x, y in val_loader:
        with autocast:
            _, loss = model(x, y)
        total += loss.float()
        batches += 1
    model.train()
    return float(mean_across_ranks(total / batches, world_size))


def train(config: TrainConfig, data_dir: str | Path, run_dir: str | Path, resume: bool = False) -> TrainResult:
    data_dir, run_dir = Path(data_dir), Path(run_dir)
    config = config.check_consistency().resolved()

    # ---- processes and devices
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if config.grad_accum % world_size:
        raise TrainError(f"grad_accum ({config.grad_accum}) must be a multiple of the number of processes "
                         f"({world_size}): it counts the micro-batches of one optimizer step over all of them")
    # grad_accum is global (as in nanoGPT): the processes share a step's micro-batches, so the tokens per
    # step do not grow with the number of GPUs.
    micro_steps = config.grad_accum // world_size
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(config, local_rank)
    owns_process_group = world_size > 1 and not dist.is_initialized()
    if owns_process_group:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    is_main = rank == 0
    ptdtype = pick_dtype(config, device)
    autocast = torch.autocast(device.type, dtype=ptdtype) if ptdtype != torch.float32 else nullcontext()
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # ---- where we start: fresh, or the latest checkpoint
    start = None
    if resume:
        if is_main:
            ckpt.remove_leftovers(run_dir)
        found = ckpt.load_latest_readable(run_dir, ckpt.RESUME_KEYS,
                                          lambda line: print(line, file=sys.stderr) if is_main else None)
        if found is None:
            if is_main:
                tqdm.write(f"note: --resume found no checkpoint in {run_dir}; starting from step 0")
        else:
            start = found[1]
    elif ckpt.latest_checkpoint(run_dir) is not None:
        raise TrainError(f"{run_dir} already holds checkpoints; pass --resume to continue it or choose another --out")

    # ---- data
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    train_loader = TrainLoader(data_dir, config.block_size, config.batch_size, config.seed, rank, world_size, device)
    val_loader = ValLoader(data_dir, config.block_size, config.batch_size, config.eval_steps, rank, world_size, device)
    if val_loader.vocab_size not in (None, train_loader.vocab_size):
        raise TrainError(f"{data_dir}: val shards have vocab_size {val_loader.vocab_size}, "
                         f"train shards {train_loader.vocab_size}")

    # ---- model, optimizer, schedule (same init on every rank: seeded identically above)
    model_config = GPTConfig(vocab_size=train_loader.vocab_size, block_size=config.block_size,
                             dropout=config.dropout, bias=config.bias, loss_chunk=config.loss_chunk,
                             sdpa_backend=config.sdpa_backend, **config.model_shape())
    model = GPT(model_config).to(device)
    optimizer = model.configure_optimizer(config.weight_decay, config.lr, (config.beta1, config.beta2), device.type)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(config.warmup_steps, config.schedule_end, config.min_lr / config.lr))
    step, best_val_loss, best_step = 0, None, None
    if start is not None:
        saved_shape = {k: v for k, v in start["model_config"].items() if k not in SPEED_SWITCHES}
        if saved_shape != model_config.shape():
            raise TrainError(f"cannot resume: the checkpoint's model {saved_shape} differs from "
                             f"this config's {model_config.shape()}")
        model.load_state_dict(start["model"])
        optimizer.load_state_dict(start["optimizer"])
        scheduler.load_state_dict(start["scheduler"])
        # the schedule follows the config of this invocation, not the stored one: a --max_steps raised on resume
        # stretches the cosine to the new end (the lr moves up onto that curve) unless decay_steps pins it
        schedule = WarmupCosine(config.warmup_steps, config.schedule_end, config.min_lr / config.lr)
        scheduler.lr_lambdas = [schedule] * len(optimizer.param_groups)
        for group, base_lr in zip(optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base_lr * schedule(scheduler.last_epoch)
        train_loader.load_state_dict(start["loader"])
        step, best_val_loss, best_step = start["step"], start["best_val_loss"], start["best_step"]
        ckpt.set_rng_state(start["rng"][rank])
    else:
        # dropout masks differ between ranks; the weights above do not
        torch.manual_seed(config.seed + rank)
    raw_model = model
    if config.compile:
        model = torch.compile(model)
    if world_size > 1:
        model = DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)

    tokens_per_step = config.batch_size * config.block_size * config.grad_accum
    flops_per_token = raw_model.flops_per_token()
    peak_tflops, peak_source = ((config.peak_tflops, "peak_tflops of the config") if config.peak_tflops
                                else device_peak_tflops(device, ptdtype))

    # ---- run directory: config, tokenizer, logs
    tokenizer = None
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / CONFIG_FILE).write_text(to_toml(config), encoding="utf-8")
        if start is None:
            copy_tokenizer(data_dir, run_dir)
        if (run_dir / TOKENIZER_DIR).is_dir():
            tokenizer = load_tokenizer(run_dir / TOKENIZER_DIR)
            check_tokenizer(tokenizer, data_dir, model_config.vocab_size)
        truncate_metrics(run_dir / METRICS_FILE, step)
        if start is None:
            (run_dir / SAMPLES_FILE).unlink(missing_ok=True)
        from torch.utils.tensorboard import SummaryWriter

        tensorboard = SummaryWriter(str(run_dir / "tensorboard"), purge_step=step + 1)
        metrics = open(run_dir / METRICS_FILE, "a", encoding="utf-8")
        print(f"model: {model_config.n_layer} layers, {model_config.n_head} heads, {model_config.n_embd} wide, "
              f"{raw_model.num_params() / 1e6:.2f}M parameters (vocab {model_config.vocab_size}); "
              f"{len(train_loader.index)} training windows; {tokens_per_step} tokens/step; "
              f"device {device}, {str(ptdtype).removeprefix('torch.')}, {world_size} process(es)", flush=True)
        if not val_loader:
            print(f"note: {val_loader.why_empty()}; validation is off", flush=True)
        if peak_tflops:
            print(f"MFU: {flops_per_token / 1e6:.2f} MFLOPs/token against {peak_tflops:g} TFLOP/s per device "
                  f"({peak_source})", flush=True)
        else:
            print(f"note: MFU is not reported: {peak_source} (set peak_tflops to give it)", flush=True)

    writer = ckpt.BackgroundWriter()

    def finish_writes() -> None:
        """Called on every rank: wait for rank 0's write in flight; if it failed, every rank stops alike."""
        error = writer.wait() if is_main else None
        if world_size > 1:
            shared = [error]
            dist.broadcast_object_list(shared, src=0)
            error = shared[0]
        if error is not None:
            raise ckpt.CheckpointError(error)

    def save(at_step: int, checkpoint: bool, best: bool) -> None:
        """Called on every rank: a checkpoint and/or the best weights (a third of a checkpoint with AdamW's two
        moments), written by rank 0 with each rank's RNG state (their dropout masks differ). Training stalls
        only for the copy to CPU; the disk write runs behind the next steps."""
        rng_states = [ckpt.rng_state()] if checkpoint else None
        if checkpoint and world_size > 1:
            gathered = [None] * world_size if is_main else None
            dist.gather_object(rng_states[0], gathered, dst=0)
            rng_states = gathered
        finish_writes()
        if not is_main:
            return
        weights = ckpt.to_cpu_snapshot({"model": raw_model.state_dict(), "model_config": vars(model_config),
                                        "step": at_step})
        state = {**weights, **ckpt.to_cpu_snapshot({
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "loader": train_loader.state_dict(), "rng": rng_states, "config": vars(config),
            "best_val_loss": best_val_loss, "best_step": best_step})} if checkpoint else None

        def write() -> None:
            if checkpoint:
                ckpt.save_checkpoint(run_dir, at_step, state, config.keep_last)
            if best:
                ckpt.save_best(run_dir, {**weights, "val_loss": best_val_loss})

        writer.submit(write)

    def write_sample(at_step: int) -> None:
        # A private generator keeps sampling from shifting the training RNG (resume stays exact).
        generator = torch.Generator(device=device).manual_seed(config.seed + at_step)
        prompt = torch.tensor([[tokenizer.eot_id]], device=device)
        raw_model.eval()
        with autocast:
            ids = raw_model.generate(prompt, config.sample_tokens, temperature=0.8, top_k=200,
                                     stop_token=tokenizer.eot_id, generator=generator)
        raw_model.train()
        text = tokenizer.decode([t for t in ids[0, 1:].tolist() if t != tokenizer.eot_id])
        with open(run_dir / SAMPLES_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": at_step, "text": text}, ensure_ascii=False) + "\n")
        tqdm.write(f"sample @ {at_step}: {text[:200]!r}")
        tensorboard.add_text("sample", text, at_step)

    # ---- the loop
    model.train()
    # The bar shows on the main rank at a terminal; logs and pipes get the step lines below instead.
    progress = tqdm(total=config.max_steps, initial=step, desc="train", unit="step", disable=None if is_main else True,
                    dynamic_ncols=True, mininterval=1.0)
    last_log_time, last_log_step = time.perf_counter(), step
    loop_start, eval_seconds = last_log_time, 0.0
    train_loss, val_loss, tokens_per_s = float("nan"), None, 0.0
    # each step's loss stays on the device until the next logged row reads them all at once: no sync per step
    step_losses: list[torch.Tensor] = []
    # Set on the device by any non-finite loss and read only where the loop syncs anyway (logs, checkpoints):
    # a diverged run stops there, before its state is logged or saved.
    diverged = torch.zeros((), dtype=torch.bool, device=device)
    while step < config.max_steps:
        loss_sum = torch.zeros((), device=device)
        for micro in range(micro_steps):
            x, y = train_loader.next_batch()
            # gradients are all-reduced once per optimizer step, on the last micro-batch
            sync = world_size == 1 or micro == micro_steps - 1
            with nullcontext() if sync else model.no_sync():
                with autocast:
                    _, loss = model(x, y)
                (loss / micro_steps).backward()
            loss_sum += loss.detach()
        diverged |= ~torch.isfinite(loss_sum)
        step_losses.append(loss_sum / micro_steps)
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        progress.update(1)

        save_now = step == config.max_steps or (config.ckpt_interval > 0 and step % config.ckpt_interval == 0)
        # a row at each checkpoint too: a resume drops the rows after its checkpoint, and with them the losses
        # of the steps they covered
        log_now = save_now or step % config.log_interval == 0
        eval_now = bool(val_loader) and config.eval_interval > 0 and (
            step % config.eval_interval == 0 or step == config.max_steps)
        record, is_best = None, False
        if (log_now or eval_now) and mean_across_ranks(diverged.float(), world_size) > 0:
            raise TrainError(f"the loss is not finite (nan or inf) by step {step}: training diverged; lower lr "
                             f"(now {config.lr:g}) or set grad_clip, then --resume from the last checkpoint")
        if log_now or eval_now:
            train_losses = mean_across_ranks(torch.stack(step_losses), world_size).tolist()
            step_losses.clear()
            train_loss = train_losses[-1]
            tokens_per_s = (step - last_log_step) * tokens_per_step / (time.perf_counter() - last_log_time)
            record = {"step": step, "train_loss": train_loss, "lr": lr, "tokens_per_s": tokens_per_s}
            if peak_tflops:
                record["mfu"] = mfu(tokens_per_s, flops_per_token, peak_tflops, world_size)
            progress.set_postfix(loss=f"{train_loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_s:,.0f}",
                                 **({"mfu": f"{record['mfu']:.1%}"} if "mfu" in record else {}))
        if eval_now:
            eval_start = time.perf_counter()
            val_loss = record["val_loss"] = evaluate(model, val_loader, autocast, world_size)
            record["eval_s"] = time.perf_counter() - eval_start
            eval_seconds += record["eval_s"]
            is_best = best_val_loss is None or val_loss < best_val_loss
            if is_best:
                best_val_loss, best_step = val_loss, step
            if is_main:
                mfu_note = f", MFU {record['mfu']:.1%}" if "mfu" in record else ""
                tqdm.write(f"step {step}: train {train_loss:.4f}, val {val_loss:.4f}, "
                           f"{tokens_per_s:,.0f} tokens/s{mfu_note} (eval {record['eval_s']:.2f}s; evaluation is "
                           f"{eval_seconds / (time.perf_counter() - loop_start):.0%} of the wall time so far)")
        if is_main and record is not None:
            # the per-step losses last, so the fields people read stay at the start of each line
            metrics.write(json.dumps({**record, "train_losses": train_losses}) + "\n")
            metrics.flush()
            for key in ("train_loss", "val_loss", "lr", "tokens_per_s", "mfu"):
                if key in record:
                    tensorboard.add_scalar(key, record[key], step)
            if eval_now or step == config.max_steps:
                plot_losses(run_dir / METRICS_FILE, run_dir / PLOT_FILE, model_config.vocab_size)
        if is_main and tokenizer is not None and config.sample_interval and step % config.sample_interval == 0:
            write_sample(step)
        # checkpoints at the interval and at the end; the best weights whenever validation improves
        if save_now or is_best:
            save(step, checkpoint=save_now, best=is_best)
        if record is not None:
            # throughput counts training only, not the evaluation, samples and checkpoints just done
            last_log_time, last_log_step = time.perf_counter(), step
    progress.close()
    finish_writes()
    wall_seconds = time.perf_counter() - loop_start

    if is_main:
        metrics.close()
        write_hparams(tensorboard, config, {"best_val_loss": best_val_loss, "final_val_loss": val_loss,
                                            "final_train_loss": train_loss if math.isfinite(train_loss) else None}, step)
        tensorboard.close()
        from model.gpt import save_safetensors

        ckpt.durable_write(run_dir / MODEL_FILE, lambda tmp: save_safetensors(raw_model, tmp))
    if world_size > 1:
        dist.barrier()  # no rank leaves before rank 0's last checkpoint is on disk
    if owns_process_group:
        dist.destroy_process_group()
    return TrainResult(step, train_loss, best_val_loss, tokens_per_s, run_dir, raw_model, eval_seconds, wall_seconds)
