"""After pretraining, on CPU: classification, LoRA and instruction tuning from a small pretrained GPT.

    PYTHONPATH=. python bench/finetune.py [--base RUN] [--work DIR] [--steps N]

Without --base it first runs the demo path on the bundled sample (clean → tokenizer → shards → a short
`train`, "tiny" preset). Then, each through the real commands:
  1. sentence_polarity (data/finetune): a seeded, stratified 10% held out as the test split; full
     fine-tuning, head-only and LoRA rank 8 (attention layers), the same steps and batches each;
     accuracy on the held-out split against the majority class;
  2. instruction-data.json (data/finetune): SFT, response-token loss on the held-out pairs before and after;
  3. `train eval` of the pretrained model on its own val shards (loss, perplexity, bits per byte).
Prints a Markdown table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ["data/sample/web", "data/sample/jsonl", "data/sample/html", "data/sample/text/udhr"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def sh(*args) -> str:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", *map(str, args)], cwd=ROOT, env=ENV, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{done.stderr[-2000:]}")
    print(f"  {' '.join(map(str, args[:2]))}: {time.perf_counter() - started:.0f}s", file=sys.stderr)
    return done.stdout


def pretrain(work: Path, steps: int) -> Path:
    sh("pipeline", "clean", "--input", *SAMPLE, "--output", work / "clean", "--langs", "en,de,fr,es,it,pt")
    sh("tokenizer", "train", "--input", work / "clean" / "cleaned", "--output", work / "tokenizer", "--vocab-size", 4096)
    sh("pipeline", "tokenize", "--input", work / "clean" / "cleaned", "--tokenizer", work / "tokenizer", "--output",
       work / "shards", "--num-shards", 2, "--val-fraction", 0.05)
    sh("train", "--data", work / "shards", "--out", work / "run", "--preset", "tiny", "--max_steps", steps,
       "--eval_interval", 0, "--sample_interval", 0, "--device", "cpu")
    return work / "run"


def split_polarity(work: Path) -> tuple[Path, Path]:
    from train.finetune import read_records, seeded_split

    records = read_records(ROOT / "data/finetune/sentence_polarity.jsonl")
    by_label: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_label.setdefault(r["label"], []).append(i)
    train_idx, test_idx = seeded_split(by_label, 0.1, seed=2024)
    paths = work / "polarity-train.jsonl", work / "polarity-test.jsonl"
    for path, indices in zip(paths, (train_idx, test_idx)):
        path.write_text("".join(json.dumps(records[i]) + "\n" for i in indices), encoding="utf-8")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="a pretrained run (default: pretrain one via the demo path)")
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "bench-finetune")
    parser.add_argument("--pretrain-steps", type=int, default=300)
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps of each classification run")
    parser.add_argument("--sft-steps", type=int, default=150)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    base = args.base or pretrain(args.work, args.pretrain_steps)
    rows = []
    shards = args.work / "shards"
    if shards.is_dir():
        pretrained = json.loads(sh("train", "eval", "--checkpoint", base, "--data", shards))
        rows.append(("pretrained model, `train eval` on its val shards", "val loss / perplexity / bits per byte",
                     f"{pretrained['val_loss']:.3f} / {pretrained['perplexity']:.1f} / {pretrained['bits_per_byte']:.3f}",
                     "", ""))

    train_file, test_file = split_polarity(args.work)
    common = ["--max_steps", args.steps, "--batch_size", 16, "--eval_interval", 100, "--ckpt_interval", 0,
              "--warmup_steps", 20, "--device", "cpu", "--seed", 1]
    runs = {"full fine-tuning": ["--lr", "1e-3"], "head only": ["--trainable", "head", "--lr", "3e-3"],
            "LoRA rank 8, attn": ["--lora-rank", 8, "--lora-alpha", 16, "--lora_targets", "attn", "--lr", "3e-3"]}
    for name, extra in runs.items():
        out = args.work / ("cls-" + name.split(",")[0].replace(" ", "-"))
        started = time.perf_counter()
        sh("train", "finetune-cls", "--checkpoint", base, "--data", train_file, "--test", test_file, "--out", out,
           *common, *extra)
        seconds = time.perf_counter() - started
        result = json.loads((out / "eval.json").read_text())
        test = result["test"]
        rows.append((f"sentence_polarity, {name}, {args.steps} steps × 16",
                     "held-out accuracy (majority class)", f"{test['accuracy']:.3f} ({test['majority_accuracy']:.3f})",
                     f"{result['trainable_params']:,} / {result['total_params']:,} "
                     f"({100 * result['trainable_params'] / result['total_params']:.2f}%)",
                     f"{seconds:.0f} s, peak {result['peak_memory_mb']:.0f} MB"))

    out = args.work / "sft"
    started = time.perf_counter()
    sh("train", "finetune-sft", "--checkpoint", base, "--data", ROOT / "data/finetune/instruction-data.json",
       "--out", out, "--max_steps", args.sft_steps, "--batch_size", 8, "--lr", "1e-3", "--eval_interval", 50,
       "--ckpt_interval", 0, "--response_tokens", 16, "--device", "cpu", "--seed", 1)
    seconds = time.perf_counter() - started
    result = json.loads((out / "eval.json").read_text())
    rows.append((f"instruction-data.json, SFT, {args.sft_steps} steps × 8",
                 "held-out response loss, before → after", f"{result['initial']['val_loss']:.3f} → {result['val_loss']:.3f}",
                 f"{result['trainable_params']:,} / {result['total_params']:,}",
                 f"{seconds:.0f} s, peak {result['peak_memory_mb']:.0f} MB"))

    print("| run | measure | result | trainable / total params | time, memory |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
