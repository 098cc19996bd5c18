"""Speed and memory of the dedup stage.

    python bench/dedup_speed.py [--docs N] [--sizes 2000,4000,8000]

1. Signature throughput on real news text (bench/dedup_corpus.py: the Lee articles and edited
   copies of them), 128 permutations, 5-word shingles, against plain datasketch loops that call
   `MinHash.update` once per shingle, as its documentation shows:
   - datasketch's default MinHash (scheme "affine32" since 2.0), one per document;
   - datasketch's "legacy" scheme ((a x + b) mod 2^61 - 1), permutations built once and reused.
   Both sides are timed from the raw text (normalising and shingling included), best of
   `--repeats` interleaved runs each, since the machine may be shared.
2. Memory at several corpus sizes (`scaling_corpus`: the same duplicate structure at every
   size), each size in a fresh process running the `Deduplicate` stage on Beam's FnApiRunner:
   - what the stage's steps hold at once, from its distribution metrics (largest LSH bucket,
     exact group, neighbourhood, shingle sets one bucket holds to verify its pairs, shingle set of
     one document): this is what a distributed runner's worker holds, and it should stay flat;
   - the process's peak RSS next to a process that only shuffles the same documents.
     FnApiRunner keeps every PCollection in its one process, so both grow with the corpus; the
     difference divided by the corpus size is the stage's footprint per 1000 documents there.
3. The stage's wall time on the real Common Crawl sample (data/sample/jsonl/dolma-CC-MAIN-*).
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import datasketch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from dedup_corpus import scaled_corpus, scaling_corpus  # noqa: E402
from pipeline.config import DedupConfig  # noqa: E402
from pipeline.text.minhash import MinHasher  # noqa: E402
from pipeline.text.shingles import normalize, shingle_hashes  # noqa: E402

NUM_PERM = 128
SHINGLE = 5
CC_SAMPLES = str(ROOT / "data" / "sample" / "jsonl" / "dolma-CC-MAIN-*.jsonl.gz")
# Distribution metrics the stage reports, as printed: metric → column title.
HELD = {"dedup/lsh_bucket_size": "bucket", "dedup/exact_group_size": "exact grp",
        "connected_components/neighbourhood_size": "neighbours", "dedup/verify_shingle_bytes": "verify KiB",
        "dedup/shingle_set_bytes": "doc KiB"}


def ours(texts: list[str]) -> tuple[float, float]:
    """Seconds for text → signature, and for the signature step alone."""
    minhasher = MinHasher(NUM_PERM, seed=1)
    started = time.perf_counter()
    hashes = [shingle_hashes(text, SHINGLE, SHINGLE) for text in texts]
    shingled = time.perf_counter()
    for h in hashes:
        minhasher.signature(h)
    finished = time.perf_counter()
    return finished - started, finished - shingled


def word_shingles(text: str) -> list[bytes]:
    words = normalize(text).split(" ")
    return [" ".join(words[i:i + SHINGLE]).encode("utf-8") for i in range(max(1, len(words) - SHINGLE + 1))]


def datasketch_default(texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        minhash = datasketch.MinHash(num_perm=NUM_PERM, seed=1)
        for shingle in word_shingles(text):
            minhash.update(shingle)
    return time.perf_counter() - started


def datasketch_legacy(texts: list[str]) -> float:
    permutations = datasketch.MinHash(num_perm=NUM_PERM, seed=1, scheme="legacy").permutations
    started = time.perf_counter()
    for text in texts:
        minhash = datasketch.MinHash(num_perm=NUM_PERM, seed=1, scheme="legacy", permutations=permutations)
        for shingle in word_shingles(text):
            minhash.update(shingle)
    return time.perf_counter() - started


def throughput(num_docs: int, repeats: int) -> float:
    """Prints the timings; returns datasketch's default loop time over ours (text → signature)."""
    texts = [doc["text"] for doc in scaled_corpus(num_docs)]
    normalize("warm up")  # builds the punctuation table once, outside the timings
    shingles = sum(len(word_shingles(text)) for text in texts)
    words = sum(len(text.split()) for text in texts)
    # Runs interleave, so that a burst of load elsewhere on the machine hits every method alike.
    timings = [(ours(texts), datasketch_default(texts), datasketch_legacy(texts)) for _ in range(repeats)]
    (total, signature_only), reference, legacy = (min(column) for column in zip(*timings))
    rows = [("ours (NumPy multiply-add-shift)", total), ("  of which signatures alone", signature_only),
            ("datasketch default MinHash.update loop", reference),
            ("datasketch legacy, permutations reused", legacy)]
    print(f"signatures: {len(texts)} documents, {words} words, {shingles} shingles, {NUM_PERM} permutations")
    for name, seconds in rows:
        print(f"  {name:42s} {seconds:7.2f} s  {shingles / seconds / 1e3:8.1f} k shingles/s  "
              f"{len(texts) / seconds:8.0f} docs/s  {seconds / total:5.1f}x our time")
    return reference / total


def cc_sample_docs() -> list[dict]:
    docs = []
    for path in sorted(glob.glob(CC_SAMPLES)):
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            docs += [{key: record[key] for key in ("id", "source", "text")} for record in map(json.loads, lines)]
    return docs


def run_child(corpus: str, mode: str) -> None:
    """One pipeline in this (fresh) process; prints one JSON line of what it measured."""
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from pipeline.stages.dedup import Deduplicate

    docs = cc_sample_docs() if corpus == "cc" else scaling_corpus(int(corpus))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        pipeline = beam.Pipeline(runner=FnApiRunner())
        source = pipeline | beam.Create(docs)
        outputs = (source | Deduplicate(DedupConfig(), scratch)) if mode == "dedup" else (source | beam.Reshuffle(),)
        for index, pcoll in enumerate(outputs):
            _ = pcoll | f"Count{index}" >> beam.combiners.Count.Globally()
        result = pipeline.run()
        result.wait_until_finish()
    held = {f"{found.key.metric.namespace}/{found.key.metric.name}": found.committed.max
            for found in result.metrics().query()["distributions"]}
    print(json.dumps({"docs": len(docs), "mode": mode, "seconds": time.perf_counter() - started,
                      "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "text_mib": sum(len(doc["text"].encode()) for doc in docs) / 2**20, "held": held}))


def child(corpus: str, mode: str) -> dict:
    finished = subprocess.run([sys.executable, __file__, "--child", corpus, mode],
                              capture_output=True, text=True)
    if finished.returncode:
        raise SystemExit(f"error: the {mode} run on {corpus} failed:\n{finished.stderr[-2000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def memory(sizes: list[int]) -> None:
    print("memory: what the stage's steps hold at once (largest value of each metric), and peak RSS "
          "of a fresh FnApiRunner process")
    print(f"  {'docs':>6} {'text MiB':>8} | " + " ".join(f"{title:>10}" for title in HELD.values())
          + f" | {'shuffle RSS':>11} {'dedup RSS':>9} {'extra':>6} {'per 1k docs':>11} | {'stage s':>7}")
    for size in tqdm(sizes, desc="corpus sizes", leave=False, disable=None):
        base, dedup = child(str(size), "baseline"), child(str(size), "dedup")
        held = [dedup["held"].get(name, 0) / (1024 if name.endswith("bytes") else 1) for name in HELD]
        extra = dedup["max_rss_mib"] - base["max_rss_mib"]
        tqdm.write(f"  {size:6d} {dedup['text_mib']:8.1f} | " + " ".join(f"{value:10.0f}" for value in held)
                   + f" | {base['max_rss_mib']:7.0f} MiB {dedup['max_rss_mib']:5.0f} MiB {extra:6.0f} "
                   f"{extra / size * 1000:7.1f} MiB | {dedup['seconds']:7.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="documents for the signature timing")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each signature timing (the best counts)")
    parser.add_argument("--sizes", default="2000,4000,8000", help="corpus sizes for the memory runs")
    parser.add_argument("--child", nargs=2, metavar=("CORPUS", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(*args.child)
        return 0
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    started = time.perf_counter()
    speedup = throughput(args.docs, args.repeats)
    memory(sizes)
    cc = child("cc", "dedup")
    print(f"Common Crawl sample: {cc['docs']} documents, dedup stage {cc['seconds']:.1f} s on FnApiRunner")
    print(f"dedup speed benchmark done in {time.perf_counter() - started:.0f} s: signatures {speedup:.1f}x "
          f"datasketch's loop, stage {cc['seconds']:.1f} s on the CC sample")
    return 0


if __name__ == "__main__":
    sys.exit(main())
