"""A GPT-2-style decoder-only transformer in one file.

Positions are learned absolute embeddings, as in GPT-2, rather than RoPE: the trained weights then map
one-to-one onto Hugging Face's `GPT2LMHeadModel` (see `model.hf_export`), so a checkpoint can be served by
any GPT-2 tooling without a conversion that changes its numbers. At the context lengths this project
trains (≤ 1024) learned positions cost nothing in quality.

Module names follow GPT-2 (`transformer.wte`, `transformer.h.N.attn.c_attn`, ...) for the same reason.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

# Model shapes by name. "tiny" and "mini" train on a laptop CPU; "gpt2" is GPT-2 small (124M parameters
# with GPT-2's 50257-token vocabulary).
PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64),
    "mini": dict(n_layer=4, n_head=4, n_embd=128),
    "small": dict(n_layer=6, n_head=6, n_embd=384),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768),
}

# Embedding and output matrices are padded to a multiple of this many rows: matrix multiplies whose
# dimensions are multiples of 64 run markedly faster on GPUs. The padded logits are never targets and
# are masked out when sampling.
VOCAB_MULTIPLE = 64

# `sdpa_backend` names: "auto" lets torch pick per call; the others pin one kernel (and fail loudly where
# it cannot run our layout, rather than silently falling back to a slower one).
SDPA_BACKENDS: dict[str, SDPBackend | None] = {
    "auto": None,
    "flash": SDPBackend.FLASH_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "math": SDPBackend.MATH,
}


# GPTConfig fields that change how the model computes, never what: a run may resume with others.
SPEED_SWITCHES = ("loss_chunk", "sdpa_backend")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    block_size: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    # Speed switches; neither changes what the model computes, only how.
    # loss_chunk > 0: the training loss runs over this many rows of logits at a time and never holds the
    # whole (batch * block_size, vocab) logits matrix; forward then returns no logits (see chunked_loss).
    loss_chunk: int = 0
    sdpa_backend: str = "auto"  # one of SDPA_BACKENDS

    def shape(self) -> dict:
        """The fields that make a checkpoint's weights fit: all but the speed switches."""
        return {k: v for k, v in vars(self).items() if k not in SPEED_SWITCHES}

    def __post_init__(self):
        if self.sdpa_backend not in SDPA_BACKENDS:
            raise ValueError(f"sdpa_backend must be one of {', '.join(SDPA_BACKENDS)}; got {self.sdpa_backend!r}")
        if self.loss_chunk < 0:
            raise ValueError(f"loss_chunk must not be negative, got {self.loss_chunk}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def padded_vocab_size(self) -> int:
        return -(-self.vocab_size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE

    @classmethod
    def from_preset(cls, name: str, vocab_size: int, **overrides) -> "GPTConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)}")
        return cls(vocab_size=vocab_size, **{**PRESETS[name], **overrides})


def split_heads(qkv: torch.Tensor, n_head: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, T, 3C) -> q, k, v, each (B, n_head, T, head_dim): strided views, no copy. This is the layout
    every SDPA call sees, so `sdpa_preflight` tests kernels on exactly this."""
    batch, seq, three_c = qkv.shape
    return qkv.view(batch, seq, 3, n_head, three_c // (3 * n_head)).permute(2, 0, 3, 1, 4).unbind(0)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str, dropout_p: float) -> torch.Tensor:
    """Causal attention through the named SDPA backend ("auto": torch's own choice per call)."""
    if SDPA_BACKENDS[backend] is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p)
    with sdpa_kernel(SDPA_BACKENDS[backend]):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p)


def sdpa_preflight(device: str | torch.device, dtype: torch.dtype, n_head: int = 12, head_dim: int = 64,
                   seq: int = 1024, batch: int = 2) -> dict[str, str]:
    """Which SDPA backends run our attention (forward and backward, this layout and dtype) on `device`:
    {backend: "ok" or the first line of its error}."""
    report = {}
    for name in SDPA_BACKENDS:
        if name == "auto":
            continue
        qkv = torch.randn(batch, seq, 3 * n_head * head_dim, device=device, dtype=dtype, requires_grad=True)
        try:
            attention(*split_heads(qkv, n_head), name, 0.0).sum().backward()
            report[name] = "ok"
        except RuntimeError as e:
            report[name] = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    return report


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.sdpa_backend = config.sdpa_backend
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, channels = x.shape
        q, k, v = split_heads(self.c_attn(x), self.n_head)
        # Flash / memory-efficient kernels where the device has them; never materializes the T x T mask.
        y = attention(q, k, v, self.sdpa_backend, self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(batch, seq, channels)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        # Exact (erf) GELU: about a third cheaper than GPT-2's tanh approximation on CPUs, the same on
        # GPUs; the Hugging Face export names it ("gelu"), so exported models compute the same function.
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm residual block: normalizing the branch inputs keeps the residual stream an
    identity path, which is what lets deep stacks train without a careful warmup."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.padded_vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.padded_vocab_size, bias=False)
        # Weight tying: input and output embeddings share one matrix (fewer parameters, better
        # perplexity at small scale, and GPT-2 does the same).
        self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        # GPT-2 init: each residual projection adds to the stream once per block per branch, so its
        # weights are scaled by 1/sqrt(2 * n_layer) to keep the stream's variance independent of depth.
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; tied weights count once. Position embeddings are excluded with
        `non_embedding` (token embeddings are used as the output layer, so they stay)."""
        total = sum(p.numel() for p in self.parameters())
        return total - self.transformer.wpe.weight.numel() if non_embedding else total

    def flops_per_token(self) -> int:
        """Training FLOPs per token (forward + backward): 6 per parameter plus attention's
        12 * n_layer * n_embd * block_size, as in the PaLM paper's appendix B."""
        c = self.config
        return 6 * self.num_params() + 12 * c.n_layer * c.n_embd * c.block_size

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Return (logits, loss). Without targets only the last position's logits are computed; with
        targets and `loss_chunk` set, logits is None (the loss never holds them all at once)."""
        seq = idx.size(1)
        if seq > self.config.block_size:
            raise ValueError(f"sequence of {seq} tokens is longer than block_size {self.config.block_size}")
        pos = torch.arange(seq, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is None:
            return self.lm_head(x[:, [-1], :]), None
        if self.config.loss_chunk:
            return None, chunked_loss(x.reshape(-1, x.size(-1)), self.lm_head.weight, targets.reshape(-1),
                                      self.config.loss_chunk)
        logits = self.lm_head(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def configure_optimizer(self, weight_decay: float, lr: float, betas: tuple[float, float],
                            device_type: str) -> torch.optim.AdamW:
        """AdamW with decay on matrices only: biases and LayerNorm gains are not decayed, since
        shrinking them toward zero only fights the normalization."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused_adamw_supported(device_type))

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, stop_token: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Extend `idx` (B, T) by up to `max_new_tokens` sampled tokens.

        temperature 0 picks the most likely token; top_k keeps only the k most likely candidates.
        Generation stops early once every row has produced `stop_token`.
        """
        finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size:]
            logits, _ = self(context)
            logits = logits[:, -1, :self.config.vocab_size].float()
            if temperature == 0:
                next_token = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None and top_k < logits.size(-1):
                    kth = torch.topk(logits, top_k).values[:, [-1]]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                next_token = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
            idx = torch.cat((idx, next_token), dim=1)
            if stop_token is not None:
                finished |= next_token.squeeze(1) == stop_token
                if bool(finished.all()):
                    break
        return idx


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of `hidden @ weight.T` against `targets` (-1: ignored), a chunk of rows at a time.

    The forward pass also computes both gradients, chunk by chunk, so that neither pass holds more than
    one (chunk, vocab) block of logits, and the output layer is not run a second time in backward, which
    only scales the stored gradients. For GPT-2 124M at batch 16 x 1024 the plain path keeps 16384 x 50304
    logits (1.6 GB in bf16) plus their float32 log-softmax for backward; a 2048-row chunk is an eighth.
    """

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int):
        valid = targets != -1
        loss = torch.zeros((), device=hidden.device, dtype=torch.promote_types(hidden.dtype, torch.float32))
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros_like(weight, dtype=loss.dtype)  # summed over chunks at float32 or better
        for start in range(0, hidden.size(0), chunk):
            rows, rows_targets = hidden[start:start + chunk], targets[start:start + chunk]
            # Under autocast the matmuls here run in bf16, as the plain path's do; softmax in float32 at least.
            logits = F.linear(rows, weight)
            logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
            loss += F.cross_entropy(logits, rows_targets, ignore_index=-1, reduction="sum")
            # d(sum of losses)/d(logits) = softmax - one_hot(target), zero on ignored rows
            grad_logits = torch.softmax(logits, dim=-1)
            grad_logits[torch.arange(rows.size(0), device=rows.device), rows_targets.clamp(min=0)] -= 1
            grad_logits *= valid[start:start + chunk].unsqueeze(1)
            grad_hidden[start:start + chunk] = grad_logits @ weight
            grad_weight += grad_logits.t() @ rows
        count = valid.sum()
        ctx.save_for_backward(grad_hidden, grad_weight, count)
        ctx.weight_dtype = weight.dtype
        return loss / count  # nan without a valid target, as F.cross_entropy gives

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_hidden, grad_weight, count = ctx.saved_tensors
        scale = grad_loss / count.clamp(min=1)  # no valid target: zero gradients (and a nan loss), as plain
        return grad_hidden * scale, (grad_weight * scale).to(ctx.weight_dtype), None, None


def chunked_loss(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int) -> torch.Tensor:
    """Mean cross-entropy of the output layer over (N, C) `hidden`, `chunk` rows of logits at a time."""
    if torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad):
        return ChunkedLinearCrossEntropy.apply(hidden, weight, targets, chunk)
    # evaluation: no gradients to prepare, only the per-chunk losses
    total = sum(F.cross_entropy(F.linear(hidden[i:i + chunk], weight), targets[i:i + chunk],
                                ignore_index=-1, reduction="sum") for i in range(0, hidden.size(0), chunk))
    return total / (targets != -1).sum()


def fused_adamw_supported(device_type: str) -> bool:
    """Whether torch has a fused AdamW kernel for this device: one kernel for the whole update, several
    times faster than the per-tensor loop (CUDA always; CPU since torch 2.4)."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:
        return device_type == "cuda"
    return device_type in _get_fused_kernels_supported_devices()


def save_safetensors(model: GPT, path: str | Path) -> None:
    """Write the weights as safetensors, with the GPTConfig as JSON in the file's metadata.

    The tied output matrix is stored once (under `transformer.wte.weight`)."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(path), metadata={"gpt_config": json.dumps(asdict(model.config))})


def load_safetensors(path: str | Path, device: str | torch.device = "cpu") -> GPT:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if "gpt_config" not in metadata:
        raise ValueError(f"{path}: no gpt_config in the safetensors metadata; not written by save_safetensors")
    model = GPT(GPTConfig(**json.loads(metadata["gpt_config"])))
    state = load_file(str(path), device="cpu")
    state["lm_head.weight"] = state["transformer.wte.weight"]
    model.load_state_dict(state)
    return model.to(device)
