"""Pairwise precision, recall and F1 of the dedup stage on a labelled near-duplicate corpus.

    python bench/dedup_quality.py [--seed N] [--min-words N] [--set dedup.KEY=VALUE ...]

Builds the corpus of bench/dedup_corpus.py (real news articles, their edited copies, exact
copies and hard negatives), runs the real `Deduplicate` stage on Beam's FnApiRunner, and
compares the clusters it finds with the true ones: a pair of documents is predicted duplicate
when both end up with the same kept document. Prints the figures and a one-line summary.
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dedup_corpus import labelled_corpus  # noqa: E402
from common.config_io import ConfigError, override  # noqa: E402
from pipeline.config import DedupConfig  # noqa: E402
from pipeline.stages.dedup import Deduplicate  # noqa: E402
from pipeline.text.minhash import check_config, shingles_of  # noqa: E402
from pipeline.text.shingles import jaccard  # noqa: E402


def run_stage(docs: list[dict], config: DedupConfig) -> dict[str, str]:
    """id → id of the document its cluster keeps (itself when kept)."""
    with tempfile.TemporaryDirectory() as scratch:
        with beam.Pipeline(runner=FnApiRunner()) as pipeline:
            kept, rejected = pipeline | beam.Create(docs) | Deduplicate(config, f"{scratch}/work")
            _ = (kept | "KeptPairs" >> beam.Map(lambda doc: json.dumps([doc["id"], doc["id"]]))
                 | "WriteKept" >> beam.io.WriteToText(f"{scratch}/kept", shard_name_template=""))
            _ = (rejected | "RejectedPairs" >> beam.Map(lambda rec: json.dumps([rec["id"], rec["duplicate_of"]]))
                 | "WriteRejected" >> beam.io.WriteToText(f"{scratch}/rejected", shard_name_template=""))
        lines = Path(f"{scratch}/kept").read_text().splitlines() + Path(f"{scratch}/rejected").read_text().splitlines()
    return dict(json.loads(line) for line in lines)


def same_cluster_pairs(label_of: dict[str, str]) -> set[tuple[str, str]]:
    members = collections.defaultdict(list)
    for doc_id, label in label_of.items():
        members[label].append(doc_id)
    return {pair for group in members.values() for pair in itertools.combinations(sorted(group), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-words", type=int, default=200, help="shortest article given copies and hard negatives")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a DedupConfig field, e.g. threshold=0.7")
    args = parser.parse_args(argv)
    config = DedupConfig()
    try:
        for item in args.set:
            key, _, value = item.partition("=")
            config = override(config, key.removeprefix("dedup."), value)
        bands, rows = check_config(config)
    except ConfigError as error:
        parser.error(str(error))

    docs = labelled_corpus(args.seed, args.min_words)
    started = time.perf_counter()
    predicted = run_stage(docs, config)
    seconds = time.perf_counter() - started
    if set(predicted) != {doc["id"] for doc in docs}:
        print("error: the stage lost or invented documents", file=sys.stderr)
        return 1

    truth = same_cluster_pairs({doc["id"]: doc["cluster"] for doc in docs})
    found = same_cluster_pairs(predicted)
    true_positive = len(truth & found)
    precision = true_positive / len(found) if found else 1.0
    recall = true_positive / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    texts = {doc["id"]: doc["text"] for doc in docs}
    shingles = {doc_id: shingles_of(text, None, config) for doc_id, text in texts.items()}
    similarity = {pair: jaccard(shingles[pair[0]], shingles[pair[1]]) for pair in truth}
    negatives = [doc for doc in docs if doc["cluster"].endswith("-negative")]
    originals = [doc["id"] for doc in docs if doc["id"].endswith("-orig")]
    negative_similarity = [max(jaccard(shingles[doc["id"]], shingles[orig]) for orig in originals) for doc in negatives]
    below = sum(1 for value in similarity.values() if value < config.threshold)
    kinds = collections.Counter(doc["id"].rsplit("-", 1)[1].rstrip("0123456789") for doc in docs)

    print(f"corpus: {len(docs)} documents ({dict(sorted(kinds.items()))}), {len(truth)} true duplicate pairs")
    print(f"config: threshold={config.threshold} num_perm={config.num_perm} bands x rows={bands}x{rows} "
          f"shingles={config.shingle_size} words verify_jaccard={config.verify_jaccard}")
    print(f"true Jaccard of duplicate pairs: min {min(similarity.values()):.3f}, "
          f"median {sorted(similarity.values())[len(similarity) // 2]:.3f}, {below} below the threshold")
    print(f"hard negatives: {len(negatives)}, Jaccard with any article at most {max(negative_similarity):.3f}; "
          f"merged: {sum(1 for doc in negatives if predicted[doc['id']] != doc['id'])}")
    print(f"pairs: predicted {len(found)}, true positives {true_positive}, false positives {len(found - truth)}, "
          f"false negatives {len(truth - found)}")
    print(f"dedup quality: precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f} "
          f"({len(docs)} docs, stage {seconds:.1f} s on FnApiRunner)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
