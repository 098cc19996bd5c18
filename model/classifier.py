"""A GPT with a classification head on the hidden state of each sequence's last real token.

Sequences are right-padded: under causal attention the padding after a sequence's last token cannot
change that token's hidden state, so no attention mask is needed, only the index of the last real token.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from model.gpt import GPT


class GPTClassifier(nn.Module):
    def __init__(self, backbone: GPT, num_labels: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.n_embd, num_labels)
        nn.init.normal_(self.head.weight, mean=0.0, std=0.02)
        nn.init.zeros_(self.head.bias)

    def hidden_states(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T, n_embd) after the final LayerNorm: GPT.forward without its language-model head."""
        t = self.backbone.transformer
        x = t.drop(t.wte(idx) + t.wpe(torch.arange(idx.size(1), device=idx.device)))
        for block in t.h:
            x = block(x)
        return t.ln_f(x)

    def forward(self, idx: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Label logits (B, num_labels) from position lengths - 1 of each row."""
        hidden = self.hidden_states(idx)
        last = hidden[torch.arange(idx.size(0), device=idx.device), lengths - 1]
        return self.head(last)
