#!/usr/bin/env bash
# Every CPU benchmark but the datatrove comparison (`make bench`), one after the other (about 10 minutes
# on 2 cores); `make bench-all` runs this. Results: BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.
for bench in clean_throughput lang_accuracy quality_drop_rates dedup_quality dedup_speed tokenize_throughput train_throughput; do
    echo "== bench/$bench.py"
    python "bench/$bench.py"
done
