"""Export a trained GPT to Hugging Face's GPT-2 format; with its tokenizer's files beside it (`train export`
puts them there), `AutoTokenizer.from_pretrained(dir)` and `AutoModelForCausalLM.from_pretrained(dir)` both
load the folder.

Needs the optional `hf` extra (`pip install webcorpus-gpt[hf]`, i.e. `transformers`).
"""
from __future__ import annotations

from pathlib import Path

import torch

from model.gpt import GPT

# GPT-2 stores these four projections as `Conv1D`, whose weight is the transpose of nn.Linear's.
_TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# Our vocabulary-sized matrices, padded to a multiple of 64 rows for speed; the export keeps the real rows.
_VOCAB_ROWS = ("transformer.wte.weight", "lm_head.weight")


class HFExportError(RuntimeError):
    """The export cannot be done; the message is one line for the user."""


def to_hf_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """GPT-2's tensors for our weights: the true vocabulary's rows only (padded ids then carry no
    probability at all), and zero biases where the model was trained without them (the same function)."""
    state = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if name.endswith(_TRANSPOSED):
            tensor = tensor.t()
        elif name in _VOCAB_ROWS:
            tensor = tensor[:model.config.vocab_size]
        state[name] = tensor.contiguous().clone()
    if not model.config.bias:
        for name, tensor in list(state.items()):
            if name.endswith(".weight") and not name.startswith(("transformer.wte", "transformer.wpe", "lm_head")):
                width = tensor.size(-1) if name.endswith(_TRANSPOSED) else tensor.size(0)
                state[name.removesuffix(".weight") + ".bias"] = torch.zeros(width, dtype=tensor.dtype)
    return state


def export_hf(model: GPT, out_dir: str | Path, tokenizer=None) -> Path:
    """Write `config.json` and `model.safetensors` for transformers' GPT2LMHeadModel into out_dir. With a
    `tokenizer` (ours), its end-of-text id becomes GPT-2's bos/eos/pad id; its own Hugging Face files are
    the tokenizer package's to write (`tokenizer.hf_export.hf_tokenizer_files`), as the model imports none."""
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        raise HFExportError("exporting to Hugging Face format needs transformers: "
                            "pip install 'webcorpus-gpt[hf]'") from None
    c = model.config
    eot_id = tokenizer.eot_id if tokenizer is not None else None
    if tokenizer is not None and tokenizer.vocab_size != c.vocab_size:
        raise HFExportError(f"the tokenizer has {tokenizer.vocab_size} tokens, the model {c.vocab_size}")
    hf_config = GPT2Config(
        vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer,
        n_head=c.n_head, activation_function="gelu", layer_norm_epsilon=1e-5,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
        bos_token_id=eot_id, eos_token_id=eot_id, pad_token_id=eot_id,
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
