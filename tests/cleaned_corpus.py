"""Real multilingual text written as a cleaned/ directory, for the tokenizer and shard tests.

The UDHR in 12 languages (data/sample/text/udhr), cut into documents of 10 lines, plus a few
documents that stress lossless tokenization: emoji with joiners, combining marks, CJK, odd
whitespace, SentencePiece's own whitespace marker U+2581, and digits.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

UDHR = Path(__file__).resolve().parents[1] / "data/sample/text/udhr"

EDGE_CASES = {
    "edge-emoji": "Family 👨‍👩‍👧‍👦, flags 🇩🇪🇯🇵, skin tones 👍🏽 and 🫠 in one line.",
    "edge-combining": "e\u0301 vs \u00e9, A\u030a vs \u00c5, Hangul \u1100\u1161 vs \uac00, Devanagari \u0915\u094d\u0937",
    "edge-cjk": "日本語のテキスト。中文文本，한국어 텍스트。全角ＡＢＣ１２３ and ﬁ ligature",
    "edge-whitespace": "  leading spaces\ttabs\t\tand\r\nCRLF\n\n\ntrailing   \n\u00a0nbsp\u3000ideographic space ",
    "edge-marker": "SentencePiece marker \u2581 literal, \u2581\u2581 twice, and at the end \u2581",
    "edge-digits": "Order 1234567890 costs 3.14159 and 1,000,000 units on 2024-01-31.",
    "edge-controls": "zero\u200bwidth\u200djoiner\ufeffBOM \x00 NUL \x7f DEL and \U0001d11e clef",
}


def udhr_documents(lines_per_doc: int = 10) -> list[dict]:
    docs = []
    for path in sorted(UDHR.glob("*.txt")):
        lang = path.stem
        lines = path.read_text(encoding="utf-8").split("\n")
        for start in range(0, len(lines), lines_per_doc):
            text = "\n".join(lines[start:start + lines_per_doc])
            if text.strip():
                docs.append({"id": f"udhr-{lang}-{start:04d}", "text": text, "lang": lang, "source": str(path)})
    return docs


def corpus_documents() -> list[dict]:
    edge = [{"id": doc_id, "text": text, "lang": "und", "source": "tests"} for doc_id, text in EDGE_CASES.items()]
    return udhr_documents() + edge


def write_cleaned(directory: Path, docs: list[dict], num_files: int = 2) -> Path:
    """Write `docs` as `pipeline clean` does: part-NNNNN.jsonl.gz files, each sorted by id, then the
    completion marker."""
    directory.mkdir(parents=True, exist_ok=True)
    for k in range(num_files):
        part = sorted((d for i, d in enumerate(docs) if i % num_files == k), key=lambda d: d["id"])
        with gzip.open(directory / f"part-{k:05d}.jsonl.gz", "wt", encoding="utf-8") as f:
            for doc in part:
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    (directory / "_SUCCESS").write_bytes(b"")
    return directory
