"""LoRA: low-rank adapters on a GPT's linear layers, the base weights frozen (Hu et al., 2021).

A wrapped layer computes `base(x) + (alpha / rank) * x @ A^T @ B^T`, with A (rank x in) random and B
(out x rank) zero at the start, so a freshly adapted model computes exactly what its base does. Only A
and B train; they are a few percent of the weights or less, and save on their own as a small file.
`merge_lora` folds `(alpha / rank) * B @ A` into each base weight and puts plain `nn.Linear`s back, so the
result is an ordinary GPT that `train sample` and `train export` take as it is.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

# Names accepted by --lora-targets, and the linear layers of each block they adapt.
TARGET_LAYERS: dict[str, tuple[str, ...]] = {
    "attn": ("attn.c_attn", "attn.c_proj"),
    "mlp": ("mlp.c_fc", "mlp.c_proj"),
}


class LoRAError(ValueError):
    """Adapters cannot be built or loaded as asked; the message is one line for the user."""


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        if not 0 < rank <= min(base.in_features, base.out_features):
            raise LoRAError(f"LoRA rank {rank} does not fit a {base.in_features} -> {base.out_features} layer "
                            f"(it must be between 1 and {min(base.in_features, base.out_features)})")
        self.base = base
        self.rank, self.alpha, self.scaling = rank, alpha, alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        # the initialization nn.Linear gives its own weights, as in the reference implementation
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scaling

    def merged(self) -> nn.Linear:
        linear = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                           device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(self.base.weight + self.scaling * (self.lora_b @ self.lora_a))
            if self.base.bias is not None:
                linear.bias.copy_(self.base.bias)
        return linear


def parse_targets(targets: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    names = [t.strip() for t in (targets.split(",") if isinstance(targets, str) else targets) if t.strip()]
    unknown = [t for t in names if t not in TARGET_LAYERS]
    if unknown or not names:
        raise LoRAError(f"lora_targets must name some of {', '.join(TARGET_LAYERS)}; got {','.join(names) or 'nothing'}")
    return tuple(dict.fromkeys(names))


def _set_submodule(root: nn.Module, dotted: str, module: nn.Module) -> None:
    parent, _, name = dotted.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def apply_lora(gpt: nn.Module, rank: int, alpha: float, targets) -> list[str]:
    """Freeze every weight of `gpt` and wrap the target layers of each block; returns the wrapped names."""
    for param in gpt.parameters():
        param.requires_grad_(False)
    wrapped = []
    for i, _ in enumerate(gpt.transformer.h):
        for target in parse_targets(targets):
            for layer in TARGET_LAYERS[target]:
                name = f"transformer.h.{i}.{layer}"
                _set_submodule(gpt, name, LoRALinear(gpt.get_submodule(name), rank, alpha))
                wrapped.append(name)
    return wrapped


def merge_lora(gpt: nn.Module) -> nn.Module:
    """Replace every LoRALinear in `gpt` by its merged plain Linear (in place); returns `gpt`."""
    names = [name for name, module in gpt.named_modules() if isinstance(module, LoRALinear)]
    for name in names:
        _set_submodule(gpt, name, gpt.get_submodule(name).merged())
    return gpt


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters' A and B matrices only, by their names in `model`."""
    return {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()
            if name.endswith((".lora_a", ".lora_b"))}


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters; tied weights count once."""
    params = list({id(p): p for p in model.parameters()}.values())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
