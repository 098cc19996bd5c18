"""Share of documents each language and quality rule drops, on real crawled JSONL.

    python bench/quality_drop_rates.py [FILE.jsonl.gz ...] [--langs en]

Defaults to the bundled Dolma sample of one Common Crawl segment. Documents go through the `lang`
judge, then (if kept) the `quality` judge, as `python -m pipeline clean` applies them; one line per
reason with its count and share of all input documents, then the throughput of the quality rules.
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.config import LangConfig, QualityConfig  # noqa: E402
from pipeline.text.lang import LanguageJudge  # noqa: E402
from pipeline.text.quality import QualityJudge  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path, default=sorted(SAMPLE.glob("dolma-CC-MAIN-*.jsonl.gz")))
    parser.add_argument("--langs", default="en", help="languages to keep (default: en); 'all' keeps every language")
    args = parser.parse_args()
    docs = [json.loads(line) for path in args.files for line in gzip.open(path, "rt", encoding="utf-8")]
    lang_judge = LanguageJudge(LangConfig(langs=args.langs.split(",")))
    quality_judge = QualityJudge(QualityConfig())
    reasons: collections.Counter = collections.Counter()
    quality_seconds = quality_bytes = 0.0
    for doc in docs:
        verdict = lang_judge(doc)
        if verdict.keep:
            doc = {**doc, **verdict.signals}
            start = time.perf_counter()
            verdict = quality_judge(doc)
            quality_seconds += time.perf_counter() - start
            quality_bytes += len(doc["text"].encode("utf-8"))
        reasons[verdict.reason or "kept"] += 1
    total = len(docs)
    passed_lang = total - sum(count for reason, count in reasons.items() if reason.startswith("lang_"))
    print(f"{total} documents from {', '.join(p.name for p in args.files)}; {passed_lang} passed lang ({args.langs})")
    for reason, count in reasons.most_common():
        print(f"{reason:32s} {count:5d} {count / total:7.1%}")
    print(f"quality rules: {passed_lang / quality_seconds:.0f} docs/s, {quality_bytes / quality_seconds / 1e6:.2f} MB/s "
          f"(one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
