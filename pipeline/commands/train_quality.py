"""`python -m pipeline train-quality`: train the fastText quality classifier used by the quality stage.

    python -m pipeline train-quality --positive wiki.jsonl.gz --negative crawl.jsonl.gz --output hq.bin

Then score documents with `--set quality.model.model=hq.bin` (and `quality.model.threshold=...`).
Example files are JSONL (`.jsonl`/`.json`, optionally `.gz`/`.zst`/`.bz2`) with a text field, or plain
text with one document per line, on any Beam FileSystems path.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import zlib
from typing import Iterator

from apache_beam.io.filesystems import FileSystems
from tqdm import tqdm

from pipeline.cli import RUN_ERROR, fail
from pipeline.fileio import atomic_write
from pipeline.text.quality_model import NoExamplesError, TrainingOptions, train_classifier
from tokenizer.corpus import InputError, check_complete, is_cleaned_part

PROG = "python -m pipeline train-quality"
_JSONL_SUFFIXES = tuple(f"{ext}{compression}" for ext in (".jsonl", ".json") for compression in ("", ".gz", ".zst", ".bz2"))


class ExamplesError(ValueError):
    """An example file is missing, unreadable or malformed; the message is one line."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Train a fastText classifier that scores document quality from positive and negative examples."
    parser.add_argument("--positive", nargs="+", required=True, metavar="FILE",
                        help="examples of good text: JSONL with a text field, or plain text with one document per line")
    parser.add_argument("--negative", nargs="+", required=True, metavar="FILE", help="examples of bad text, same formats")
    parser.add_argument("--output", required=True, metavar="MODEL.bin", help="where to save the model (local or gs://...)")
    parser.add_argument("--text-field", default="text", help="JSON field holding the text (default: text)")
    parser.add_argument("--max-examples", type=_positive_int, default=None, metavar="N",
                        help="use at most the first N examples of each kind")
    defaults = TrainingOptions()
    parser.add_argument("--epochs", type=_positive_int, default=defaults.epochs, help="passes over the examples (default: %(default)s)")
    parser.add_argument("--lr", type=_positive_float, default=defaults.lr, help="learning rate (default: %(default)s)")
    parser.add_argument("--dim", type=_positive_int, default=defaults.dim, help="embedding size (default: %(default)s)")
    parser.add_argument("--word-ngrams", type=_positive_int, default=defaults.word_ngrams,
                        help="longest word n-gram used as a feature (default: %(default)s)")
    parser.add_argument("--min-count", type=_positive_int, default=defaults.min_count,
                        help="ignore words seen fewer times (default: %(default)s)")
    parser.add_argument("--buckets", type=_positive_int, default=defaults.buckets, help="hash buckets for word n-grams (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="shuffling and initialisation seed (default: %(default)s)")


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value}")
    return number


def read_examples(path: str, text_field: str = "text") -> Iterator[str]:
    """Texts of one example file, in order; blank lines skipped."""
    if not FileSystems.exists(path):
        raise ExamplesError(f"example file not found: {path}")
    if is_cleaned_part(path):
        try:
            check_complete([path])
        except InputError as error:
            raise ExamplesError(str(error)) from None
    is_jsonl = path.endswith(_JSONL_SUFFIXES)
    try:
        with FileSystems.open(path) as f:
            # Beam's decompressing reader is not an io.BufferedIOBase, so lines are read as bytes.
            for number, raw_line in enumerate(iter(f.readline, b""), start=1):
                line = raw_line.decode("utf-8").rstrip("\r\n")
                if line.strip():
                    yield _json_text(line, text_field, f"{path}:{number}") if is_jsonl else line
    except UnicodeDecodeError:
        raise ExamplesError(f"{path} is not UTF-8 text") from None
    except (OSError, EOFError, zlib.error) as error:
        raise ExamplesError(f"cannot read {path}: {error}") from None


def _json_text(line: str, text_field: str, where: str) -> str:
    try:
        text = json.loads(line)[text_field]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ExamplesError(f"{where}: not a JSON object with a {text_field!r} field") from None
    if not isinstance(text, str):
        raise ExamplesError(f"{where}: {text_field!r} is not a string")
    return text


def _examples(paths: list[str], text_field: str, limit: int | None, kind: str) -> list[str]:
    texts = itertools.chain.from_iterable(read_examples(path, text_field) for path in paths)
    return list(tqdm(itertools.islice(texts, limit), desc=f"reading {kind} examples", unit=" docs", leave=False, disable=None))


def save_model(model, output: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "model.bin")
        model.save_model(local)
        with open(local, "rb") as f:
            atomic_write(output, f.read())


def run(args: argparse.Namespace) -> int:
    options = TrainingOptions(epochs=args.epochs, lr=args.lr, dim=args.dim, word_ngrams=args.word_ngrams,
                              min_count=args.min_count, buckets=args.buckets, seed=args.seed)
    try:
        positives = _examples(args.positive, args.text_field, args.max_examples, "positive")
        negatives = _examples(args.negative, args.text_field, args.max_examples, "negative")
        model = train_classifier(positives, negatives, options)
        save_model(model, args.output)
    except (ExamplesError, NoExamplesError, OSError) as error:
        return fail(PROG, str(error), RUN_ERROR)
    except RuntimeError as error:  # fastText diverged, e.g. "Encountered NaN"
        return fail(PROG, f"training failed: {error} (try a lower --lr)", RUN_ERROR)
    print(f"trained quality classifier on {len(positives)} positive and {len(negatives)} negative examples "
          f"({len(model.words)} words in vocabulary) -> {args.output}")
    return 0
