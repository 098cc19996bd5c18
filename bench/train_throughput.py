"""Training throughput of `model.GPT` + `train.data.TrainLoader` against a nanoGPT-style reference.

    PYTHONPATH=. python bench/train_throughput.py                      # CPU: "mini" preset on real text
    PYTHONPATH=. python bench/train_throughput.py --device cuda --preset gpt2 --block-size 1024 \\
        --batch-size 16 --vocab-size 50257 --dtype bfloat16 --compile  # GPU: GPT-2 124M, tokens/s and MFU

Measures, in one process on the same data, batch and model shape:
  1. training tokens/s (loader + forward + backward + clip + AdamW) of ours and of the reference
     (bench/nanogpt_reference.py), in alternating rounds so that machine load hits both alike;
  2. the loader's own throughput (tokens/s of batches served) and its share of one training step;
  3. resident memory over a long loader run across several epochs of a large shard: anonymous RSS
     (the loader's own memory) must stay flat; file-backed RSS is page cache the kernel can drop.
Real text: the bundled sample corpus (data/sample/jsonl) as UTF-8 bytes (vocab 257). With
--vocab-size above 257, uniform random tokens stand in (throughput does not depend on the values).
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from bench.nanogpt_reference import ReferenceGPT, get_batch
from common.shard_format import HEADER_BYTES, open_shards, write_shard_dir
from model.gpt import GPT, PRESETS, GPTConfig
from train.data import TrainLoader
from train.mfu import mfu, peak_bf16_tflops

ROOT = Path(__file__).resolve().parents[1]
BYTE_EOT = 256


def sample_corpus_bytes() -> list[np.ndarray]:
    docs = []
    for path in sorted((ROOT / "data/sample/jsonl").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            docs += [np.append(np.frombuffer(json.loads(line)["text"].encode("utf-8"), dtype=np.uint8).astype(np.uint16),
                               np.uint16(BYTE_EOT)) for line in f]
    return docs


def build_shards(directory: Path, vocab_size: int, min_tokens: int, seed: int = 0) -> Path:
    if vocab_size <= BYTE_EOT + 1:
        docs = sample_corpus_bytes()
        vocab_size, eot = BYTE_EOT + 1, BYTE_EOT
    else:
        rng = np.random.default_rng(seed)
        eot = vocab_size - 1
        docs = [np.append(rng.integers(0, eot, 2000, dtype=np.uint32), np.uint32(eot)) for _ in range(max(1, min_tokens // 2001))]
    repeats = -(-min_tokens // sum(len(d) for d in docs))
    return write_shard_dir(directory, {"train": [docs * repeats]}, vocab_size, eot)


def rss_kib() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            fields[key] = int(value.split()[0])
    return fields


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_steps(model, optimizer, next_batch, steps: int, autocast, device: torch.device) -> float:
    """Tokens per second of `steps` full training steps (batch, forward, backward, clip, AdamW)."""
    sync(device)
    start = time.perf_counter()
    tokens = 0
    for _ in range(steps):
        x, y = next_batch()
        with autocast:
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += x.numel()
    sync(device)
    return tokens / (time.perf_counter() - start)


def reference_batches(shard, block_size: int, batch_size: int, device: torch.device):
    """nanoGPT's get_batch on one shard's tokens, moved to the device the way nanoGPT does."""
    def next_batch():
        x, y = get_batch(shard.bin_path, shard.header.dtype, HEADER_BYTES, block_size, batch_size)
        if device.type == "cuda":
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x, y
    return next_batch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mini", choices=list(PRESETS))
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--vocab-size", type=int, default=257)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per round and model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loader-batches", type=int, default=2000)
    parser.add_argument("--rss-tokens", type=int, default=50_000_000, help="size of the shard for the RSS run")
    parser.add_argument("--rss-epochs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--peak-tflops", type=float, help="accelerator peak for MFU (default: by GPU name)")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.dtype == "bfloat16" else nullcontext()
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    results: dict = {"device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
                     "torch_threads": torch.get_num_threads(), "preset": args.preset,
                     "block_size": args.block_size, "batch_size": args.batch_size, "dtype": args.dtype}

    with tempfile.TemporaryDirectory() as tmp:
        shards = build_shards(Path(tmp) / "train", args.vocab_size, 4 * args.batch_size * (args.block_size + 1) * 50)
        shard = open_shards(shards, "train")[0]
        loader = TrainLoader(shards, args.block_size, args.batch_size, seed=0, device=device)
        config = GPTConfig.from_preset(args.preset, vocab_size=loader.vocab_size, block_size=args.block_size)

        torch.manual_seed(0)
        ours = GPT(config).to(device)
        ours_opt = ours.configure_optimizer(0.1, 1e-4, (0.9, 0.95), device.type)
        # The reference gets the same padded vocabulary, so both do the same arithmetic.
        ref = ReferenceGPT(config.padded_vocab_size, args.block_size, config.n_layer, config.n_head,
                           config.n_embd).to(device)
        ref_opt = ref.optimizer(1e-4, 0.1, device.type)
        ours_step_model = torch.compile(ours) if args.compile else ours
        ref_step_model = torch.compile(ref) if args.compile else ref

        ours_batch = loader.next_batch
        ref_batch = reference_batches(shard, args.block_size, args.batch_size, device)
        for model, opt, batch in ((ours_step_model, ours_opt, ours_batch), (ref_step_model, ref_opt, ref_batch)):
            timed_steps(model, opt, batch, 3, autocast, device)  # warm-up (and compilation)
        ours_rates, ref_rates = [], []
        for _ in range(args.rounds):
            ours_rates.append(timed_steps(ours_step_model, ours_opt, ours_batch, args.steps, autocast, device))
            ref_rates.append(timed_steps(ref_step_model, ref_opt, ref_batch, args.steps, autocast, device))
        ours_tps, ref_tps = statistics.median(ours_rates), statistics.median(ref_rates)
        results["params_M"] = round(ours.num_params() / 1e6, 2)
        results["train_tokens_per_s"] = {"ours": round(ours_tps), "nanogpt_reference": round(ref_tps),
                                         "ratio": round(ours_tps / ref_tps, 3),
                                         # per-round ratios cancel load that drifts between rounds
                                         "paired_ratio_median": round(statistics.median(
                                             o / r for o, r in zip(ours_rates, ref_rates)), 3),
                                         "rounds_ours": [round(r) for r in ours_rates],
                                         "rounds_reference": [round(r) for r in ref_rates]}
        if device.type == "cuda":
            peak = args.peak_tflops or peak_bf16_tflops(results["device"])
            if peak:
                flops = ours.flops_per_token()
                results["mfu"] = {"ours": round(mfu(ours_tps, flops, peak), 4),
                                  "nanogpt_reference": round(mfu(ref_tps, flops, peak), 4),
                                  "peak_tflops": peak}

        # Loader alone: batches served per second, and its share of a training step.
        sync(device)
        start = time.perf_counter()
        for _ in range(args.loader_batches):
            loader.next_batch()
        sync(device)
        loader_s = (time.perf_counter() - start) / args.loader_batches
        start = time.perf_counter()
        for _ in range(args.loader_batches):
            ref_batch()
        sync(device)
        ref_loader_s = (time.perf_counter() - start) / args.loader_batches
        step_s = args.batch_size * args.block_size / ours_tps
        results["loader"] = {"tokens_per_s": round(args.batch_size * args.block_size / loader_s),
                             "ms_per_batch": round(loader_s * 1e3, 4),
                             "share_of_step_percent": round(100 * loader_s / step_s, 3),
                             "nanogpt_get_batch_tokens_per_s": round(args.batch_size * args.block_size / ref_loader_s)}

    if not args.skip_rss:
        with tempfile.TemporaryDirectory() as tmp:
            big = build_shards(Path(tmp) / "big", 257, args.rss_tokens)
            long_loader = TrainLoader(big, 1024, 64, seed=0)
            batches = -(-args.rss_epochs * long_loader.windows_per_rank // 64)
            before = rss_kib()
            samples = []
            for k in range(batches):
                long_loader.next_batch()
                if k % max(1, batches // 10) == 0:
                    samples.append(rss_kib())
            after = rss_kib()
            results["rss_long_run"] = {
                "tokens_in_shards": len(long_loader.index.shards[0]), "batches": batches,
                "epochs_completed": long_loader.epoch, "anon_kib_start": before["RssAnon"], "anon_kib_end": after["RssAnon"],
                "anon_kib_max": max(s["RssAnon"] for s in samples + [after]),
                "file_kib_end": after["RssFile"]}

    print(json.dumps(results, indent=2))
    ratio = results["train_tokens_per_s"]["ratio"]
    print(f"ours {ours_tps:,.0f} tokens/s vs nanoGPT-style {ref_tps:,.0f} ({ratio:.2f}x); loader "
          f"{results['loader']['share_of_step_percent']}% of a step", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
