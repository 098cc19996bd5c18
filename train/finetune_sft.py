"""Instruction tuning (SFT): `python -m train finetune-sft`.

Each pair `{"instruction", "input", "output"}` becomes one sequence: the prompt made by `format_prompt`,
then the output, then end-of-text. Only the output's tokens and the end-of-text are targets: the model
learns to answer, not to write instructions, and learns where an answer stops. The prompt template (in
the style of Stanford Alpaca's, which "Build a Large Language Model (From Scratch)" also uses):

    The task below comes with an instruction[ and an input to work on]. Write a response that does what it asks.

    ### Instruction:
    {instruction}

    ### Input:                     (only when the input is not empty)
    {input}

    ### Response:
    {output}<|endoftext|>

Batches are padded to their longest sequence (capped at max_length tokens); pairs whose prompt alone
fills max_length have nothing to learn from and are skipped, counted in eval.json.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from common.config_io import ConfigError
from train.finetune import FinetuneConfig, FinetuneError, Task, read_records, require_fields, seeded_split

RESPONSES_FILE = "responses.jsonl"
FIELDS = ("instruction", "input", "output")


@dataclass(frozen=True)
class InstructionConfig(FinetuneConfig):
    response_tokens: int = 64  # most tokens generated per validation prompt for responses.jsonl
    lr: float = 1e-4

    def __post_init__(self):
        super().__post_init__()
        if self.response_tokens <= 0:
            raise ConfigError(f"response_tokens must be positive, got {self.response_tokens}")


def format_prompt(instruction: str, input_text: str = "") -> str:
    """The prompt for one pair, ending where the response begins."""
    if input_text.strip():
        return (f"The task below comes with an instruction and an input to work on. Write a response that does what "
                f"it asks.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input_text}\n\n### Response:\n")
    return (f"The task below comes with an instruction. Write a response that does what it asks.\n\n"
            f"### Instruction:\n{instruction}\n\n### Response:\n")


def encode_pair(tokenizer, record: dict, max_length: int) -> tuple[list[int], int] | None:
    """(tokens, prompt length) of one pair cut to max_length + 1 tokens, or None when no response token fits."""
    prompt = tokenizer.encode(format_prompt(record["instruction"], record.get("input") or ""))
    if len(prompt) >= max_length:
        return None
    return (prompt + tokenizer.encode(record["output"]) + [tokenizer.eot_id])[:max_length + 1], len(prompt)


def pad_pairs(pairs: list[tuple[list[int], int]], pad_id: int, device: torch.device):
    """Inputs (pad: end-of-text) and targets (-1 on prompt and padding) of a batch, as long as its longest pair."""
    longest = max(len(tokens) for tokens, _ in pairs) - 1
    inputs = torch.full((len(pairs), longest), pad_id, dtype=torch.long)
    targets = torch.full((len(pairs), longest), -1, dtype=torch.long)
    for row, (tokens, prompt_len) in enumerate(pairs):
        seq = torch.tensor(tokens, dtype=torch.long)
        inputs[row, :len(tokens) - 1] = seq[:-1]
        # the target at position i is token i + 1: responses start at token prompt_len
        targets[row, prompt_len - 1:len(tokens) - 1] = seq[prompt_len:]
    return inputs.to(device), targets.to(device)


class InstructionTask(Task):
    def __init__(self, config: InstructionConfig, tokenizer, block_size: int, data: str | Path,
                 val: str | Path | None = None):
        self.config, self.tokenizer = config, tokenizer
        self.max_length = min(config.max_length or block_size, block_size)
        records = self._read(data)
        if val is None:
            train_idx, val_idx = seeded_split({"all": list(range(len(records)))}, config.val_fraction, config.seed)
            train_records, self.val_records = [records[i] for i in train_idx], [records[i] for i in val_idx]
        else:
            train_records, self.val_records = records, self._read(val)
        self.train_pairs, skipped_train = self._encode(train_records)
        self.val_pairs, skipped_val = self._encode(self.val_records)
        if not self.train_pairs:
            raise FinetuneError(f"{data}: no pair's prompt fits in max_length {self.max_length} tokens")
        self.skipped = {"train": skipped_train, "val": skipped_val}
        if skipped_train or skipped_val:
            print(f"note: {skipped_train} training and {skipped_val} validation pairs have prompts of "
                  f"max_length ({self.max_length}) tokens or more and are skipped", flush=True)
        self.train_count = len(self.train_pairs)
        self.info = {"task": "instruction", "template": "alpaca-style", "max_length": self.max_length}

    @staticmethod
    def _read(path) -> list[dict]:
        records = read_records(path)
        require_fields(records, ["instruction", "output"], path)
        bad = next((i for i, r in enumerate(records) if not isinstance(r.get("input", ""), (str, type(None)))), None)
        if bad is not None:
            raise FinetuneError(f"{path}: record {bad + 1} has a non-text 'input'")
        return records

    def _encode(self, records: list[dict]) -> tuple[list, int]:
        encoded = [encode_pair(self.tokenizer, r, self.max_length) for r in records]
        return [e for e in encoded if e is not None], sum(e is None for e in encoded)

    def choose_trainable(self, model: nn.Module) -> None:
        """Every weight trains (LoRA, when on, is the lighter choice)."""

    def batch(self, indices: list[int], device: torch.device):
        return pad_pairs([self.train_pairs[i] for i in indices], self.tokenizer.eot_id, device)

    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, int]:
        inputs, targets = batch
        _, loss = model(inputs, targets)
        return loss, int((targets >= 0).sum())

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """Mean loss per response token over every validation pair."""
        total, count = 0.0, 0
        for start in range(0, len(self.val_pairs), self.config.batch_size):
            inputs, targets = pad_pairs(self.val_pairs[start:start + self.config.batch_size],
                                        self.tokenizer.eot_id, device)
            _, loss = model(inputs, targets)
            tokens = int((targets >= 0).sum())
            total, count = total + float(loss) * tokens, count + tokens
        return {"val_loss": total / count if count else float("nan")}

    def report(self, model: nn.Module, device: torch.device, run_dir: Path) -> dict:
        """Validation loss, and each validation prompt answered greedily into responses.jsonl."""
        from train.sample import generate_text

        with open(run_dir / RESPONSES_FILE, "w", encoding="utf-8") as f:
            for record in self.val_records:
                prompt = format_prompt(record["instruction"], record.get("input") or "")
                room = self.max_length - len(self.tokenizer.encode(prompt))
                response = generate_text(model, self.tokenizer, prompt, min(self.config.response_tokens, room),
                                         temperature=0.0) if room > 0 else ""
                f.write(json.dumps({"instruction": record["instruction"], "input": record.get("input") or "",
                                    "output": record["output"], "response": response}, ensure_ascii=False) + "\n")
        return {**self.evaluate(model, device), "val_pairs": len(self.val_pairs), "skipped_pairs": self.skipped}
