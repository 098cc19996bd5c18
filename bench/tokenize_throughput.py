"""Throughput of the Beam tokenize stage vs. a plain SentencePiece loop, and bytes per token per language.

    python bench/tokenize_throughput.py [--repeat 4] [--vocab-size 8000]

Corpus: the bundled sample's real text, written as a cleaned/ directory: the UDHR in 12 languages
(data/sample/text/udhr, one document per 10 lines) and the Dolma Common Crawl JSONL documents
(data/sample/jsonl, mostly English, labelled "en-web"), repeated --repeat times under fresh ids.
Steps: train a BPE tokenizer on it; run `pipeline tokenize` (FnApiRunner, in one process and with
2 worker processes); encode the same texts with sentencepiece in a Python loop, one call per
document, and in one batched call. Prints tokens/s for each and bytes/token per language.
"""
from __future__ import annotations

import argparse
import gzip
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sentencepiece as spm  # noqa: E402

from pipeline.commands.tokenize import tokenize  # noqa: E402
from pipeline.config import TokenizeConfig  # noqa: E402
from pipeline.stages.tokenize import TokenizerIdentity  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402
from tokenizer.train import TrainConfig, train  # noqa: E402

SAMPLE = REPO / "data" / "sample"


def sample_documents(repeat: int) -> list[dict]:
    base = []
    for path in sorted((SAMPLE / "text" / "udhr").glob("*.txt")):
        lines = path.read_text(encoding="utf-8").split("\n")
        base += [{"id": f"udhr-{path.stem}-{i:04d}", "lang": path.stem, "text": "\n".join(lines[i:i + 10])}
                 for i in range(0, len(lines), 10)]
    for path in sorted((SAMPLE / "jsonl").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            base += [{"id": f"{path.name}:{row['id']}", "lang": "en-web", "text": row["text"]} for row in map(json.loads, f)]
    return [{**doc, "id": f"r{r}/{doc['id']}"} for r in range(repeat) for doc in base if doc["text"]]


def write_cleaned(directory: Path, docs: list[dict], num_files: int = 4) -> None:
    directory.mkdir(parents=True)
    for k in range(num_files):
        with gzip.open(directory / f"part-{k:05d}.jsonl.gz", "wt", encoding="utf-8") as f:
            for doc in sorted(docs[k::num_files], key=lambda d: d["id"]):
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--vocab-size", type=int, default=8000)
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)

    docs = sample_documents(args.repeat)
    texts = [d["text"] for d in docs]
    total_bytes = sum(len(t.encode("utf-8")) for t in texts)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_cleaned(root / "cleaned", docs)
        meta, train_s = timed(lambda: train(str(root / "cleaned"), str(root / "tok"),
                                                      TrainConfig(vocab_size=args.vocab_size, heldout_fraction=0.05)))
        tok = Tokenizer.load(str(root / "tok"))
        identity = TokenizerIdentity(str(root / "tok"), tok.model_sha256, tok.vocab_size, tok.eot_id)
        print(f"corpus: {len(docs)} documents, {total_bytes / 1e6:.2f} MB; tokenizer: bpe {tok.vocab_size} "
              f"trained in {train_s:.1f}s on {meta['training']['sampled_bytes'] / 1e6:.2f} MB")

        rows = []
        for label, beam_args in (("beam tokenize, FnApiRunner, 1 process", []),
                                 ("beam tokenize, FnApiRunner, 2 processes",
                                  ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])):
            out = root / f"shards-{len(rows)}"
            manifest, seconds = timed(lambda: tokenize(str(root / "cleaned"), str(out), identity,
                                                              TokenizeConfig(num_shards=2), beam_args))
            tokens = sum(s["num_tokens"] for s in manifest["splits"].values())
            rows.append((label, tokens, seconds))

        processor = spm.SentencePieceProcessor(model_file=str(root / "tok" / "tokenizer.model"))
        loop, seconds = timed(lambda: [processor.encode(t) for t in texts])
        rows.append(("sentencepiece, Python loop, one call per doc", sum(map(len, loop)) + len(texts), seconds))
        batch, seconds = timed(lambda: processor.encode(texts, num_threads=2))
        rows.append(("sentencepiece, one batched call, 2 threads", sum(map(len, batch)) + len(texts), seconds))

        print(f"\n{'what':48} {'tokens':>10} {'seconds':>8} {'tokens/s':>12}")
        for label, tokens, seconds in rows:
            print(f"{label:48} {tokens:>10} {seconds:>8.2f} {tokens / seconds:>12,.0f}")

        print(f"\n{'language':10} {'held-out B/tok':>15} {'corpus B/tok':>13}")
        by_lang: dict[str, list[int]] = {}
        for doc, ids in zip(docs, batch):
            figures = by_lang.setdefault(doc["lang"], [0, 0])
            figures[0] += len(doc["text"].encode("utf-8"))
            figures[1] += len(ids)
        for lang in sorted(by_lang):
            heldout = meta["compression"].get(lang, {}).get("bytes_per_token")
            print(f"{lang:10} {heldout if heldout is not None else '-':>15} {by_lang[lang][0] / by_lang[lang][1]:>13.3f}")


if __name__ == "__main__":
    main()
