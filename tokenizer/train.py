"""Train the SentencePiece tokenizer on a deterministic, language-balanced sample of cleaned/.

The corpus is streamed twice and never held in memory:
  1. count, per language, the bytes and lines of the documents that are not held out;
  2. keep, per language, the lines with the smallest seeded hash until that language's share of the
     budget is full (a bottom-k sample: exact size, independent of file order, every shard alike),
     and a bounded set of held-out documents per language to measure compression afterwards.
A language's share of the budget grows with its size to the power `language_alpha` (< 1 lifts small
languages), and a language never gets more than it has; the rest goes to the others.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import heapq
import io
import json
from dataclasses import dataclass, field
from typing import Iterable

import sentencepiece as spm
from tqdm import tqdm

from common.cli import first_line
from common.fileio import atomic_write, join
from common.hashing import stable_hash, unit_interval
from tokenizer.corpus import cleaned_files, iter_documents
from tokenizer.model import EOT_TOKEN, META_FILE, META_FORMAT, META_VERSION, MODEL_FILE, Tokenizer

MODEL_TYPES = ("bpe", "unigram")
UNKNOWN_LANGUAGE = "und"
BYTE_PIECES = 256
MIN_CHARACTER_COVERAGE = 0.98  # SentencePiece refuses anything lower


class TrainError(ValueError):
    """Training cannot proceed with these settings or this input; the message is one line."""


@dataclass
class TrainConfig:
    vocab_size: int = 32000
    model_type: str = "bpe"
    max_sentences: int = 5_000_000       # lines handed to SentencePiece, at most
    max_bytes: int = 500_000_000         # and their UTF-8 bytes, at most
    seed: int = 0
    user_defined_symbols: list[str] = field(default_factory=list)
    character_coverage: float = 0.9995   # rarer characters fall back to byte tokens
    language_alpha: float = 0.5          # a language's budget share grows as bytes ** alpha
    heldout_fraction: float = 0.02       # documents kept out of training to measure compression
    max_heldout_bytes_per_language: int = 2_000_000
    max_sentence_bytes: int = 8192       # longer lines are cut into pieces of at most this size
    num_threads: int = 2

    def validate(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise TrainError(f"--model-type must be one of {', '.join(MODEL_TYPES)}, got {self.model_type!r}")
        smallest = BYTE_PIECES + 2 + len(self.user_defined_symbols) + 1
        if self.vocab_size < smallest:
            raise TrainError(f"--vocab-size {self.vocab_size} is too small: the 256 byte tokens, <unk>, "
                             f"{EOT_TOKEN} and the user-defined symbols alone need {smallest - 1}")
        for name in ("max_sentences", "max_bytes", "max_sentence_bytes", "num_threads"):
            if getattr(self, name) <= 0:
                raise TrainError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if not 0 <= self.heldout_fraction < 1:
            raise TrainError(f"--heldout-fraction must be in [0, 1), got {self.heldout_fraction}")
        if not MIN_CHARACTER_COVERAGE <= self.character_coverage <= 1:
            raise TrainError(f"--character-coverage must be in [{MIN_CHARACTER_COVERAGE}, 1], "
                             f"got {self.character_coverage}")
        if EOT_TOKEN in self.user_defined_symbols or any(not s for s in self.user_defined_symbols):
            raise TrainError(f"user-defined symbols must be non-empty and must not repeat {EOT_TOKEN}")


def is_heldout(doc_id: str, seed: int, fraction: float) -> bool:
    return unit_interval(f"heldout\x1f{doc_id}", seed) < fraction


def split_sentences(text: str, max_bytes: int) -> list[str]:
    """Non-empty lines of `text`, each cut at character boundaries into pieces of at most `max_bytes`."""
    sentences = []
    for line in text.split("\n"):
        while line:
            encoded = line.encode("utf-8")
            if len(encoded) <= max_bytes:
                sentences.append(line)
                break
            # errors="ignore" drops a character cut in two; a character longer than max_bytes goes alone
            head = encoded[:max_bytes].decode("utf-8", errors="ignore") or line[0]
            sentences.append(head)
            line = line[len(head):]
    return sentences


def allocate_budget(available: dict[str, int], budget: int, alpha: float) -> dict[str, int]:
    """Split `budget` across languages in proportion to available ** alpha, never above what each has."""
    shares = {lang: 0 for lang in available}
    open_langs = sorted(lang for lang, amount in available.items() if amount > 0)
    remaining = budget
    while open_langs and remaining > 0:
        weights = {lang: available[lang] ** alpha for lang in open_langs}
        total = sum(weights.values())
        capped = [lang for lang in open_langs if remaining * weights[lang] / total >= available[lang]]
        if not capped:
            for lang in open_langs:
                shares[lang] = int(remaining * weights[lang] / total)
            break
        for lang in capped:
            shares[lang] = available[lang]
            remaining -= available[lang]
            open_langs.remove(lang)
    return shares


class BottomKSample:
    """The items with the smallest priorities whose total size and count stay within limits."""

    def __init__(self, max_size: int, max_count: int):
        self.max_size, self.max_count = max_size, max_count
        self.size = 0
        self._heap: list[tuple[int, str, int, object]] = []  # (-priority, tiebreak, size, item)

    def add(self, priority: int, tiebreak: str, size: int, item: object) -> None:
        if self.max_count <= 0 or size > self.max_size:
            return
        heapq.heappush(self._heap, (-priority, tiebreak, size, item))
        self.size += size
        while self.size > self.max_size or len(self._heap) > self.max_count:
            self.size -= heapq.heappop(self._heap)[2]

    def items(self) -> list:
        """Items in priority order (smallest first): deterministic, and languages come interleaved."""
        return [entry[3] for entry in sorted(self._heap, key=lambda e: (-e[0], e[1]))]

    def entries(self) -> list[tuple[int, str, object]]:
        return [(-e[0], e[1], e[3]) for e in self._heap]


@dataclass
class TrainingSample:
    sentences: list[str]
    heldout: dict[str, list[str]]                     # language -> held-out document texts
    stats: dict[str, dict[str, int]]                  # language -> counts, for the metadata


def _language(doc: dict) -> str:
    return str(doc.get("lang") or UNKNOWN_LANGUAGE)


def collect_sample(files: list[str], config: TrainConfig) -> TrainingSample:
    available_bytes: dict[str, int] = {}
    available_lines: dict[str, int] = {}
    for path in tqdm(files, desc="tokenizer: counting", unit="file", leave=False, disable=None):
        for doc in iter_documents(path):
            if is_heldout(str(doc["id"]), config.seed, config.heldout_fraction):
                continue
            lang = _language(doc)
            sentences = split_sentences(doc["text"], config.max_sentence_bytes)
            available_bytes[lang] = available_bytes.get(lang, 0) + sum(len(s.encode("utf-8")) for s in sentences)
            available_lines[lang] = available_lines.get(lang, 0) + len(sentences)
    if not available_lines or not any(available_lines.values()):
        raise TrainError("the input holds no text to train on (every document is empty or held out)")
    byte_budget = allocate_budget(available_bytes, config.max_bytes, config.language_alpha)
    line_budget = allocate_budget(available_lines, config.max_sentences, config.language_alpha)
    train_samples = {lang: BottomKSample(byte_budget[lang], line_budget[lang]) for lang in available_bytes}
    heldout_samples: dict[str, BottomKSample] = {}
    for path in tqdm(files, desc="tokenizer: sampling", unit="file", leave=False, disable=None):
        for doc in iter_documents(path):
            doc_id, lang = str(doc["id"]), _language(doc)
            if is_heldout(doc_id, config.seed, config.heldout_fraction):
                sample = heldout_samples.setdefault(
                    lang, BottomKSample(config.max_heldout_bytes_per_language, 1 << 62))
                sample.add(stable_hash(f"eval\x1f{doc_id}", config.seed), doc_id,
                           len(doc["text"].encode("utf-8")), doc["text"])
                continue
            for k, sentence in enumerate(split_sentences(doc["text"], config.max_sentence_bytes)):
                key = f"{doc_id}\x1f{k}"
                train_samples[lang].add(stable_hash(f"train\x1f{key}", config.seed), key,
                                        len(sentence.encode("utf-8")), sentence)
    merged = sorted(entry for sample in train_samples.values() for entry in sample.entries())
    stats = {lang: {"available_bytes": available_bytes[lang], "available_sentences": available_lines[lang],
                    "sampled_bytes": train_samples[lang].size,
                    "sampled_sentences": len(train_samples[lang].entries())}
             for lang in sorted(available_bytes)}
    return TrainingSample(sentences=[entry[2] for entry in merged],
                          heldout={lang: heldout_samples[lang].items() for lang in sorted(heldout_samples)},
                          stats=stats)


def fit_character_coverage(sentences: list[str], config: TrainConfig) -> float:
    """The requested character coverage, lowered (down to SentencePiece's minimum, 0.98) if the
    characters it needs would not leave half the vocabulary to merged pieces (byte fallback still
    encodes every character left out).

    SentencePiece keeps the most frequent characters until their share of all characters reaches
    the coverage; with many scripts (CJK) and a small vocabulary that alone can exceed vocab_size.
    """
    counts = collections.Counter()
    for sentence in sentences:
        counts.update(sentence)
    frequencies = sorted(counts.values(), reverse=True)
    total = sum(frequencies)
    limit = max(1, (config.vocab_size - BYTE_PIECES - 2 - len(config.user_defined_symbols)) // 2)
    if len(frequencies) <= limit or total == 0:
        return config.character_coverage
    covered_by_limit = sum(frequencies[:limit - 1]) / total  # keeps SentencePiece at or under `limit` characters
    return min(config.character_coverage, max(covered_by_limit, MIN_CHARACTER_COVERAGE))


def sentencepiece_options(config: TrainConfig, character_coverage: float | None = None) -> dict:
    """Trainer options: lossless (identity normalization, whitespace kept, byte fallback), digits split."""
    return dict(
        vocab_size=config.vocab_size, model_type=config.model_type,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
        byte_fallback=True, split_digits=True, allow_whitespace_only_pieces=True,
        character_coverage=config.character_coverage if character_coverage is None else character_coverage,
        unk_id=0, eos_id=1, eos_piece=EOT_TOKEN, bos_id=-1, pad_id=-1,
        user_defined_symbols=list(config.user_defined_symbols),
        max_sentence_length=config.max_sentence_bytes, input_sentence_size=0, shuffle_input_sentence=False,
        num_threads=config.num_threads, minloglevel=2,
    )


def train_sentencepiece(sentences: Iterable[str], options: dict, seed: int) -> bytes:
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, **options)
    except RuntimeError as e:  # "INTERNAL: file.cc(123) [check] message": keep the message, else the check
        first = first_line(e)
        message = first.split("] ", 1)[-1].strip() or first.split(": ", 1)[-1]
        raise TrainError(f"SentencePiece could not train: {message}") from None
    return model.getvalue()


def measure_compression(tokenizer: Tokenizer, heldout: dict[str, list[str]]) -> dict[str, dict]:
    """Bytes per token of held-out documents, per language and over all of them."""
    report: dict[str, dict] = {}
    total_bytes = total_tokens = total_docs = 0
    for lang, texts in heldout.items():
        num_bytes = sum(len(t.encode("utf-8")) for t in texts)
        num_tokens = sum(len(ids) for ids in tokenizer.encode_batch(texts))
        report[lang] = {"docs": len(texts), "bytes": num_bytes, "tokens": num_tokens,
                        "bytes_per_token": round(num_bytes / num_tokens, 4) if num_tokens else None}
        total_bytes, total_tokens, total_docs = total_bytes + num_bytes, total_tokens + num_tokens, total_docs + len(texts)
    report["all"] = {"docs": total_docs, "bytes": total_bytes, "tokens": total_tokens,
                     "bytes_per_token": round(total_bytes / total_tokens, 4) if total_tokens else None}
    return report


def build_meta(model_bytes: bytes, config: TrainConfig, options: dict, input_path: str,
               sample: TrainingSample) -> dict:
    processor = spm.SentencePieceProcessor(model_proto=model_bytes)
    user_defined = {s: processor.piece_to_id(s) for s in config.user_defined_symbols}
    return {
        "format": META_FORMAT, "format_version": META_VERSION,
        "model_file": MODEL_FILE, "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "model_type": config.model_type, "vocab_size": processor.get_piece_size(),
        "eot_token": EOT_TOKEN, "eot_id": processor.piece_to_id(EOT_TOKEN),
        "unk_token": processor.id_to_piece(processor.unk_id()), "unk_id": processor.unk_id(),
        "special_tokens": {EOT_TOKEN: processor.piece_to_id(EOT_TOKEN),
                           processor.id_to_piece(processor.unk_id()): processor.unk_id(), **user_defined},
        "user_defined_symbols": user_defined,
        "byte_tokens": {"first_id": processor.piece_to_id("<0x00>"), "count": BYTE_PIECES},
        "normalization": {"rule": "identity", "add_dummy_prefix": False, "remove_extra_whitespaces": False,
                          "byte_fallback": True, "split_digits": True,
                          "literal_u2581": "encoded as byte tokens so that decoding restores it"},
        "training": {"input": str(input_path), **dataclasses.asdict(config),
                     "sentencepiece_options": options,
                     "sampled_sentences": len(sample.sentences),
                     "sampled_bytes": sum(len(s.encode("utf-8")) for s in sample.sentences),
                     "languages": sample.stats},
    }


def train(input_path: str, output_dir: str, config: TrainConfig) -> dict:
    """Train, measure held-out compression, and write TOK/tokenizer.model and TOK/tokenizer_meta.json."""
    config.validate()
    sample = collect_sample(cleaned_files(input_path), config)
    options = sentencepiece_options(config, fit_character_coverage(sample.sentences, config))
    model_bytes = train_sentencepiece(sample.sentences, options, config.seed)
    meta = build_meta(model_bytes, config, options, input_path, sample)
    meta["compression"] = measure_compression(Tokenizer(model_bytes, meta), sample.heldout)
    atomic_write(join(str(output_dir), MODEL_FILE), model_bytes)
    atomic_write(join(str(output_dir), META_FILE),
                     (json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))
    return meta
