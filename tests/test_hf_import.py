import json

import pytest
import torch

from model.hf_export import export_hf
from model.hf_import import HFImportError, load_hf_gpt2
from train.__main__ import main
from train.sample import load_model

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def save_tiny_gpt2(folder, activation="gelu", vocab_size=300):
    """A GPT-2 built and saved by transformers itself, as a folder on disk (no hub)."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=vocab_size, n_positions=32, n_embd=32, n_layer=2, n_head=2,
                                     activation_function=activation)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder)
    return model


def ids():
    return torch.randint(0, 300, (2, 10), generator=torch.Generator().manual_seed(3))


def test_imported_gpt2_gives_the_logits_transformers_gives(tmp_path):
    hf = save_tiny_gpt2(tmp_path / "hf")
    model, notes = load_hf_gpt2(tmp_path / "hf")
    assert notes == []
    with torch.no_grad():
        ours = model(ids(), ids())[0][..., :300]
        theirs = hf(ids()).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_tanh_gelu_is_imported_with_a_note(tmp_path):
    hf = save_tiny_gpt2(tmp_path / "hf", activation="gelu_new")
    model, notes = load_hf_gpt2(tmp_path / "hf")
    assert len(notes) == 1 and "gelu_new" in notes[0]
    with torch.no_grad():
        assert (model(ids(), ids())[0][..., :300] - hf(ids()).logits).abs().max() < 1e-2


def test_export_then_import_round_trips(tmp_path):
    save_tiny_gpt2(tmp_path / "hf")
    model, _ = load_hf_gpt2(tmp_path / "hf")
    export_hf(model, tmp_path / "again")
    back, _ = load_hf_gpt2(tmp_path / "again", vocab_size=300)
    for name, tensor in model.state_dict().items():
        assert torch.equal(back.state_dict()[name], tensor), name


def test_import_hf_writes_a_run_that_loads(tmp_path, capsys):
    save_tiny_gpt2(tmp_path / "hf")
    assert main(["import-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 0
    assert "imported" in capsys.readouterr().out
    model = load_model(tmp_path / "run")
    reference, _ = load_hf_gpt2(tmp_path / "hf")
    assert model.config == reference.config
    assert (tmp_path / "run" / "config.toml").is_file() and (tmp_path / "run" / "model.safetensors").is_file()
    assert main(["import-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 2
    assert "already holds checkpoints" in capsys.readouterr().err


def test_a_folder_that_is_not_gpt2_is_one_line(tmp_path, capsys):
    save_tiny_gpt2(tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
    with pytest.raises(HFImportError, match="only GPT-2 folders"):
        load_hf_gpt2(tmp_path / "hf")
    capsys.readouterr()
    assert main(["import-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model_type is 'llama'" in err[0]
    assert main(["import-hf", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
