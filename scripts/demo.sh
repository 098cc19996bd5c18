#!/usr/bin/env bash
# The whole product on the bundled sample: clean → tokenizer → shards → verify → train → sample.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/demo}
STEPS=${STEPS:-500}
# Start from nothing, but never delete a directory that holds something other than an earlier demo.
if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ] && [ ! -d "$OUT/clean" ]; then
    echo "demo: OUT=$OUT is not empty and not an earlier demo's output; choose another OUT" >&2
    exit 2
fi
rm -rf "$OUT"
SAMPLE=(data/sample/web data/sample/jsonl data/sample/html data/sample/text/udhr)

step() { echo; echo "== $1"; STEP_START=$SECONDS; }
done_step() { echo "   ($((SECONDS - STEP_START))s)"; }

step "1/6 clean: read WARC/WET/JSONL/HTML/text, extract, language, quality, dedup"
python -m pipeline clean --input "${SAMPLE[@]}" --output "$OUT/clean" --langs en,de,fr,es,it,pt
done_step

step "2/6 train a SentencePiece tokenizer on the cleaned corpus"
python -m tokenizer train --input "$OUT/clean/cleaned" --output "$OUT/tokenizer" --vocab-size 4096
done_step

step "3/6 tokenize into train/val shards"
python -m pipeline tokenize --input "$OUT/clean/cleaned" --tokenizer "$OUT/tokenizer" --output "$OUT/shards" --num-shards 2 --val-fraction 0.05
done_step

step "4/6 verify the shards and decode the first document"
python -m pipeline verify "$OUT/shards"
python -m pipeline inspect "$OUT/shards" --doc 0 | head -c 300; echo
done_step

step "5/6 train a tiny GPT on the shards (CPU, $STEPS steps)"
python -m train --data "$OUT/shards" --out "$OUT/run" --preset tiny --max_steps "$STEPS"
done_step

step "6/6 sample from the trained model"
python -m train sample --checkpoint "$OUT/run" --prompt "The " --max-new-tokens 60
done_step

echo
echo "Report:  $OUT/clean/report.html   Stats: $OUT/clean/stats.json"
echo "Shards:  $OUT/shards/manifest.json   Run: $OUT/run (metrics.jsonl, loss plot, checkpoints)"
