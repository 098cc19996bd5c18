"""Classification fine-tuning: `python -m train finetune-cls`, and `python -m train classify`.

Each text is encoded, cut to max_length - 1 tokens, and closed with end-of-text; the head reads the hidden
state at that last token, which has attended to the whole text. Labels are the sorted distinct values of
the label field; their order fixes the head's outputs and is saved with the run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.config_io import ConfigError
from train.finetune import FinetuneConfig, FinetuneError, Task, read_records, require_fields, seeded_split

EVAL_BATCH = 64


@dataclass(frozen=True)
class ClassifierConfig(FinetuneConfig):
    text_field: str = "text"
    label_field: str = "label"
    # which weights train without LoRA: all of them, the head alone, or the head + final LayerNorm + last N blocks
    trainable: Literal["all", "head", "last_blocks"] = "all"
    last_blocks: int = 1
    lr: float = 1e-4

    def __post_init__(self):
        super().__post_init__()
        if self.last_blocks <= 0:
            raise ConfigError(f"last_blocks must be positive, got {self.last_blocks}")


def encode_texts(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    return [ids[:max_length - 1] + [tokenizer.eot_id] for ids in tokenizer.encode_batch(texts)]


def pad_batch(sequences: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, longest) ids and each row's length."""
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
    return ids.to(device), torch.tensor([len(s) for s in sequences], device=device)


@torch.no_grad()
def predict(model: nn.Module, sequences: list[list[int]], pad_id: int, device: torch.device) -> torch.Tensor:
    """Label probabilities (N, num_labels), in batches."""
    probs = []
    for start in range(0, len(sequences), EVAL_BATCH):
        ids, lengths = pad_batch(sequences[start:start + EVAL_BATCH], pad_id, device)
        probs.append(F.softmax(model(ids, lengths).float(), dim=-1).cpu())
    return torch.cat(probs)


def classification_metrics(truth: list[int], predicted: list[int], labels: list[str]) -> dict:
    """Accuracy, per-class precision / recall / support, confusion matrix (rows: true, columns: predicted)."""
    n = len(labels)
    confusion = [[0] * n for _ in range(n)]
    for t, p in zip(truth, predicted):
        confusion[t][p] += 1
    per_class = {}
    for k, label in enumerate(labels):
        predicted_k = sum(confusion[t][k] for t in range(n))
        support = sum(confusion[k])
        per_class[label] = {"precision": confusion[k][k] / predicted_k if predicted_k else 0.0,
                            "recall": confusion[k][k] / support if support else 0.0, "support": support}
    correct = sum(confusion[k][k] for k in range(n))
    majority = max(sum(row) for row in confusion) / len(truth) if truth else 0.0
    return {"accuracy": correct / len(truth) if truth else 0.0, "majority_accuracy": majority,
            "per_class": per_class, "confusion": confusion, "count": len(truth)}


class ClassificationTask(Task):
    def __init__(self, config: ClassifierConfig, tokenizer, block_size: int, data: str | Path,
                 val: str | Path | None = None, test: str | Path | None = None):
        self.config, self.tokenizer = config, tokenizer
        self.max_length = min(config.max_length or block_size, block_size)
        fields = [config.text_field, config.label_field]
        records = read_records(data)
        require_fields(records, fields, data, "column")
        self.labels = sorted({r[config.label_field] for r in records})
        if len(self.labels) < 2:
            raise FinetuneError(f"{data}: the label column {config.label_field!r} has only one value "
                                f"({self.labels[0]!r}); classification needs two or more")
        if val is None:
            by_label = {}
            for i, r in enumerate(records):
                by_label.setdefault(r[config.label_field], []).append(i)
            train_idx, val_idx = seeded_split(by_label, config.val_fraction, config.seed)
            train_records, val_records = [records[i] for i in train_idx], [records[i] for i in val_idx]
        else:
            train_records, val_records = records, self._read_labelled(val)
        self.train_x, self.train_y = self._encode(train_records)
        self.val_x, self.val_y = self._encode(val_records)
        self.test = self._encode(self._read_labelled(test)) if test is not None else None
        self.train_count = len(self.train_x)
        self.info = {"task": "classification", "labels": self.labels, "text_field": config.text_field,
                     "max_length": self.max_length}

    def _read_labelled(self, path) -> list[dict]:
        records = read_records(path)
        require_fields(records, [self.config.text_field, self.config.label_field], path, "column")
        unknown = sorted({r[self.config.label_field] for r in records} - set(self.labels))
        if unknown:
            raise FinetuneError(f"{path}: label {unknown[0]!r} does not occur in the training data "
                                f"(labels: {', '.join(self.labels)})")
        return records

    def _encode(self, records: list[dict]) -> tuple[list[list[int]], list[int]]:
        index = {label: k for k, label in enumerate(self.labels)}
        return (encode_texts(self.tokenizer, [r[self.config.text_field] for r in records], self.max_length),
                [index[r[self.config.label_field]] for r in records])

    def choose_trainable(self, model: nn.Module) -> None:
        if self.config.trainable == "all":
            return
        for param in model.parameters():
            param.requires_grad_(False)
        chosen = [model.head]
        if self.config.trainable == "last_blocks":
            chosen += [model.backbone.transformer.ln_f, *model.backbone.transformer.h[-self.config.last_blocks:]]
        for module in chosen:
            for param in module.parameters():
                param.requires_grad_(True)

    def batch(self, indices: list[int], device: torch.device):
        ids, lengths = pad_batch([self.train_x[i] for i in indices], self.tokenizer.eot_id, device)
        return ids, lengths, torch.tensor([self.train_y[i] for i in indices], device=device)

    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, int]:
        ids, lengths, targets = batch
        return F.cross_entropy(model(ids, lengths).float(), targets), int(lengths.sum())

    def _scores(self, model, sequences, truth, device) -> tuple[float, dict]:
        probs = predict(model, sequences, self.tokenizer.eot_id, device)
        truth_t = torch.tensor(truth)
        loss = float(F.nll_loss(torch.log(probs.clamp_min(1e-12)), truth_t))
        return loss, classification_metrics(truth, probs.argmax(-1).tolist(), self.labels)

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        loss, metrics = self._scores(model, self.val_x, self.val_y, device)
        return {"val_loss": loss, "val_accuracy": metrics["accuracy"]}

    def report(self, model: nn.Module, device: torch.device, run_dir: Path) -> dict:
        val_loss, val = self._scores(model, self.val_x, self.val_y, device)
        result = {"labels": self.labels, "val": {**val, "loss": val_loss}}
        if self.test is not None:
            test_loss, test = self._scores(model, *self.test, device)
            result["test"] = {**test, "loss": test_loss}
        return result
