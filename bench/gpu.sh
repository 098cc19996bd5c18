#!/usr/bin/env bash
# GPT-2 124M training throughput (tokens/s and MFU) on one CUDA GPU, in a few minutes.
#
#   bash bench/gpu.sh                 # from the repository root; needs torch with CUDA, nothing else
#
# 1. bench/train_throughput.py: ours vs the nanoGPT-style reference, same shape (12 layers, 768 wide,
#    block 1024, vocab 50257 padded to 50304), bf16 autocast, torch.compile, batch 16 sequences.
# 2. `python -m train` end to end on the same synthetic shards for 60 steps (tokens/s from metrics.jsonl).
# Set PEAK_TFLOPS for GPUs the script does not know by name; BATCH to change the micro-batch.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.
PYTHON=${PYTHON:-python}
BATCH=${BATCH:-16}
PEAK=${PEAK_TFLOPS:+--peak-tflops $PEAK_TFLOPS}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
$PYTHON bench/train_throughput.py --device cuda --preset gpt2 --block-size 1024 --batch-size "$BATCH" \
    --vocab-size 50257 --dtype bfloat16 --compile --steps 10 --rounds 3 --loader-batches 500 --skip-rss $PEAK

$PYTHON - "$WORK/shards" <<'PY'
import sys
from pathlib import Path
from bench.train_throughput import build_shards
build_shards(Path(sys.argv[1]), 50257, 60 * 16 * 1025 * 2)
PY
$PYTHON -m train --data "$WORK/shards" --out "$WORK/run" --preset gpt2 --block_size 1024 --batch_size "$BATCH" \
    --max_steps 60 --log_interval 10 --eval_interval 0 --ckpt_interval 0 --sample_interval 0 \
    --warmup_steps 10 --lr 6e-4 --min_lr 6e-5 --compile true --dtype bfloat16 --device cuda
$PYTHON - "$WORK/run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
steady = [r["tokens_per_s"] for r in rows[2:]] or [rows[-1]["tokens_per_s"]]  # skip compilation
print(f"python -m train (gpt2 preset): {sum(steady) / len(steady):,.0f} tokens/s over steps "
      f"{rows[2]['step'] if len(rows) > 2 else rows[-1]['step']}-{rows[-1]['step']}")
PY
