"""Errors a user can cause end as one line on stderr: exit 2 for bad arguments, 1 for failed work."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cleaned_corpus import corpus_documents, write_cleaned
from tokenizer.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data/sample/jsonl/dolma-cc_en_head-0091.jsonl.gz"


def run(*args):
    return subprocess.run([sys.executable, "-m", *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def assert_one_line(result, code, fragment):
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and fragment in lines[0], lines


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    write_cleaned(root / "cleaned", corpus_documents())
    train(str(root / "cleaned"), str(root / "tok"), TrainConfig(vocab_size=1500, character_coverage=0.99))
    (root / "a-file").write_text("not a directory\n")
    (root / "latin1.toml").write_bytes("[read]\ntext_field = 'Müller'\n".encode("latin-1"))
    return root


def broken_tokenizer(work, tmp_path, model=None, meta=None):
    broken = Path(shutil.copytree(work / "tok", tmp_path / "tok"))
    if model is not None:
        (broken / "tokenizer.model").write_bytes(model)
        meta_dict = json.loads((broken / "tokenizer_meta.json").read_text())
        meta_dict["model_sha256"] = hashlib.sha256(model).hexdigest()  # consistent, so the bytes themselves are tried
        (broken / "tokenizer_meta.json").write_text(json.dumps(meta_dict))
    if meta is not None:
        (broken / "tokenizer_meta.json").write_bytes(meta)
    return broken


@pytest.mark.parametrize("extra, fragment", [
    (["--config", "{root}"], "is a directory"),
    (["--config", "{root}/latin1.toml"], "not UTF-8"),
    (["--set", "read.chunk_bytes=0"], "read.chunk_bytes must be at least 1"),
    (["--set", "stages=bogus"], "unknown stage 'bogus'"),
    (["--output", "{root}/a-file"], "is a file, not a directory"),
])
def test_clean_bad_arguments(work, extra, fragment):
    output = [] if "--output" in extra else ["--output", work / "out"]
    args = [a.format(root=work) for a in extra]
    assert_one_line(run("pipeline", "clean", "--input", SAMPLE, *output, *args), 2, fragment)


def test_clean_failing_in_the_pipeline_reports_one_line_without_beams_logged_traceback(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "cleaned").write_text("a file where clean writes a directory\n")
    assert_one_line(run("pipeline", "clean", "--input", SAMPLE, "--output", out, "--stages", "quality"), 1,
                    "File exists")


@pytest.mark.parametrize("extra, fragment", [
    (["--vocab-size", "0"], "--vocab-size 0 is too small"),
    (["--vocab-size", "1500", "--num-threads", "0"], "--num-threads must be positive"),
    (["--vocab-size", "1500", "--heldout-fraction", "1"], "--heldout-fraction must be in [0, 1)"),
    (["--vocab-size", "1500", "--output", "{root}/a-file"], "is a file, not a directory"),
])
def test_tokenizer_train_bad_arguments(work, extra, fragment):
    output = [] if "--output" in extra else ["--output", work / "tok-new"]
    args = [a.format(root=work) for a in extra]
    assert_one_line(run("tokenizer", "train", "--input", work / "cleaned", *output, *args), 2, fragment)


def test_tokenizer_export_to_a_file(work):
    assert_one_line(run("tokenizer", "export-hf", work / "tok", "--output", work / "a-file"), 2,
                    "is a file, not a directory")


@pytest.mark.parametrize("model, meta, fragment", [
    (b"garbage, not a SentencePiece model", None, "not a SentencePiece model"),
    (None, b"[1, 2, 3]", "not a tokenizer written by"),
    (None, b'{"format": "\xff"}', "not UTF-8"),
])
def test_a_broken_tokenizer_directory_is_one_line_for_every_reader(work, tmp_path, model, meta, fragment):
    broken = broken_tokenizer(work, tmp_path, model, meta)
    assert_one_line(run("tokenizer", "export-hf", broken, "--output", tmp_path / "hf"), 1, fragment)
    assert_one_line(run("pipeline", "tokenize", "--input", work / "cleaned", "--tokenizer", broken,
                        "--output", tmp_path / "shards"), 2, fragment)


def test_tokenize_to_a_file(work):
    assert_one_line(run("pipeline", "tokenize", "--input", work / "cleaned", "--tokenizer", work / "tok",
                        "--output", work / "a-file"), 2, "is a file, not a directory")


@pytest.mark.parametrize("content, problem", [
    (b"not gzip at all", ":1: not valid JSON"),    # compression follows the bytes, not the name
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xffcorrupt deflate", ": cannot read (corrupt gzip data"),
])
def test_tokenizer_train_on_a_corrupt_part_file_is_one_line(work, tmp_path, content, problem):
    broken = Path(shutil.copytree(work / "cleaned", tmp_path / "cleaned"))
    part = sorted(broken.glob("part-*.jsonl.gz"))[0]
    part.write_bytes(content)
    assert_one_line(run("tokenizer", "train", "--input", broken, "--output", tmp_path / "tok", "--vocab-size", "1500"),
                    1, f"{part}{problem}")
