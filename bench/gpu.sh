#!/usr/bin/env bash
# The prepared GPU check: GPT-2 124M through `python -m train` (compiled and eager), against nanoGPT's
# model shape in the same process, and a resume check, in under 8 minutes on one GPU. Every part runs
# under its own timeout inside a global budget; a part that fails is recorded and the run goes on.
#
#   bash bench/gpu.sh                          # results under $OUT (or out/gpu-DATE): results.jsonl,
#                                              # summary.json, logs/; the last stdout line is the summary
#   bash bench/gpu.sh --loss-chunk 2048        # also time the chunked loss in the reference part
#   bash bench/gpu.sh --help                   # every option (device, preset, sizes, steps, budget, ...)
#
# Needs python3 with torch (CUDA), numpy, safetensors, tensorboard, tqdm, matplotlib; no Beam.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=.
exec "${PYTHON:-python3}" -m bench.gpu_check --out "${OUT:-out/gpu-$(date +%Y%m%d-%H%M%S)}" "$@"
