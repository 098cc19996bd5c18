"""`pipeline verify` and `pipeline inspect` on shards written by `pipeline tokenize` from real text."""
import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.commands import inspect as inspect_command
from pipeline.commands import tokenize as tokenize_command
from pipeline.commands import verify as verify_command
from pipeline.stages.tokenize import assign_shard, assign_split, split_hash
from tests.cleaned_corpus import corpus_documents, udhr_documents, write_cleaned
from tokenizer import Tokenizer
from tokenizer.train import TrainConfig, train

VAL_FRACTION, NUM_SHARDS, SEED = 0.05, 2, 0


def call(command, *argv):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    if command is tokenize_command:
        args, beam_args = parser.parse_known_args([str(a) for a in argv])
        return command.run(args, beam_args)
    return command.run(parser.parse_args([str(a) for a in argv]))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    cleaned = write_cleaned(root / "cleaned", corpus_documents())
    train(str(cleaned), str(root / "tok"), TrainConfig(vocab_size=1500, character_coverage=0.99))
    assert call(tokenize_command, "--input", cleaned, "--tokenizer", root / "tok", "--output", root / "shards",
                "--num-shards", NUM_SHARDS, "--val-fraction", VAL_FRACTION, "--seed", SEED) == 0
    return root


@pytest.fixture
def shards(built, tmp_path):
    """A private copy of the shards, free to corrupt."""
    return shutil.copytree(built / "shards", tmp_path / "shards")


@pytest.fixture(scope="module")
def one_big_document(built, tmp_path_factory):
    """Shards holding one document larger than a pipe's buffer (64 KiB on Linux)."""
    root = tmp_path_factory.mktemp("big")
    text = "\n".join(doc["text"] for doc in udhr_documents())
    assert len(text.encode("utf-8")) > 2 * 65536
    cleaned = write_cleaned(root / "cleaned", [{"id": "big", "text": text, "lang": "und", "source": "tests"}], 1)
    assert call(tokenize_command, "--input", cleaned, "--tokenizer", built / "tok", "--output", root / "shards",
                "--num-shards", 1, "--val-fraction", 0) == 0
    return root / "shards"


def expected_order():
    """Documents in manifest order, derived independently from the documented assignment rules."""
    docs = corpus_documents()
    smallest = min(split_hash(d["id"], SEED) for d in docs)
    keyed = []
    for doc in docs:
        split = assign_split(doc["id"], VAL_FRACTION, SEED, smallest)
        shard = assign_shard(doc["id"], NUM_SHARDS, SEED) if split == "train" else 0
        keyed.append(((split != "train", shard, doc["id"]), doc["text"]))
    return [text for _, text in sorted(keyed)]


def one_error_line(capsys):
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_verify_passes_sound_shards(shards, capsys):
    assert call(verify_command, shards) == 0
    assert "verify: OK: 3 shards" in capsys.readouterr().out


def test_verify_names_a_shard_with_a_flipped_byte(shards, capsys):
    path = shards / "train-00001.bin"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    assert call(verify_command, shards) == 1
    assert "train-00001.bin: sha256 does not match" in one_error_line(capsys)


def test_verify_names_a_truncated_shard(shards, capsys):
    path = shards / "val-00000.bin"
    path.write_bytes(path.read_bytes()[:-1])
    assert call(verify_command, shards) == 1
    assert "val-00000.bin: size" in one_error_line(capsys)


def test_verify_names_a_shard_with_the_wrong_index(shards, capsys):
    shutil.copy(shards / "train-00001.idx", shards / "train-00000.idx")
    assert call(verify_command, shards) == 1
    assert "train-00000.idx" in one_error_line(capsys)


def test_verify_without_a_manifest_says_so(tmp_path, capsys):
    assert call(verify_command, tmp_path) == 1
    assert "no manifest" in one_error_line(capsys)


def test_inspect_prints_each_document_in_manifest_order(shards, capsys):
    texts = expected_order()
    assert len(texts) == len(corpus_documents())
    for k, text in enumerate(texts):
        assert call(inspect_command, shards, "--doc", k) == 0
        assert capsys.readouterr().out == text + "\n", k


def test_inspect_token_range_and_ids(built, capsys):
    shards = built / "shards"
    tok = Tokenizer.load(str(built / "tok"))
    first = expected_order()[0]
    length = len(tok.encode(first)) + 1
    assert call(inspect_command, shards, "--tokens", f"0:{length}") == 0
    assert capsys.readouterr().out == first + "\n"
    assert call(inspect_command, shards, "--tokens", f"{length - 2}:{length}", "--ids") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[-1] == f"{tok.eot_id}\t<|endoftext|>"


def test_inspect_errors_are_one_line(built, capsys, tmp_path):
    shards = built / "shards"
    assert call(inspect_command, shards, "--doc", 10_000) == 1
    assert "out of range" in one_error_line(capsys)
    assert call(inspect_command, shards, "--tokens", "9:3") == 2
    assert "START <= END" in one_error_line(capsys)
    assert call(inspect_command, shards, "--doc", -1) == 2
    assert "--doc must be 0 or more" in one_error_line(capsys)
    cleaned = write_cleaned(tmp_path / "other", corpus_documents()[:40])
    train(str(cleaned), str(tmp_path / "other_tok"), TrainConfig(vocab_size=600, character_coverage=0.98))
    assert call(inspect_command, shards, "--doc", 0, "--tokenizer", tmp_path / "other_tok") == 1
    assert "not the tokenizer these shards were made with" in one_error_line(capsys)


def test_inspect_into_a_pipe_its_reader_closes_early_exits_quietly(one_big_document):
    # `head` leaves after 300 bytes while inspect still writes; under pipefail the writer's status
    # decides, so it must end with 0 and nothing on stderr, as in scripts/demo.sh.
    repo = Path(__file__).resolve().parents[1]
    command = f"set -o pipefail; '{sys.executable}' -m pipeline inspect '{one_big_document}' --doc 0 | head -c 300"
    result = subprocess.run(["bash", "-c", command], capture_output=True, cwd=repo,
                            env={**os.environ, "PYTHONPATH": str(repo)})
    assert (result.returncode, result.stderr.decode()) == (0, "")
    assert len(result.stdout) == 300
