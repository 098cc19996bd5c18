"""The token shard format: one Beam-free module that the shard writer and the trainer's loader share.

A shard is two files side by side:

    train-00000.bin   64-byte header, then every token of every document, back to back
    train-00000.idx   64-byte header, then num_docs + 1 little-endian uint64 token offsets

Header of `.bin` (little-endian, padded with zeros to 64 bytes):

    magic       8 bytes   b"GPTSHARD"
    version     uint32    1
    token_bytes uint32    2 (tokens are uint16) or 4 (uint32)
    vocab_size  uint64    size of the tokenizer's vocabulary
    num_tokens  uint64    tokens that follow the header
    num_docs    uint64    documents in the shard (each ends with the end-of-text token)

Header of `.idx`: magic b"GPTINDEX", version uint32, 4 bytes of zeros, num_docs uint64, zeros to 64
bytes. Document k spans tokens [offsets[k], offsets[k + 1]); offsets[0] == 0 and
offsets[num_docs] == num_tokens.

`manifest.json` in the same directory lists the shards in order (see `MANIFEST_NAME`).
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Sequence

import numpy as np

BIN_MAGIC = b"GPTSHARD"
IDX_MAGIC = b"GPTINDEX"
VERSION = 1
HEADER_BYTES = 64
MANIFEST_NAME = "manifest.json"

_BIN_HEADER = struct.Struct("<8sIIQQQ")
_IDX_HEADER = struct.Struct("<8sIIQ")


class ShardFormatError(ValueError):
    """A shard, index or manifest does not match the format; the message names the file."""


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every token id fits, uint32 otherwise."""
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    if vocab_size <= 1 << 16:
        return np.dtype("<u2")
    if vocab_size <= 1 << 32:
        return np.dtype("<u4")
    raise ValueError(f"vocab_size {vocab_size} does not fit in uint32 tokens")


@dataclass(frozen=True)
class ShardHeader:
    version: int
    token_bytes: int
    vocab_size: int
    num_tokens: int
    num_docs: int

    @property
    def dtype(self) -> np.dtype:
        return np.dtype("<u2") if self.token_bytes == 2 else np.dtype("<u4")

    def pack(self) -> bytes:
        raw = _BIN_HEADER.pack(BIN_MAGIC, self.version, self.token_bytes, self.vocab_size, self.num_tokens, self.num_docs)
        return raw.ljust(HEADER_BYTES, b"\0")


def parse_bin_header(raw: bytes, name: str = "shard") -> ShardHeader:
    if len(raw) < HEADER_BYTES:
        raise ShardFormatError(f"{name}: file is shorter than its {HEADER_BYTES}-byte header")
    magic, version, token_bytes, vocab_size, num_tokens, num_docs = _BIN_HEADER.unpack_from(raw)
    if magic != BIN_MAGIC:
        raise ShardFormatError(f"{name}: bad magic {magic!r}, expected {BIN_MAGIC!r}")
    if version != VERSION:
        raise ShardFormatError(f"{name}: format version {version} is not supported (this reader knows {VERSION})")
    if token_bytes not in (2, 4):
        raise ShardFormatError(f"{name}: token width {token_bytes} bytes is invalid (2 or 4)")
    return ShardHeader(version, token_bytes, vocab_size, num_tokens, num_docs)


def parse_idx_header(raw: bytes, name: str = "index") -> int:
    """Return the document count recorded in an index header."""
    if len(raw) < HEADER_BYTES:
        raise ShardFormatError(f"{name}: file is shorter than its {HEADER_BYTES}-byte header")
    magic, version, _, num_docs = _IDX_HEADER.unpack_from(raw)
    if magic != IDX_MAGIC:
        raise ShardFormatError(f"{name}: bad magic {magic!r}, expected {IDX_MAGIC!r}")
    if version != VERSION:
        raise ShardFormatError(f"{name}: format version {version} is not supported (this reader knows {VERSION})")
    return num_docs


def encode_shard(documents: Sequence[Sequence[int] | np.ndarray], vocab_size: int) -> tuple[bytes, bytes]:
    """Serialize already-tokenized documents (each ending with end-of-text) to (.bin bytes, .idx bytes).

    Raises ValueError if any token id does not fit the vocabulary: never a silent overflow.
    """
    dtype = token_dtype(vocab_size)
    lengths = np.fromiter((len(d) for d in documents), dtype=np.uint64, count=len(documents))
    offsets = np.zeros(len(documents) + 1, dtype="<u8")
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.concatenate([np.asarray(d, dtype=np.int64) for d in documents]) if documents else np.zeros(0, np.int64)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(f"token id {int(tokens.max() if tokens.max() >= vocab_size else tokens.min())} "
                         f"is outside the vocabulary of {vocab_size}")
    header = ShardHeader(VERSION, dtype.itemsize, vocab_size, int(tokens.size), len(documents))
    bin_bytes = header.pack() + tokens.astype(dtype).tobytes()
    idx_header = _IDX_HEADER.pack(IDX_MAGIC, VERSION, 0, len(documents)).ljust(HEADER_BYTES, b"\0")
    return bin_bytes, idx_header + offsets.tobytes()


def sha256_of(data: bytes | BinaryIO) -> str:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    for block in iter(lambda: data.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


class Shard:
    """A shard opened for reading: the token array is memory-mapped once and never read whole."""

    def __init__(self, bin_path: str | os.PathLike, idx_path: str | os.PathLike | None = None):
        self.bin_path = Path(bin_path)
        self.idx_path = Path(idx_path) if idx_path is not None else self.bin_path.with_suffix(".idx")
        with open(self.bin_path, "rb") as f:
            self.header = parse_bin_header(f.read(HEADER_BYTES), str(self.bin_path))
        expected = HEADER_BYTES + self.header.num_tokens * self.header.token_bytes
        actual = self.bin_path.stat().st_size
        if actual != expected:
            raise ShardFormatError(f"{self.bin_path}: size {actual} bytes, header says {expected}")
        self.tokens = np.memmap(self.bin_path, dtype=self.header.dtype, mode="r", offset=HEADER_BYTES,
                                shape=(self.header.num_tokens,))
        with open(self.idx_path, "rb") as f:
            num_docs = parse_idx_header(f.read(HEADER_BYTES), str(self.idx_path))
            self.offsets = np.frombuffer(f.read(), dtype="<u8")
        if num_docs != self.header.num_docs or len(self.offsets) != num_docs + 1:
            raise ShardFormatError(f"{self.idx_path}: index holds {len(self.offsets) - 1} documents, "
                                   f"shard header says {self.header.num_docs}")

    def __len__(self) -> int:
        return self.header.num_tokens

    @property
    def num_docs(self) -> int:
        return self.header.num_docs

    def document(self, k: int) -> np.ndarray:
        if not 0 <= k < self.num_docs:
            raise IndexError(f"document {k} is out of range: {self.bin_path.name} has {self.num_docs}")
        return np.asarray(self.tokens[int(self.offsets[k]):int(self.offsets[k + 1])])


def load_manifest(shard_dir: str | os.PathLike) -> dict:
    path = Path(shard_dir) / MANIFEST_NAME
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ShardFormatError(f"{path}: no manifest; is {shard_dir} a directory written by `pipeline tokenize`?") from None
    except json.JSONDecodeError as e:
        raise ShardFormatError(f"{path}: manifest is not valid JSON ({e})") from None


def open_shards(shard_dir: str | os.PathLike, split: str) -> list[Shard]:
    """Open every shard of `split` ("train" or "val") in manifest order."""
    manifest = load_manifest(shard_dir)
    return [Shard(Path(shard_dir) / entry["file"], Path(shard_dir) / entry["index"])
            for entry in manifest["shards"] if entry["split"] == split]


def iter_documents(shards: Iterable[Shard]) -> Iterable[np.ndarray]:
    for shard in shards:
        for k in range(shard.num_docs):
            yield shard.document(k)
