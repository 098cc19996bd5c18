"""finetune-cls, classify, finetune-sft and their LoRA adapters, from a tiny pretrained run on real text.

Data: slices of data/finetune/ (sentence_polarity.jsonl, instruction-data.json)."""
import json
import math
from pathlib import Path

import pytest
import torch

from model.gpt import GPT, GPTConfig, load_safetensors, save_safetensors
from tests.train_shards import write_tokenized_shards
from train.__main__ import main
from train.config import TrainConfig
from train.finetune import FinetuneError, file_sha256, load_adapters, weights_file_of
from train.finetune_sft import format_prompt
from train.loop import train
from train.sample import load_model

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["--max_steps", "6", "--batch_size", "8", "--log_interval", "1", "--eval_interval", "3", "--warmup_steps", "2",
        "--device", "cpu"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A run of `train` (tiny preset, 128-token context) on real text with a real SentencePiece tokenizer."""
    directory = tmp_path_factory.mktemp("base")
    shards = write_tokenized_shards(directory)
    config = TrainConfig(preset="tiny", block_size=128, batch_size=4, max_steps=4, eval_interval=0, ckpt_interval=0,
                         sample_interval=0, device="cpu")
    train(config, shards, directory / "run")
    return directory / "run"


@pytest.fixture(scope="module")
def polarity(tmp_path_factory):
    """60 negative and 60 positive sentences, and a 10-line test file of each."""
    lines = (ROOT / "data/finetune/sentence_polarity.jsonl").read_text(encoding="utf-8").splitlines()
    directory = tmp_path_factory.mktemp("polarity")
    (directory / "train.jsonl").write_text("\n".join(lines[:60] + lines[-60:]) + "\n", encoding="utf-8")
    (directory / "test.jsonl").write_text("\n".join(lines[100:105] + lines[-105:-100]) + "\n", encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def instructions(tmp_path_factory):
    pairs = json.loads((ROOT / "data/finetune/instruction-data.json").read_text(encoding="utf-8"))
    path = tmp_path_factory.mktemp("sft") / "pairs.json"
    path.write_text(json.dumps(pairs[:40]), encoding="utf-8")
    return path


def run(*args) -> int:
    return main([str(a) for a in args])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_classification_writes_eval_metrics_and_classifies(base, polarity, tmp_path, capsys):
    out = tmp_path / "cls"
    assert run("finetune-cls", "--checkpoint", base, "--data", polarity / "train.jsonl", "--test",
               polarity / "test.jsonl", "--out", out, "--trainable", "last_blocks", *FAST) == 0
    result = json.loads((out / "eval.json").read_text())
    assert result["labels"] == ["negative", "positive"]
    for split, count in (("val", 12), ("test", 10)):  # val: a stratified 10%, 6 of each label
        scores = result[split]
        assert scores["count"] == count and sum(map(sum, scores["confusion"])) == count
        assert [scores["per_class"][label]["support"] for label in result["labels"]] == [count // 2] * 2
        assert 0 <= scores["accuracy"] <= 1
    # the last block, final LayerNorm and the head: not the embeddings
    assert 0 < result["trainable_params"] < result["total_params"] / 2
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6] and "val_accuracy" in rows[2]
    assert (out / "loss.png").is_file() and any((out / "tensorboard").iterdir())
    assert not (out / "adapters.safetensors").exists()

    capsys.readouterr()
    assert run("classify", "--checkpoint", out, "--input", polarity / "test.jsonl") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 10 and all(r["label"] in ("negative", "positive") for r in lines)
    assert all(math.isclose(sum(r["scores"].values()), 1.0, rel_tol=1e-5) for r in lines)
    assert run("classify", "--checkpoint", out, "--text", "a moving, beautiful film") == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    # the backbone is a plain GPT again: export takes the run
    assert run("export", "--checkpoint", out, "--output", tmp_path / "hf") == 0


def test_head_only_trains_only_the_head(base, polarity, tmp_path):
    out = tmp_path / "head"
    assert run("finetune-cls", "--checkpoint", base, "--data", polarity / "train.jsonl", "--out", out,
               "--val", polarity / "test.jsonl", "--trainable", "head", *FAST) == 0
    result = json.loads((out / "eval.json").read_text())
    assert result["val"]["count"] == 10 and "test" not in result  # the given val file, all of --data trained on
    assert result["trainable_params"] == 64 * 2 + 2  # n_embd x labels + bias
    start, tuned = load_model(base), load_safetensors(out / "model.safetensors")
    assert all(torch.equal(tuned.state_dict()[k], v) for k, v in start.state_dict().items())


def test_resume_after_a_stop_gives_the_same_losses(base, polarity, tmp_path):
    args = ["finetune-cls", "--checkpoint", base, "--data", polarity / "train.jsonl", *FAST, "--decay_steps", "6",
            "--ckpt_interval", "3", "--lora-rank", "2", "--lora-alpha", "4"]
    assert run(*args, "--out", tmp_path / "whole") == 0
    assert run(*args, "--out", tmp_path / "stopped", "--max_steps", "3") == 0
    assert run(*args, "--out", tmp_path / "stopped", "--resume") == 0
    whole, resumed = ([json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
                      for name in ("whole", "stopped"))
    assert [r["step"] for r in resumed] == [1, 2, 3, 4, 5, 6]
    assert [r["train_loss"] for r in resumed] == [r["train_loss"] for r in whole]
    assert [r.get("val_loss") for r in resumed] == [r.get("val_loss") for r in whole]


def test_lora_adapters_are_small_and_load_onto_their_base_only(base, polarity, tmp_path):
    out = tmp_path / "lora"
    assert run("finetune-cls", "--checkpoint", base, "--data", polarity / "train.jsonl", "--out", out,
               "--lora-rank", "4", "--lora-alpha", "8", "--lora_targets", "attn,mlp", "--lr", "3e-3", *FAST) == 0
    result = json.loads((out / "eval.json").read_text())
    # rank 4 on 4 layers per block, 2 blocks, 64 wide: A (4 x in) + B (out x 4); plus the head
    expected = 2 * 4 * ((64 + 192) + (64 + 64) + (64 + 256) + (256 + 64)) + 64 * 2 + 2
    assert result["trainable_params"] == expected and result["lora"]["rank"] == 4
    adapters = out / "adapters.safetensors"
    assert adapters.stat().st_size < (out / "model.safetensors").stat().st_size / 4
    base_sha = file_sha256(weights_file_of(base))
    loaded = load_adapters(load_model(base), adapters, base_sha)
    with pytest.raises(FinetuneError, match="trained on a base with sha256"):
        load_adapters(load_model(base), adapters, "0" * 64)
    # base + adapters (+ head) classify as the run's own checkpoint does
    from train.finetune import load_finetuned
    from train import checkpoint as ckpt

    reference = load_finetuned(ckpt.load_checkpoint(ckpt.latest_checkpoint(out)))
    ids, lengths = torch.randint(0, 400, (3, 20), generator=torch.Generator().manual_seed(0)), torch.tensor([20, 7, 1])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, lengths), reference(ids, lengths))
    # the merged backbone is what model.safetensors holds
    merged = load_safetensors(out / "model.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(merged(ids, ids)[0], reference.backbone(ids, ids)[0], atol=1e-5, rtol=1e-5)


def test_instruction_tuning_masks_prompts_and_answers_validation_prompts(base, instructions, tmp_path, capsys):
    out = tmp_path / "sft"
    assert run("finetune-sft", "--checkpoint", base, "--data", instructions, "--out", out, "--response_tokens", "4",
               "--lr", "1e-3", *FAST) == 0
    result = json.loads((out / "eval.json").read_text())
    assert result["val_loss"] < result["initial"]["val_loss"]
    assert result["trainable_params"] == result["total_params"] > 0
    responses = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    assert len(responses) == 4 and all({"instruction", "input", "output", "response"} <= set(r) for r in responses)
    capsys.readouterr()
    assert run("sample", "--checkpoint", out, "--prompt", "Name a color.", "--max-new-tokens", "3") == 0
    assert capsys.readouterr().out.startswith(format_prompt("Name a color."))
    assert run("finetune-sft", "--checkpoint", base, "--data", instructions, "--out", tmp_path / "sft-lora",
               "--lora-rank", "2", "--response_tokens", "2", *FAST) == 0
    lora = json.loads((tmp_path / "sft-lora" / "eval.json").read_text())
    assert lora["trainable_params"] == 2 * 2 * ((64 + 192) + (64 + 64))  # attn only by default
    assert (tmp_path / "sft-lora" / "adapters.safetensors").is_file()


def test_response_targets_exclude_the_prompt():
    from train.finetune_sft import pad_pairs

    inputs, targets = pad_pairs([([1, 2, 3, 4, 5], 3), ([7, 8, 9], 2)], pad_id=0, device=torch.device("cpu"))
    assert inputs.tolist() == [[1, 2, 3, 4], [7, 8, 0, 0]]
    assert targets.tolist() == [[-1, -1, 4, 5], [-1, 9, -1, -1]]


def test_starting_from_a_gpt2_folder(base, polarity, tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=400, n_positions=64, n_embd=32, n_layer=1,
                                                              n_head=2, activation_function="gelu"))
    hf.save_pretrained(tmp_path / "gpt2")
    assert run("finetune-cls", "--checkpoint", tmp_path / "gpt2", "--tokenizer", base / "tokenizer", "--data",
               polarity / "train.jsonl", "--out", tmp_path / "cls", *FAST) == 0
    assert json.loads((tmp_path / "cls" / "eval.json").read_text())["val"]["count"] == 12


@pytest.mark.parametrize("extra, message", [
    (["--label_field", "sentiment"], "unknown column 'sentiment'; the records have label, text"),
    (["--lora-rank", "100"], "LoRA rank 100 does not fit a 64 -> 192 layer"),
    (["--lora_targets", "ffn"], "lora_targets must name some of attn, mlp"),
    (["--trainable", "some"], "trainable must be one of all, head, last_blocks"),
])
def test_bad_options_are_one_line(base, polarity, tmp_path, capsys, extra, message):
    code = run("finetune-cls", "--checkpoint", base, "--data", polarity / "train.jsonl", "--out", tmp_path / "x",
               *FAST, *extra)
    assert code in (1, 2) and message in one_error_line(capsys)


def test_bad_inputs_are_one_line(base, polarity, instructions, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert run("finetune-cls", "--checkpoint", base, "--data", empty, "--out", tmp_path / "a") == 1
    assert "the file is empty" in one_error_line(capsys)
    one_label = tmp_path / "one.jsonl"
    one_label.write_text('{"text": "fine", "label": "ok"}\n{"text": "good", "label": "ok"}\n')
    assert run("finetune-cls", "--checkpoint", base, "--data", one_label, "--out", tmp_path / "b") == 1
    assert "has only one value ('ok')" in one_error_line(capsys)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine", "label": "ok"}\n{"text": \n')
    assert run("finetune-cls", "--checkpoint", base, "--data", broken, "--out", tmp_path / "c") == 1
    assert f"{broken}:2: not valid JSON" in one_error_line(capsys)
    no_output = tmp_path / "pairs.json"
    no_output.write_text('[{"instruction": "Say hi.", "input": ""}]')
    assert run("finetune-sft", "--checkpoint", base, "--data", no_output, "--out", tmp_path / "d") == 1
    assert "unknown field 'output'" in one_error_line(capsys)
    # a model of another vocabulary than the tokenizer's
    other = tmp_path / "other.safetensors"
    save_safetensors(GPT(GPTConfig(vocab_size=257, block_size=32, n_layer=1, n_head=1, n_embd=8)), other)
    assert run("finetune-cls", "--checkpoint", other, "--tokenizer", base / "tokenizer", "--data",
               polarity / "train.jsonl", "--out", tmp_path / "e") == 1
    assert "they belong to different models" in one_error_line(capsys)
    assert run("finetune-cls", "--checkpoint", tmp_path / "nowhere", "--data", polarity / "train.jsonl",
               "--out", tmp_path / "f") == 2
    assert f"no run at {tmp_path / 'nowhere'}" in one_error_line(capsys)
    assert run("classify", "--checkpoint", base, "--text", "hello") == 1
    assert "not a run of `python -m train finetune-cls`" in one_error_line(capsys)


def test_eval_reports_loss_perplexity_and_bits_per_byte(base, capsys):
    shards = base.parent / "shards"
    capsys.readouterr()
    assert run("eval", "--checkpoint", base, "--data", shards) == 0
    result = json.loads(capsys.readouterr().out)
    assert math.isclose(result["perplexity"], math.exp(result["val_loss"]), rel_tol=1e-9)
    assert math.isclose(result["bits_per_byte"], result["val_loss"] * result["tokens"] / (math.log(2) * result["bytes"]),
                        rel_tol=1e-9)
    # the bytes are those of the val text the targets spell: the documents' UTF-8 bytes, less the uncovered tail
    from common.shard_format import iter_documents, open_shards
    from train.sample import load_tokenizer

    tokenizer = load_tokenizer(base / "tokenizer")
    docs = list(iter_documents(open_shards(shards, "val")))
    all_tokens = sum(len(d) for d in docs)
    all_bytes = sum(len(tokenizer.decode(d.tolist()).encode("utf-8")) for d in docs)
    assert result["tokens"] <= all_tokens
    assert abs(result["bytes"] / all_bytes - result["tokens"] / all_tokens) < 0.03
    # an untrained model of the same shape is worse on every measure
    model = load_model(base)
    from train.evaluate import evaluate_shards

    fresh = evaluate_shards(GPT(model.config), shards, tokenizer)
    assert fresh["val_loss"] > result["val_loss"] and fresh["bits_per_byte"] > result["bits_per_byte"]


def test_eval_refuses_a_model_of_another_vocabulary(base, tmp_path, capsys):
    other = tmp_path / "other.safetensors"
    save_safetensors(GPT(GPTConfig(vocab_size=257, block_size=32, n_layer=1, n_head=1, n_embd=8)), other)
    assert run("eval", "--checkpoint", other, "--data", base.parent / "shards", "--tokenizer", base / "tokenizer") == 1
    assert "different" in one_error_line(capsys)
    assert run("eval", "--checkpoint", base, "--data", tmp_path) == 2
    assert "no manifest.json" in one_error_line(capsys)
