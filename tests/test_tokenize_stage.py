"""`pipeline tokenize`: the Beam stage (FnApiRunner) on a real multilingual cleaned/ directory."""
import json
import re

import numpy as np
import pytest

from common.cli import OneLineParser
from common.shard_format import MANIFEST_NAME, Shard, open_shards, verify_shard_dir
from pipeline.commands import tokenize as tokenize_command
from pipeline.config import TokenizeConfig
from pipeline.stages.tokenize import TokenizerIdentity, _write_shard, assign_shard, assign_split, shard_count
from tests.cleaned_corpus import corpus_documents, write_cleaned
from tokenizer import Tokenizer
from tokenizer.train import TrainConfig, train


def run_tokenize(*argv):
    parser = OneLineParser(prog="pipeline tokenize")
    tokenize_command.add_arguments(parser)
    args, beam_args = parser.parse_known_args([str(a) for a in argv])
    return tokenize_command.run(args, beam_args)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage")
    cleaned = write_cleaned(root / "cleaned", corpus_documents(), num_files=3)
    train(str(cleaned), str(root / "tok"), TrainConfig(vocab_size=1500, character_coverage=0.99))
    return root


@pytest.fixture(scope="module")
def shards(corpus):
    assert run_tokenize("--input", corpus / "cleaned", "--tokenizer", corpus / "tok", "--output", corpus / "a",
                        "--num-shards", "3", "--val-fraction", "0.05", "--batch-size", "16") == 0
    return corpus / "a"


def test_split_and_shard_assignment_depend_on_the_id_alone():
    ids = [f"doc-{i}" for i in range(4000)]
    splits = [assign_split(i, 0.1, seed=0) for i in ids]
    assert 300 < splits.count("val") < 500
    assert splits == [assign_split(i, 0.1, seed=0) for i in ids]
    assert splits != [assign_split(i, 0.1, seed=1) for i in ids]
    assert all(assign_split(i, 0.0, seed=0) == "train" for i in ids[:100])
    assert {assign_shard(i, 4, seed=0) for i in ids} == {0, 1, 2, 3}
    config = TokenizeConfig(num_shards=8, shard_tokens=1000)
    assert shard_count("train", 10**9, config) == 8 and shard_count("val", 2500, config) == 3
    assert shard_count("val", 0, config) == 1


def test_every_document_decodes_back_to_its_cleaned_text(corpus, shards):
    docs = {d["id"]: d["text"] for d in corpus_documents()}
    tok = Tokenizer.load(str(corpus / "tok"))
    manifest = verify_shard_dir(shards)
    decoded = []
    for split in ("train", "val"):
        for shard in open_shards(shards, split):
            for k in range(shard.num_docs):
                tokens = shard.document(k)
                assert tokens[-1] == tok.eot_id and tok.eot_id not in tokens[:-1]
                decoded.append(tok.decode(tokens))
    assert sorted(decoded) == sorted(docs.values())
    assert manifest["splits"]["val"]["num_docs"] > 0 and manifest["splits"]["train"]["shards"] == 3
    assert sum(e["num_docs"] for e in manifest["shards"]) == len(docs)


def test_a_shard_does_not_depend_on_arrival_order_even_when_ids_repeat(tmp_path):
    docs = [("b", np.array([5, 1], np.uint16)), ("a", np.array([9, 1], np.uint16)), ("a", np.array([7, 7, 1], np.uint16))]
    for name, order in (("forward", docs), ("backward", docs[::-1])):
        [entry] = _write_shard((("train", 0), order), [("train", 0)], str(tmp_path / name), 10)
        assert entry["num_docs"] == 3 and entry["num_tokens"] == 7
    shards = [Shard(tmp_path / name / "train-00000.bin") for name in ("forward", "backward")]
    assert [shards[0].document(k).tolist() for k in range(3)] == [[7, 7, 1], [9, 1], [5, 1]]
    assert all((tmp_path / "forward" / f).read_bytes() == (tmp_path / "backward" / f).read_bytes()
               for f in ("train-00000.bin", "train-00000.idx"))


def test_documents_are_ordered_by_id_within_a_shard(corpus, shards):
    tok = Tokenizer.load(str(corpus / "tok"))
    by_text = {d["text"]: d["id"] for d in corpus_documents()}
    for shard in open_shards(shards, "train"):
        ids = [by_text[tok.decode(shard.document(k))] for k in range(shard.num_docs)]
        assert ids == sorted(ids)


def test_manifest_names_the_tokenizer_and_dtype(corpus, shards):
    manifest = json.loads((shards / MANIFEST_NAME).read_text())
    tok = Tokenizer.load(str(corpus / "tok"))
    assert manifest["tokenizer"] == {"path": str(corpus / "tok"), "model_sha256": tok.model_sha256,
                                     "vocab_size": 1500}
    assert manifest["dtype"] == "uint16" and manifest["eot_id"] == tok.eot_id
    first = manifest["shards"][0]
    assert Shard(shards / first["file"]).header.num_tokens == first["num_tokens"]
    assert not list(shards.glob(".*tmp*"))


def test_same_input_gives_byte_identical_output_on_another_runner_and_stale_shards_go(corpus, shards):
    out = corpus / "b"
    out.mkdir()
    (out / "train-00007.bin").write_bytes(b"left over from an earlier run")
    assert run_tokenize("--input", corpus / "cleaned", "--tokenizer", corpus / "tok", "--output", out,
                        "--num-shards", "3", "--val-fraction", "0.05", "--batch-size", "7",
                        "--runner=DirectRunner") == 0
    names = sorted(p.name for p in shards.iterdir())
    assert names == sorted(p.name for p in out.iterdir())
    for name in names:
        assert (shards / name).read_bytes() == (out / name).read_bytes(), name


def test_shard_size_in_tokens_sets_the_shard_count(corpus, shards):
    out = corpus / "sized"
    assert run_tokenize("--input", corpus / "cleaned", "--tokenizer", corpus / "tok", "--output", out,
                        "--shard-tokens", "20000", "--val-fraction", "0") == 0
    manifest = verify_shard_dir(out)
    earlier = json.loads((shards / MANIFEST_NAME).read_text())["splits"]
    tokens = manifest["splits"]["train"]["num_tokens"]
    assert "val" not in manifest["splits"]
    assert tokens == earlier["train"]["num_tokens"] + earlier["val"]["num_tokens"]
    assert 1 < manifest["splits"]["train"]["shards"] <= -(-tokens // 20000)


def test_a_local_run_away_from_a_terminal_prints_documents_read_so_far(corpus, shards, capsys):
    tokenizer = Tokenizer.load(str(corpus / "tok"))
    identity = TokenizerIdentity(str(corpus / "tok"), tokenizer.model_sha256, tokenizer.vocab_size, tokenizer.eot_id)
    manifest = tokenize_command.tokenize(str(corpus / "cleaned"), str(corpus / "progress"), identity,
                                         TokenizeConfig(num_shards=3, val_fraction=0.05), [], progress_seconds=0.2)
    lines = capsys.readouterr().err.splitlines()
    matches = [re.fullmatch(r"pipeline tokenize: \d+s: [\d,.]+ docs/s; docs read ([\d,]+)", line) for line in lines]
    assert lines and all(matches), lines
    read = [int(m.group(1).replace(",", "")) for m in matches]
    assert read == sorted(read) and read[-1] <= sum(s["num_docs"] for s in manifest["splits"].values())


@pytest.mark.parametrize("change, needle", [
    ({"--input": "nowhere"}, "argument --input: "),
    ({"--input": "empty"}, "no input files match"),
    ({"--tokenizer": "nowhere"}, "argument --tokenizer: "),
    ({"--tokenizer": "empty"}, "cannot read"),
    ({"--num-shards": "0"}, "--num-shards"),
    ({"--runnr": "DirectRunner"}, "runnr"),
])
def test_usage_errors_exit_2_with_one_line(corpus, capsys, change, needle):
    (corpus / "empty").mkdir(exist_ok=True)
    options = {"--input": "cleaned", "--tokenizer": "tok", "--output": "err", **change}
    argv = [f"{key}={corpus / value if key in ('--input', '--tokenizer', '--output') else value}"
            for key, value in options.items()]
    try:
        assert run_tokenize(*argv) == 2
    except SystemExit as stop:  # rejected by the parser
        assert stop.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (corpus / "err").exists()
