"""Export a trained GPT to Hugging Face's GPT-2 format (`GPT2LMHeadModel.from_pretrained(dir)` loads it).

Needs the optional `hf` extra (`pip install webcorpus-gpt[hf]`, i.e. `transformers`).
"""
from __future__ import annotations

from pathlib import Path

import torch

from model.gpt import GPT

# GPT-2 stores these four projections as `Conv1D`, whose weight is the transpose of nn.Linear's.
_TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


class HFExportError(RuntimeError):
    """The export cannot be done; the message is one line for the user."""


def to_hf_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    state = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        state[name] = tensor.t().contiguous() if name.endswith(_TRANSPOSED) else tensor.clone()
    return state


def export_hf(model: GPT, out_dir: str | Path, eot_id: int | None = None) -> Path:
    """Write `config.json` and `model.safetensors` for transformers' GPT2LMHeadModel into out_dir.

    `eot_id`, the tokenizer's end-of-text id, becomes GPT-2's bos/eos token (GPT-2 uses one id for both)."""
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        raise HFExportError("exporting to Hugging Face format needs transformers: "
                            "pip install 'webcorpus-gpt[hf]'") from None
    c = model.config
    if not c.bias:
        raise HFExportError("GPT-2 format needs bias=True; this model was trained without biases")
    hf_config = GPT2Config(
        vocab_size=c.padded_vocab_size, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer,
        n_head=c.n_head, activation_function="gelu", layer_norm_epsilon=1e-5,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
        bos_token_id=eot_id, eos_token_id=eot_id,
    )
    hf_model = GPT2LMHeadModel(hf_config)
    missing, unexpected = hf_model.load_state_dict(to_hf_state_dict(model), strict=False)
    # GPT-2 keeps non-parameter attention buffers that our state dict has no counterpart for.
    missing = [k for k in missing if not k.endswith((".attn.bias", ".attn.masked_bias"))]
    if missing or unexpected:
        raise HFExportError(f"weights do not map onto GPT-2: missing {missing[:3]}, unexpected {unexpected[:3]}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf_model.save_pretrained(out)
    return out
