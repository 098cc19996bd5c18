"""The tokenize stage: cleaned documents in, token shards and manifest.json out (format: common.shard_format).

Where a document goes depends on its id alone, never on the runner or on arrival order:
  - train or val: a seeded hash of the id against `val_fraction` (the document with the smallest
    hash always goes to val, so a small corpus still gets a validation split);
  - which shard of its split: another seeded hash of the id, modulo the split's shard count, which
    is `num_shards` for train (when given) or else the split's tokens / `shard_tokens`, rounded up;
  - inside a shard, documents are ordered by id.
Shards that end up empty are not written; the others are numbered 0, 1, ... in order of their hash
bucket. Every file is streamed to a temporary name and renamed into place when complete.
"""
from __future__ import annotations

import itertools
import math
import threading
from dataclasses import asdict, dataclass

import apache_beam as beam
import numpy as np

from common.fileio import atomic_create, atomic_write, join, read_bytes
from common.hashing import stable_hash, unit_interval
from common.shard_format import (MANIFEST_NAME, build_manifest, manifest_bytes, manifest_entry, shard_stem,
                                 token_dtype, write_shard)
from pipeline.config import TokenizeConfig
from tokenizer.corpus import parse_document


@dataclass(frozen=True)
class TokenizerIdentity:
    """What the shards record about the tokenizer, checked again on every worker."""
    path: str
    model_sha256: str
    vocab_size: int
    eot_id: int


def split_hash(doc_id: str, seed: int) -> int:
    return stable_hash(f"split\x1f{doc_id}", seed)


def assign_split(doc_id: str, val_fraction: float, seed: int, smallest_hash: int | None = None) -> str:
    """"val" for about `val_fraction` of ids (and for the id whose hash is `smallest_hash`), else "train"."""
    if val_fraction <= 0:
        return "train"
    if unit_interval(f"split\x1f{doc_id}", seed) < val_fraction or split_hash(doc_id, seed) == smallest_hash:
        return "val"
    return "train"


def shard_count(split: str, num_tokens: int, config: TokenizeConfig) -> int:
    if split == "train" and config.num_shards is not None:
        return config.num_shards
    return max(1, math.ceil(num_tokens / config.shard_tokens))


def assign_shard(doc_id: str, num_shards: int, seed: int) -> int:
    return stable_hash(f"shard\x1f{doc_id}", seed) % num_shards


# Tokenizers loaded in this process, by (path, model checksum): Beam runs many DoFn instances per
# process (one per worker thread) and they share one, as SentencePiece's encode keeps no state.
_TOKENIZERS: dict[tuple[str, str], object] = {}
_TOKENIZERS_LOADING = threading.Lock()


def _shared_tokenizer(identity: TokenizerIdentity):
    from tokenizer import Tokenizer, TokenizerError

    key = (identity.path, identity.model_sha256)
    with _TOKENIZERS_LOADING:
        if key not in _TOKENIZERS:
            tokenizer = Tokenizer.load(identity.path, read=read_bytes)
            if tokenizer.model_sha256 != identity.model_sha256:
                raise TokenizerError(f"{identity.path}: the tokenizer changed while the pipeline ran")
            _TOKENIZERS[key] = tokenizer
        return _TOKENIZERS[key]


class _EncodeBatch(beam.DoFn):
    """Encode a batch of (id, text) in one SentencePiece call; each document gets end-of-text appended."""

    def __init__(self, identity: TokenizerIdentity):
        self._identity = identity

    def setup(self):
        self._tokenizer = _shared_tokenizer(self._identity)
        self._dtype = token_dtype(self._identity.vocab_size)

    def process(self, batch):
        ids = [doc_id for doc_id, _ in batch]
        encoded = self._tokenizer.encode_batch([text for _, text in batch])
        eot = self._identity.eot_id
        for doc_id, tokens in zip(ids, encoded):
            tokens.append(eot)
            yield doc_id, np.asarray(tokens, dtype=self._dtype)


def _with_split(doc, smallest_hash: int | None, config: TokenizeConfig):
    return assign_split(doc[0], config.val_fraction, config.seed, smallest_hash), doc


def _keyed_by_shard(item, split_tokens: dict[str, int], config: TokenizeConfig):
    split, (doc_id, tokens) = item
    num_shards = shard_count(split, split_tokens[split], config)
    return (split, assign_shard(doc_id, num_shards, config.seed)), (doc_id, tokens)


def _by_id(docs):
    """(id, tokens) ordered by id. Ids are unique; should two be equal, their tokens order them, so
    the order stays total without copying every document's tokens into a sort key."""
    for _, same_id in itertools.groupby(sorted(docs, key=lambda doc: doc[0]), key=lambda doc: doc[0]):
        group = list(same_id)
        yield from group if len(group) == 1 else sorted(group, key=lambda doc: doc[1].tobytes())


def _write_shard(keyed_docs, shard_keys, directory: str, vocab_size: int):
    (split, bucket), docs = keyed_docs
    number = [key for key in shard_keys if key[0] == split].index((split, bucket))
    stem = shard_stem(split, number)
    with (atomic_create(join(directory, f"{stem}.bin")) as bin_file,
          atomic_create(join(directory, f"{stem}.idx")) as idx_file):
        written = write_shard([tokens for _, tokens in _by_id(docs)], vocab_size, bin_file, idx_file)
    yield manifest_entry(split, number, written)


def _write_manifest(entries, directory: str, identity: TokenizerIdentity, config: TokenizeConfig):
    tokenizer = {"path": identity.path, "model_sha256": identity.model_sha256, "vocab_size": identity.vocab_size}
    # batch_size changes nothing in the output, so it stays out: equal shards give equal manifests.
    settings = {key: value for key, value in asdict(config).items() if key != "batch_size"}
    manifest = build_manifest(entries, identity.vocab_size, identity.eot_id, tokenizer, settings)
    atomic_write(join(directory, MANIFEST_NAME), manifest_bytes(manifest))
    yield manifest


class TokenizeToShards(beam.PTransform):
    """Cleaned JSON lines (strings) in; shards and manifest.json written under `directory`.

    Returns a one-element PCollection holding the manifest that was written.
    """

    def __init__(self, directory: str, identity: TokenizerIdentity, config: TokenizeConfig):
        super().__init__()
        config.validate()
        self._directory, self._identity, self._config = directory, identity, config

    def expand(self, lines):
        config, identity = self._config, self._identity
        docs = (lines
                | "SkipBlank" >> beam.Filter(str.strip)
                | "Parse" >> beam.Map(parse_document, "cleaned document")
                | "IdAndText" >> beam.Map(lambda doc: (str(doc["id"]), doc["text"])))
        smallest_hash = beam.pvalue.AsSingleton(
            docs
            | "SplitHash" >> beam.Map(lambda doc: split_hash(doc[0], config.seed))
            | "Smallest" >> beam.CombineGlobally(min).without_defaults(), default_value=None)
        tokenized = (docs
                     # Fixed-size batches: BatchElements' adaptive sizing stays far below what
                     # SentencePiece's per-call overhead wants.
                     | "Batch" >> beam.BatchElements(min_batch_size=config.batch_size,
                                                     max_batch_size=config.batch_size)
                     | "Encode" >> beam.ParDo(_EncodeBatch(identity))
                     | "AssignSplit" >> beam.Map(_with_split, smallest_hash, config))
        split_tokens = beam.pvalue.AsDict(
            tokenized
            | "TokensOf" >> beam.Map(lambda item: (item[0], len(item[1][1])))
            | "TokensPerSplit" >> beam.CombinePerKey(sum))
        grouped = (tokenized
                   | "AssignShard" >> beam.Map(_keyed_by_shard, split_tokens, config)
                   | "GroupByShard" >> beam.GroupByKey())
        shard_keys = beam.pvalue.AsSingleton(
            grouped | "ShardKeys" >> beam.Keys() | "SortedKeys" >> beam.combiners.ToList()
            | "Sort" >> beam.Map(sorted))
        return (grouped
                | "WriteShard" >> beam.FlatMap(_write_shard, shard_keys, self._directory, identity.vocab_size)
                | "Entries" >> beam.combiners.ToList()
                | "WriteManifest" >> beam.FlatMap(_write_manifest, self._directory, identity, config))
