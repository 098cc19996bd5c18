"""Small real-text shard directories for the model and trainer tests (no Beam, no network).

Byte-level: the UDHR in 12 languages (tests/cleaned_corpus.py), each document's UTF-8 bytes as token ids
0-255 and 256 as end-of-text. With a real SentencePiece tokenizer for the `train sample` test.
"""
from __future__ import annotations

from pathlib import Path

from common.shard_format import write_shard_dir
from tests.cleaned_corpus import udhr_documents, write_cleaned

BYTE_VOCAB = 257
BYTE_EOT = 256


def byte_documents() -> list[list[int]]:
    return [list(doc["text"].encode("utf-8")) + [BYTE_EOT] for doc in udhr_documents()]


def write_byte_shards(directory: Path, train_shards: int = 2) -> Path:
    """Every 10th document goes to val; the rest are dealt round-robin into `train_shards` shards."""
    docs = byte_documents()
    val = docs[::10]
    train = [d for i, d in enumerate(docs) if i % 10]
    return write_shard_dir(directory, {"train": [train[k::train_shards] for k in range(train_shards)],
                                       "val": [val]}, BYTE_VOCAB, BYTE_EOT)


def write_tokenized_shards(directory: Path, vocab_size: int = 400) -> Path:
    """Train a real SentencePiece tokenizer on the UDHR and write shards naming it in the manifest."""
    from tokenizer import Tokenizer
    from tokenizer.train import TrainConfig, train

    # Latin-script languages only: a 400-piece vocabulary cannot cover the 12 languages' alphabets
    documents = [doc for doc in udhr_documents() if doc["lang"] in ("en", "de", "fr", "es", "it", "pt")]
    cleaned = write_cleaned(directory / "cleaned", documents)
    tok_dir = directory / "tok"
    train(str(cleaned), str(tok_dir), TrainConfig(vocab_size=vocab_size, heldout_fraction=0.0))
    tok = Tokenizer.load(str(tok_dir))
    docs = [tok.encode(doc["text"]) + [tok.eot_id] for doc in documents]
    return write_shard_dir(directory / "shards", {"train": [docs[1::2]], "val": [docs[::8]]}, tok.vocab_size,
                           tok.eot_id, {"path": str(tok_dir), "model_sha256": tok.model_sha256,
                                        "vocab_size": tok.vocab_size})
