"""`python -m train eval`: validation loss, perplexity and bits per byte of a model on a shard directory.

Every val shard is cut into windows of block_size + 1 tokens as the trainer cuts them, each token a
target once (a shard's last few tokens that fill no window are left out). Bits per byte divides the
total loss in bits by the UTF-8 bytes those targets decode to, so it compares models whose tokenizers
differ: a tokenizer with longer tokens has fewer, harder targets over the same bytes. Each window is
decoded on its own, so a character whose byte-fallback tokens straddle two windows counts as the
replacement characters it decodes to there (a few bytes per window at most).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common.shard_format import load_manifest, open_shards
from model.gpt import GPT
from train.data import DataError, WindowIndex


@torch.no_grad()
def evaluate_shards(model: GPT, data_dir: str | Path, tokenizer=None, batch_size: int = 8,
                    max_windows: int | None = None) -> dict:
    """{"val_loss", "perplexity", "bits_per_byte", "tokens", "bytes"}; bits_per_byte is None without a tokenizer."""
    data_dir = Path(data_dir)
    shards = open_shards(data_dir, "val")
    if not shards:
        raise DataError(f"{data_dir}: the manifest lists no val shards")
    vocab = load_manifest(data_dir).get("vocab_size")
    if vocab is not None and vocab > model.config.vocab_size:
        raise DataError(f"the shards in {data_dir} have a {vocab}-token vocabulary, the model "
                        f"{model.config.vocab_size}: they belong to different tokenizers")
    block = model.config.block_size
    index = WindowIndex(shards, block)
    count = len(index) if max_windows is None else min(len(index), max_windows)
    if count == 0:
        raise DataError(f"{data_dir}: the val shards hold fewer than {block + 1} tokens, not one window")
    device = next(model.parameters()).device
    model.eval()
    nats, targets_seen, text_bytes = 0.0, 0, 0
    for start in range(0, count, batch_size):
        windows = list(range(start, min(count, start + batch_size)))
        buffer = np.empty((len(windows), block + 1), dtype=np.int64)
        index.fill(windows, buffer)
        batch = torch.from_numpy(buffer).to(device)
        inputs, targets = batch[:, :-1], batch[:, 1:]
        # forward with targets gives the mean; its logits give the sum without a second pass
        logits, _ = model(inputs, targets)
        nats += float(F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), reduction="sum"))
        targets_seen += targets.numel()
        if tokenizer is not None:
            text_bytes += sum(len(tokenizer.decode(row).encode("utf-8")) for row in buffer[:, 1:].tolist())
    val_loss = nats / targets_seen
    return {"val_loss": val_loss, "perplexity": math.exp(val_loss),
            "bits_per_byte": nats / (math.log(2) * text_bytes) if text_bytes else None,
            "tokens": targets_seen, "bytes": text_bytes if tokenizer is not None else None}
