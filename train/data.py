"""Memory-mapped batches of training windows read straight from token shards.

Each split's shards are memory-mapped once (`common.shard_format.Shard`); a batch copies only its own
windows out of the page cache, so a corpus of any size costs the loader a few megabytes of RSS.

A window is `block_size + 1` consecutive tokens of one shard, starting at a multiple of `block_size`:
inputs are the first `block_size` tokens, targets the last `block_size`, and across all windows every
token is a target exactly once per epoch. Windows do not cross shard boundaries; they do cross document
boundaries, which the end-of-text token marks (as in GPT-2's training).

Training order: epoch `e` visits every window once, in the order of a permutation seeded by
(seed, e). Rank `r` of `world_size` takes positions r, r + world_size, ... of that permutation (the tail
that does not divide evenly is left for the next epoch's shuffle), so ranks never share a window and
take the same number of steps. The position (epoch, index) is the loader's whole state, which makes
resuming exact.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch

from common.shard_format import Shard, load_manifest, open_shards, sha256_of

# Tokens scanned per numpy call when checking ids: bounded memory whatever the shard's size.
_SCAN_CHUNK = 1 << 24


class DataError(ValueError):
    """The shard directory cannot feed training; the message is one line for the user."""


class WindowIndex:
    """Maps a global window number to (shard, first token) over a list of memory-mapped shards."""

    def __init__(self, shards: Sequence[Shard], block_size: int):
        self.shards = list(shards)
        self.block_size = block_size
        per_shard = [max(0, (len(s) - 1) // block_size) for s in self.shards]
        # first_window[i] is the global number of shard i's first window
        self.first_window = np.concatenate([[0], np.cumsum(per_shard, dtype=np.int64)])

    def __len__(self) -> int:
        return int(self.first_window[-1])

    def locate(self, window: int) -> tuple[Shard, int]:
        shard_no = int(np.searchsorted(self.first_window, window, side="right")) - 1
        return self.shards[shard_no], (window - int(self.first_window[shard_no])) * self.block_size

    def fill(self, windows: Sequence[int], out: np.ndarray) -> None:
        """Copy each window's block_size + 1 tokens into a row of `out`."""
        span = self.block_size + 1
        for row, window in enumerate(windows):
            shard, start = self.locate(int(window))
            out[row] = shard.tokens[start:start + span]


def open_checked_shards(data_dir: Path, split: str) -> tuple[list[Shard], int | None]:
    """The split's shards and their vocabulary size, refusing any token id the model could not embed.

    Every header must agree with the manifest's vocab_size, and every token id must lie below it: an id
    past the vocabulary would crash the embedding lookup mid-run (a device-side assert on a GPU). The
    scan reads each memory-mapped shard once, in chunks, at numpy speed (about 1 GB/s)."""
    manifest_vocab = load_manifest(data_dir).get("vocab_size")
    shards = open_shards(data_dir, split)
    sizes = {s.header.vocab_size for s in shards}
    if len(sizes) > 1:
        raise DataError(f"{data_dir}: shards disagree on the vocabulary size ({sorted(sizes)})")
    for shard in shards:
        vocab = shard.header.vocab_size
        if manifest_vocab is not None and vocab != manifest_vocab:
            raise DataError(f"{shard.bin_path}: header has vocab_size {vocab}, the manifest says {manifest_vocab}")
        for start in range(0, len(shard), _SCAN_CHUNK):
            largest = int(shard.tokens[start:start + _SCAN_CHUNK].max())
            if largest >= vocab:
                raise DataError(f"{shard.bin_path} holds token id {largest}, outside the vocabulary of {vocab}; "
                                f"re-tokenize it or run `python -m pipeline verify {data_dir}`")
    return shards, (sizes.pop() if sizes else None)


def layout_fingerprint(data_dir: Path) -> str:
    """sha256 over every shard's split, name, token count and checksum, as the manifest records them: it
    changes whenever re-tokenizing changes what any batch would hold, and costs no shard reads."""
    entries = [[e["split"], e["file"], e["num_tokens"], e["sha256"]] for e in load_manifest(data_dir)["shards"]]
    return sha256_of(json.dumps(entries).encode("utf-8"))


class TrainLoader:
    """Endless stream of (inputs, targets) batches for one rank, without replacement within an epoch."""

    def __init__(self, data_dir: str | Path, block_size: int, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1, device: str | torch.device = "cpu"):
        self.data_dir = Path(data_dir)
        shards, self.vocab_size = open_checked_shards(self.data_dir, "train")
        if not shards:
            raise DataError(f"{self.data_dir}: the manifest lists no train shards")
        self.index = WindowIndex(shards, block_size)
        self.data_fingerprint = layout_fingerprint(self.data_dir)
        self.windows_per_rank = len(self.index) // world_size
        if self.windows_per_rank < 1:
            raise DataError(f"{self.data_dir}: {len(self.index)} training windows of {block_size + 1} tokens "
                            f"cannot feed {world_size} rank(s); lower block_size or add data")
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.device = torch.device(device)
        self.epoch, self.position = 0, 0
        self._order: np.ndarray | None = None
        self._pinned = self.device.type == "cuda"

    def _rank_order(self, epoch: int) -> np.ndarray:
        """This rank's windows of `epoch`, in visiting order."""
        permutation = np.random.default_rng([self.seed, epoch]).permutation(len(self.index))
        return permutation[self.rank::self.world_size][:self.windows_per_rank]

    def next_windows(self) -> list[int]:
        """The global numbers of the next batch's windows (advances the position)."""
        windows: list[int] = []
        while len(windows) < self.batch_size:
            if self._order is None:
                self._order = self._rank_order(self.epoch)
            take = self._order[self.position:self.position + self.batch_size - len(windows)]
            windows.extend(int(w) for w in take)
            self.position += len(take)
            if self.position == self.windows_per_rank:
                self.epoch, self.position, self._order = self.epoch + 1, 0, None
        return windows

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        buffer = np.empty((self.batch_size, self.index.block_size + 1), dtype=np.int64)
        self.index.fill(self.next_windows(), buffer)
        batch = torch.from_numpy(buffer)
        if self._pinned:
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        return batch[:, :-1], batch[:, 1:]

    def state_dict(self) -> dict[str, int | str]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed,
                "world_size": self.world_size, "num_windows": len(self.index),
                "data_fingerprint": self.data_fingerprint}

    def load_state_dict(self, state: Mapping[str, int | str]) -> None:
        if state.get("data_fingerprint") != self.data_fingerprint:
            raise DataError(f"cannot resume: the shards in {self.data_dir} are not the ones this run was trained on "
                            f"(their manifest lists other files, token counts or checksums; re-tokenized?), so "
                            f"its batches would differ; train a new run on them")
        expected = {"seed": self.seed, "world_size": self.world_size, "num_windows": len(self.index)}
        for key, value in expected.items():
            if int(state[key]) != value:
                raise DataError(f"cannot resume the loader: checkpoint has {key}={int(state[key])}, "
                                f"this run has {value}")
        self.epoch, self.position, self._order = int(state["epoch"]), int(state["position"]), None


class ValLoader:
    """A fixed set of validation batches: the first windows of the val shards in manifest order, split
    across ranks, identical at every evaluation so that val_loss is comparable over a run."""

    def __init__(self, data_dir: str | Path, block_size: int, batch_size: int, num_batches: int,
                 rank: int = 0, world_size: int = 1, device: str | torch.device = "cpu"):
        data_dir = Path(data_dir)
        shards, self.vocab_size = open_checked_shards(data_dir, "val")
        self.index = WindowIndex(shards, block_size)
        self.batch_size, self.device = batch_size, torch.device(device)
        wanted = num_batches * batch_size * world_size
        # A small val split is cycled rather than giving fewer batches: every rank must run the same
        # number of forward passes.
        self.windows = (np.arange(wanted) % len(self.index))[rank::world_size] if len(self.index) else None

    def __bool__(self) -> bool:
        return self.windows is not None

    def why_empty(self) -> str:
        """Why an empty loader has no batches: no val shards, or none long enough for one window."""
        if not self.index.shards:
            return "the shards have no val split"
        longest = max(len(shard) for shard in self.index.shards)
        return (f"block_size {self.index.block_size} is larger than the val split allows: a window needs "
                f"{self.index.block_size + 1} tokens and its longest shard holds {longest}")

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.windows), self.batch_size):
            buffer = np.empty((self.batch_size, self.index.block_size + 1), dtype=np.int64)
            self.index.fill(self.windows[start:start + self.batch_size], buffer)
            batch = torch.from_numpy(buffer).to(self.device)
            yield batch[:, :-1], batch[:, 1:]
