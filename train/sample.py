"""Text generation from a trained run: `python -m train sample --checkpoint RUN --prompt TEXT`."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from common.cli import first_line
from model.gpt import GPT, GPTConfig, load_safetensors
from train import checkpoint as ckpt

# Where a run keeps its own copy of the tokenizer its shards were made with.
TOKENIZER_DIR = "tokenizer"
# Which checkpoint of a run directory to read: the weights of the lowest validation loss, or the newest.
BEST, LATEST = "best", "latest"


def load_tokenizer(directory: str | Path):
    """The tokenizer saved in `directory` (`Tokenizer.load` reads local paths without Beam)."""
    from tokenizer import Tokenizer

    return Tokenizer.load(directory)


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run directory a checkpoint argument belongs to: RUN, RUN/checkpoints/step-N.pt or RUN/model.safetensors."""
    path = Path(checkpoint)
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == ckpt.CHECKPOINT_DIR else path.parent


def load_model(checkpoint: str | Path, device: str | torch.device = "cpu", which: str = LATEST) -> GPT:
    """Model weights from a run directory (its `which` checkpoint), a checkpoint .pt, or a .safetensors file."""
    return load_model_saying_which(checkpoint, device, which)[0]


def load_model_saying_which(checkpoint: str | Path, device: str | torch.device = "cpu",
                            which: str | None = None) -> tuple[GPT, str]:
    """The model and where its weights came from, e.g. `RUN/checkpoints/best.pt (best, step 400, val loss
    3.2100)`. In a run directory `which` picks best.pt or the newest readable step-N.pt; None picks best.pt
    where the run has one, else (a run that never validated) the newest."""
    path = Path(checkpoint)
    if path.suffix == ".safetensors" and not path.is_dir():
        return load_safetensors(path, device).eval(), f"{path} (exported weights)"
    picked, note = None, None
    if path.is_dir():
        best = path / ckpt.CHECKPOINT_DIR / ckpt.BEST_FILE
        picked = which or (BEST if best.is_file() else LATEST)
        if picked == BEST:
            if not best.is_file():
                raise ckpt.CheckpointError(f"{path} has no {ckpt.CHECKPOINT_DIR}/{ckpt.BEST_FILE}: the run never "
                                           f"validated; use --which {LATEST}")
            path, state = best, ckpt.load_checkpoint(best, required=ckpt.MODEL_KEYS)
        else:
            found = ckpt.load_latest_readable(path, ckpt.MODEL_KEYS, lambda line: print(line, file=sys.stderr))
            if found is None:
                raise ckpt.CheckpointError(f"{path} holds no checkpoints (looked in {path / ckpt.CHECKPOINT_DIR})")
            path, state = found
            note = "the run never validated, so it has no best" if which is None else None
    else:
        state = ckpt.load_checkpoint(path, required=ckpt.MODEL_KEYS)
    facts = ", ".join(fact for fact in (picked, f"step {state['step']}" if "step" in state else None,
                                        f"val loss {state['val_loss']:.4f}" if state.get("val_loss") is not None
                                        else None, note) if fact)
    return _model_from_state(path, state, device), f"{path} ({facts})" if facts else str(path)


def _model_from_state(path: Path, state: dict, device: str | torch.device) -> GPT:
    if "finetune" in state:  # a run of finetune-cls / finetune-sft: its GPT, LoRA merged in
        from train.finetune import merged_backbone

        return merged_backbone(state).to(device).eval()
    try:
        model = GPT(GPTConfig(**state["model_config"]))
        model.load_state_dict(state["model"])
    except (TypeError, ValueError, RuntimeError) as e:
        raise ckpt.CheckpointError(f"{path}: its model_config and weights do not make a model: "
                                   f"{first_line(e)}") from None
    return model.to(device).eval()


def generate_text(model: GPT, tokenizer, prompt: str, max_new_tokens: int, temperature: float = 0.8,
                  top_k: int | None = 200, seed: int = 0) -> str:
    """The prompt's continuation (without the prompt), stopping at end-of-text."""
    device = next(model.parameters()).device
    # An empty prompt starts a fresh document, as training saw documents begin after end-of-text.
    ids = tokenizer.encode(prompt) if prompt else [tokenizer.eot_id]
    if any(t >= model.config.vocab_size for t in ids):
        raise ValueError(f"the tokenizer ({tokenizer.vocab_size} tokens) does not match the model "
                         f"(vocab {model.config.vocab_size})")
    generator = torch.Generator(device=device).manual_seed(seed)
    out = model.generate(torch.tensor([ids], device=device), max_new_tokens, temperature=temperature,
                         top_k=top_k, stop_token=tokenizer.eot_id, generator=generator)
    new = out[0, len(ids):].tolist()
    if tokenizer.eot_id in new:
        new = new[:new.index(tokenizer.eot_id)]
    return tokenizer.decode(new)


def prompt_for(checkpoint: str | Path, prompt: str) -> str:
    """The prompt as the run's model expects it: an instruction-tuned run's template around it, else as it is."""
    from train.finetune import finetune_record

    record = finetune_record(checkpoint)
    if record and record["task"] == "instruction" and prompt:
        from train.finetune_sft import format_prompt

        return format_prompt(prompt)
    return prompt
