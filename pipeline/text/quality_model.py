"""Model-based quality: a fastText classifier trained on good (positive) and bad (negative) examples.

As with GPT-3's quality classifier and FineWeb-Edu's, the score of a document is the probability the
model gives its positive label, in [0, 1]. Training is deterministic: examples are shuffled with a
seeded generator and fastText runs on one thread.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import random
import tempfile
from dataclasses import dataclass
from typing import Iterable, Iterator

import fasttext

from pipeline.text.fasttext_model import ModelLoadError, fasttext_line

POSITIVE = "__label__positive"
NEGATIVE = "__label__negative"


class NoExamplesError(ValueError):
    """Training was asked for without examples of both kinds."""


@dataclass
class TrainingOptions:
    epochs: int = 10
    lr: float = 0.5
    dim: int = 64
    word_ngrams: int = 2
    min_count: int = 1
    # Hash buckets for word n-grams: the model holds buckets x dim floats (fastText's default of
    # 2M buckets makes a 500 MB file; 200k keeps it near 50 MB).
    buckets: int = 200_000
    seed: int = 0


def training_lines(positives: Iterable[str], negatives: Iterable[str], seed: int) -> list[str]:
    """fastText training lines (`__label__X text`), shuffled reproducibly; empty texts left out."""
    lines = [f"{label} {line}" for label, texts in ((POSITIVE, positives), (NEGATIVE, negatives))
             for line in map(fasttext_line, texts) if line]
    random.Random(seed).shuffle(lines)
    return lines


def train_classifier(positives: Iterable[str], negatives: Iterable[str], options: TrainingOptions = TrainingOptions()):
    """Train on the examples; returns the fastText model (save it with `model.save_model(path)`)."""
    lines = training_lines(positives, negatives, options.seed)
    positive_count = sum(line.startswith(POSITIVE + " ") for line in lines)
    if not positive_count or positive_count == len(lines):
        raise NoExamplesError(f"need both positive and negative examples with text; got {positive_count} "
                              f"positive and {len(lines) - positive_count} negative")
    # fastText trains only from a file.
    with tempfile.TemporaryDirectory() as tmp:
        train_file = os.path.join(tmp, "train.txt")
        with open(train_file, "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
        with _zero_filled_allocations():
            return fasttext.train_supervised(
                input=train_file, epoch=options.epochs, lr=options.lr, dim=options.dim,
                wordNgrams=options.word_ngrams, minCount=options.min_count, bucket=options.buckets,
                seed=options.seed, thread=1, verbose=0,
            )


# glibc's mallopt option that fills every new allocation with (value ^ 0xff); 255 gives zeros.
_M_PERTURB = -6


@contextlib.contextmanager
def _zero_filled_allocations() -> Iterator[None]:
    """Make malloc return zeroed memory while fastText trains.

    The fasttext-numpy2 build reads memory it never initialised while training: with reused heap
    memory the same seed and data give different models, or fail with "Encountered NaN" (reproduced
    by running training under MALLOC_PERTURB_=1, which fails every time). Zero-filled allocations
    make training succeed and reproducible. Where glibc's mallopt is missing this does nothing.
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        yield
        return
    mallopt(_M_PERTURB, 255)
    try:
        yield
    finally:
        mallopt(_M_PERTURB, 0)


def positive_probability(model, text: str) -> float:
    """Probability in [0, 1] that the classifier gives `text` the positive label."""
    labels, scores = model.predict(fasttext_line(text), k=-1)
    probability = dict(zip(labels, scores)).get(POSITIVE, 0.0)
    return round(min(max(float(probability), 0.0), 1.0), 4)


def check_classifier(model, path: str) -> None:
    """Raise if the model at `path` was not trained by `train_classifier` (it lacks the positive label)."""
    if POSITIVE not in model.get_labels():
        raise ModelLoadError(f"{path} is not a quality classifier (no {POSITIVE} label); "
                             f"train one with `python -m pipeline train-quality`")
