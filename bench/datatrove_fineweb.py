"""datatrove's FineWeb-style cleaning of a folder of WARC.gz files; run by `bench/vs_datatrove.py`.

    DATATROVE_VENV/bin/python bench/datatrove_fineweb.py --input DIR --output DIR [--tasks 2] [--workers 2]

It runs in datatrove's own environment (it imports datatrove and the standard library only) and
follows the steps of datatrove's FineWeb example: WarcReader → Trafilatura → LanguageFilter (en,
0.65) → Gopher repetition → Gopher quality → C4 quality → FineWeb quality → JsonlWriter, then
MinHash deduplication (signatures, buckets, clusters, filter) → JsonlWriter. Left out, as our
`clean` has no counterpart: the URL block list, token counting (it downloads a tokenizer) and PII
formatting. Each stage runs with LocalPipelineExecutor; the bucket stage has one task per bucket and
the cluster stage one task, as in the example. The last stdout line is a JSON summary.
"""
from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter, LanguageFilter)
from datatrove.pipeline.readers import JsonlReader, WarcReader
from datatrove.pipeline.writers.jsonl import JsonlWriter
from datatrove.utils.hashing import HashConfig


def _documents(folder: Path) -> int:
    total = 0
    for path in folder.glob("*.jsonl.gz"):
        with gzip.open(path, "rb") as f:
            total += sum(1 for _ in f)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True, help="folder of *.warc.gz files")
    parser.add_argument("--output", type=Path, required=True, help="folder for every stage's output and logs")
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    out = args.output
    filtered, signatures, buckets, remove_ids, result = (
        out / "filtered", out / "signatures", out / "buckets", out / "remove_ids", out / "deduplicated")
    # FineWeb's MinHash settings: 14 buckets of 8 hashes, 64-bit hashes of word 5-grams
    minhash = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8)

    def executor(name, pipeline, tasks, depends=None):
        return LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=min(args.workers, tasks),
                                     logging_dir=str(out / "logs" / name), depends=depends)

    filtering = executor("filter", [
        WarcReader(str(args.input), glob_pattern="*.warc.gz"),
        Trafilatura(favour_precision=True),
        LanguageFilter(languages=["en"], language_threshold=0.65),
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        JsonlWriter(str(filtered)),
    ], args.tasks)
    signing = executor("signatures", [JsonlReader(str(filtered)), MinhashDedupSignature(str(signatures), config=minhash)],
                       args.tasks, filtering)
    bucketing = executor("buckets", [MinhashDedupBuckets(str(signatures), str(buckets), config=minhash)],
                         minhash.num_buckets, signing)
    clustering = executor("clusters", [MinhashDedupCluster(str(buckets), str(remove_ids), config=minhash)], 1, bucketing)
    deduplicating = executor("dedup", [JsonlReader(str(filtered)), MinhashDedupFilter(str(remove_ids)),
                                       JsonlWriter(str(result))], args.tasks, clustering)
    deduplicating.run()
    print(json.dumps({"after_filters": _documents(filtered), "kept": _documents(result)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
