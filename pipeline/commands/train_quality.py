"""`python -m pipeline train-quality`: train the fastText quality classifier used by the quality stage.

    python -m pipeline train-quality --positive wiki.jsonl.gz --negative crawl.jsonl.gz --output hq.bin

Then score documents with `--set quality.model.model=hq.bin` (and `quality.model.threshold=...`).
Example files are JSONL (`.jsonl`/`.json`, optionally `.gz`/`.zst`/`.bz2`) with a text field, or plain
text with one document per line, on any Beam FileSystems path. A folder stands for its part-*.jsonl.gz
files, so the output of a clean run serves as is: `--positive OUT/cleaned --negative OUT/rejected`.
A JSONL record without text but with `html` (a page rejected/ kept because extraction dropped it) gives
the page's visible text; in a folder, records with neither (read errors, failed downloads) are skipped.
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

from common.cli import RUN_ERROR, existing_path, fail, first_line
from common.fileio import SHARD_GLOB, atomic_write, join
from pipeline.config import ExtractConfig
from pipeline.text.extract import extract_text
from pipeline.text.normalize import normalize_text
from pipeline.text.quality_model import NoExamplesError, TrainingOptions, train_classifier
from tokenizer.corpus import InputError, check_complete, is_cleaned_part

PROG = "pipeline train-quality"
_JSONL_SUFFIXES = tuple(f"{ext}{compression}" for ext in (".jsonl", ".json") for compression in ("", ".gz", ".zst", ".bz2"))
# Pages in rejected/ with HTML only are those the main-content extractor found nothing in: what they
# teach is their visible text as a whole (menus, banners, boilerplate), so all of it is extracted.
_VISIBLE_TEXT = ExtractConfig(extractor="resiliparse", main_content=False, strip_boilerplate=False)


class ExamplesError(ValueError):
    """An example file is missing, unreadable or malformed; the message is one line."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Train a fastText classifier that scores document quality from positive and negative examples."
    parser.add_argument("--positive", nargs="+", required=True, metavar="FILE", type=existing_path,
                        help="examples of good text: JSONL with a text field, plain text with one document per line, "
                             "or a folder of part-*.jsonl.gz files such as OUT/cleaned of a clean run")
    parser.add_argument("--negative", nargs="+", required=True, metavar="FILE", type=existing_path,
                        help="examples of bad text, same formats (e.g. OUT/rejected of a clean run)")
    parser.add_argument("--output", required=True, metavar="MODEL.bin", help="where to save the model (local or gs://...)")
    parser.add_argument("--text-field", default="text", help="JSON field holding the text (default: text)")
    parser.add_argument("--max-examples", type=_positive_int, default=None, metavar="N",
                        help="use at most the first N examples of each kind (default: all)")
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
    """Texts of one example file, or of the part files of a folder, in order; blank lines skipped."""
    if FileSystems.exists(path) and not os.path.isdir(path):
        _require_complete([path])
        yield from _file_examples(path, text_field, skip_textless=False)
        return
    try:
        parts = sorted(metadata.path for metadata in FileSystems.match([join(path, SHARD_GLOB)])[0].metadata_list)
    except Exception as error:  # Beam raises BeamIOError, or ValueError for an unknown scheme
        raise ExamplesError(f"cannot list {path}: {first_line(error)}") from None
    if not parts:
        raise ExamplesError(f"folder {path} holds no {SHARD_GLOB} files" if os.path.isdir(path)
                            else f"example file not found: {path}")
    _require_complete(parts)
    for part in parts:
        yield from _file_examples(part, text_field, skip_textless=True)


def _require_complete(paths: list[str]) -> None:
    """Refuse the cleaned/ part files of a `pipeline clean` run that did not finish."""
    try:
        check_complete([path for path in paths if is_cleaned_part(path)])
    except InputError as error:
        raise ExamplesError(str(error)) from None


def _file_examples(path: str, text_field: str, skip_textless: bool) -> Iterator[str]:
    is_jsonl = path.endswith(_JSONL_SUFFIXES)
    try:
        with FileSystems.open(path) as f:
            # Beam's decompressing reader is not an io.BufferedIOBase, so lines are read as bytes.
            for number, raw_line in enumerate(iter(f.readline, b""), start=1):
                line = raw_line.decode("utf-8").rstrip("\r\n")
                if not line.strip():
                    continue
                text = _json_text(line, text_field, f"{path}:{number}", skip_textless) if is_jsonl else line
                if text is not None:
                    yield text
    except UnicodeDecodeError:
        raise ExamplesError(f"{path} is not UTF-8 text") from None
    except (OSError, EOFError, zlib.error) as error:
        raise ExamplesError(f"cannot read {path}: {error}") from None


def _json_text(line: str, text_field: str, where: str, skip_textless: bool) -> str | None:
    """The record's text, else the text of its `html`; None for a record with neither when `skip_textless`."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        raise ExamplesError(f"{where}: not a JSON object with a {text_field!r} field")
    text = record.get(text_field)
    if text is None and isinstance(record.get("html"), str):
        return normalize_text(extract_text(record["html"], _VISIBLE_TEXT))
    if text is None:
        if skip_textless:
            return None
        raise ExamplesError(f"{where}: not a JSON object with a {text_field!r} field")
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
