"""Exports that users load elsewhere: a trained run into one Hugging Face folder (model and tokenizer)."""
import json
import shutil

import pytest
import torch

from tests.train_shards import write_tokenized_shards
from tokenizer.__main__ import main as tokenizer_main
from train.__main__ import main as train_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PROMPT = "All human beings are born"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny model without biases, trained a few steps on real SentencePiece shards (still near its random
    init, so greedy decoding picks varied tokens rather than the commonest one)."""
    root = tmp_path_factory.mktemp("export")
    shards = write_tokenized_shards(root)
    run = root / "run"
    assert train_main(["--data", str(shards), "--out", str(run), "--preset", "tiny", "--block_size", "64",
                       "--batch_size", "8", "--max_steps", "4", "--bias", "false", "--eval_interval", "0",
                       "--sample_interval", "0", "--log_interval", "10"]) == 0
    return run


def test_hugging_face_folder_loads_with_auto_classes_and_greedy_generate_matches_train_sample(
        trained_run, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "hf"
    assert train_main(["export", "--checkpoint", str(trained_run), "--output", str(out)]) == 0
    meta = json.loads((trained_run / "tokenizer" / "tokenizer_meta.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == meta["vocab_size"] == 400  # the true vocabulary, not the padded 448
    assert config["eos_token_id"] == meta["eot_id"]

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    prompt_ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        generated = model.generate(prompt_ids, max_new_tokens=24, do_sample=False)
    hf_text = tokenizer.decode(generated[0, prompt_ids.size(1):], skip_special_tokens=True)

    capsys.readouterr()
    assert train_main(["sample", "--checkpoint", str(trained_run), "--prompt", PROMPT, "--max-new-tokens", "24",
                       "--temperature", "0"]) == 0
    ours = capsys.readouterr().out
    assert len(set(hf_text.strip())) >= 2 and ours == PROMPT + hf_text + "\n"


def test_tokenizer_export_hf_writes_beside_its_input_by_default(trained_run, monkeypatch):
    tok_dir = trained_run / "tokenizer"
    before = sorted(p.name for p in tok_dir.iterdir())
    monkeypatch.chdir(tok_dir)
    assert tokenizer_main(["export-hf", "."]) == 0
    assert sorted(p.name for p in tok_dir.iterdir()) == before
    sibling = trained_run / "tokenizer-hf"
    assert sorted(p.name for p in sibling.iterdir()) == ["special_tokens_map.json", "tokenizer.json",
                                                         "tokenizer_config.json"]


def test_sample_says_which_checkpoint_it_reads_best_or_latest(trained_run, tmp_path, capsys):
    from train import checkpoint as ckpt

    run = shutil.copytree(trained_run, tmp_path / "run")
    latest = ckpt.latest_checkpoint(run)
    argv = ["sample", "--checkpoint", str(run), "--max-new-tokens", "2"]
    assert train_main(argv) == 0  # trained with eval_interval 0: never validated, so no best.pt
    assert capsys.readouterr().err == (f"sampling from {latest} (latest, step 4, the run never validated, "
                                       f"so it has no best)\n")
    assert train_main([*argv, "--which", "best"]) == 1
    assert capsys.readouterr().err == (f"train sample: error: {run} has no checkpoints/best.pt: the run never "
                                       f"validated; use --which latest\n")

    state = ckpt.load_checkpoint(latest)
    ckpt.save_best(run, {key: state[key] for key in ("model", "model_config", "step")} | {"val_loss": 5.25})
    assert train_main(argv) == 0
    assert capsys.readouterr().err == f"sampling from {run / 'checkpoints' / 'best.pt'} (best, step 4, val loss 5.2500)\n"
    assert train_main([*argv, "--which", "latest"]) == 0
    assert capsys.readouterr().err == f"sampling from {latest} (latest, step 4)\n"
    assert train_main(["sample", "--checkpoint", str(latest), "--which", "best"]) == 2
    assert "--which picks a checkpoint of a run directory" in capsys.readouterr().err
