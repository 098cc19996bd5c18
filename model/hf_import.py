"""Load a Hugging Face GPT-2 folder on disk (config.json + model.safetensors or pytorch_model.bin) as our GPT.

The inverse of `model.hf_export`: the module names are GPT-2's already, only the four Conv1D weights are
transposed back. Nothing is downloaded; transformers is not needed. GPT-2 proper uses the tanh
approximation of GELU and this model the exact one; they differ by less than 1e-3 per activation, which
fine-tuning absorbs, and the import says so when it happens.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from model.gpt import GPT, GPTConfig
from model.hf_export import _TRANSPOSED

HF_CONFIG = "config.json"
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
EXACT_GELU = ("gelu",)
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


class HFImportError(ValueError):
    """The folder is not a GPT-2 model this GPT can hold; the message is one line for the user."""


def is_hf_folder(path: str | Path) -> bool:
    path = Path(path)
    return (path / HF_CONFIG).is_file() and any((path / name).is_file() for name in HF_WEIGHT_FILES)


def hf_weights_file(folder: str | Path) -> Path:
    folder = Path(folder)
    found = next((folder / name for name in HF_WEIGHT_FILES if (folder / name).is_file()), None)
    if found is None:
        raise HFImportError(f"{folder}: no {' or '.join(HF_WEIGHT_FILES)}")
    return found


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # safetensors and torch raise several types for damaged files
        raise HFImportError(f"cannot read {path}: {type(e).__name__}") from None


def load_hf_gpt2(folder: str | Path, vocab_size: int | None = None) -> tuple[GPT, list[str]]:
    """The folder's weights as a GPT, and notes for the user (e.g. the GELU approximation).

    `vocab_size` (the tokenizer's) may be smaller than GPT-2's embedding rows when those were padded."""
    folder = Path(folder)
    try:
        hf = json.loads((folder / HF_CONFIG).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise HFImportError(f"{folder / HF_CONFIG}: cannot read ({type(e).__name__})") from None
    if hf.get("model_type") != "gpt2":
        raise HFImportError(f"{folder}: model_type is {hf.get('model_type')!r}, only GPT-2 folders can be imported")
    n_embd = hf.get("n_embd", 768)
    if hf.get("n_inner") not in (None, 4 * n_embd):
        raise HFImportError(f"{folder}: n_inner {hf['n_inner']} is not 4 * n_embd, which this GPT assumes")
    if abs(hf.get("layer_norm_epsilon", 1e-5) - 1e-5) > 1e-12:
        raise HFImportError(f"{folder}: layer_norm_epsilon {hf['layer_norm_epsilon']} differs from this GPT's 1e-5")
    activation = hf.get("activation_function", "gelu_new")
    if activation not in EXACT_GELU + TANH_GELU:
        raise HFImportError(f"{folder}: activation {activation!r} is not a GELU")
    notes = [f"{folder} uses {activation} (tanh GELU); this GPT computes exact GELU, "
             f"a difference under 1e-3 per activation"] if activation in TANH_GELU else []

    state = _read_state(hf_weights_file(folder))
    state = {name if name.startswith(("transformer.", "lm_head.")) else f"transformer.{name}": tensor
             for name, tensor in state.items()}
    rows = hf.get("vocab_size", 50257)
    vocab_size = vocab_size or rows
    if vocab_size > rows:
        raise HFImportError(f"the tokenizer has {vocab_size} tokens, the model in {folder} only {rows}")
    model = GPT(GPTConfig(vocab_size=vocab_size, block_size=hf.get("n_positions", 1024), n_layer=hf["n_layer"],
                          n_head=hf["n_head"], n_embd=n_embd, dropout=0.0, bias=True))
    ours = model.state_dict()
    converted = {}
    for name, target in ours.items():
        if name == "lm_head.weight":
            continue  # tied to transformer.wte.weight
        if name not in state:
            raise HFImportError(f"{folder}: weight {name} is missing; not a GPT2Model / GPT2LMHeadModel save")
        tensor = state[name].float()
        if name.endswith(_TRANSPOSED):
            tensor = tensor.t()
        if name == "transformer.wte.weight":
            # our embedding is padded to a multiple of 64 rows: copy the real ones, leave the rest zero
            padded = torch.zeros_like(target)
            used = min(tensor.size(0), padded.size(0))
            padded[:used] = tensor[:used]
            tensor = padded
        if tensor.shape != target.shape:
            raise HFImportError(f"{folder}: {name} has shape {tuple(tensor.shape)}, config.json implies "
                                f"{tuple(target.shape)}")
        converted[name] = tensor
    converted["lm_head.weight"] = converted["transformer.wte.weight"]
    model.load_state_dict(converted)
    return model.eval(), notes
