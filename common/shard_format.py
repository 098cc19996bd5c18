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

`manifest.json` in the same directory lists the shards in order (see `build_manifest`):

    format, format_version   "gpt-token-shards", 1
    dtype, token_bytes       "uint16"/"uint32", 2/4: the width every shard uses
    vocab_size, eot_id       of the tokenizer; every document ends with eot_id
    tokenizer                {"path", "model_sha256", "vocab_size"}: the tokenizer the shards came from
    splits                   {"train": {"shards", "num_docs", "num_tokens"}, "val": {...}}
    settings                 how the shards were cut (val fraction, seed, shard size)
    shards                   [{"split", "number", "file", "index", "num_tokens", "num_docs",
                               "sha256" (of .bin), "index_sha256" (of .idx)}, ...], train first, then val,
                              each split in shard-number order

Documents are numbered globally in manifest order: shards in the order listed, documents in shard order.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Mapping, Sequence

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


@dataclass(frozen=True)
class WrittenShard:
    """What `write_shard` wrote: the counts of the `.bin` header and the checksums of both files."""
    num_tokens: int
    num_docs: int
    sha256: str
    index_sha256: str


def write_shard(documents: Sequence[Sequence[int] | np.ndarray], vocab_size: int,
                bin_file: BinaryIO, idx_file: BinaryIO) -> WrittenShard:
    """Stream already-tokenized documents (each ending with end-of-text) into a `.bin` and a `.idx`
    file, one document at a time: beyond the documents themselves, memory stays at one document's
    tokens and the offsets (8 bytes a document).

    Raises ValueError if any token id does not fit the vocabulary: never a silent overflow (the
    caller discards the partly written files).
    """
    dtype = token_dtype(vocab_size)
    lengths = np.fromiter((len(d) for d in documents), dtype=np.uint64, count=len(documents))
    offsets = np.zeros(len(documents) + 1, dtype="<u8")
    np.cumsum(lengths, out=offsets[1:])
    bin_digest, idx_digest = hashlib.sha256(), hashlib.sha256()

    def emit(data: bytes, out: BinaryIO, digest) -> None:
        digest.update(data)
        out.write(data)

    num_tokens = int(offsets[-1])
    emit(ShardHeader(VERSION, dtype.itemsize, vocab_size, num_tokens, len(documents)).pack(), bin_file, bin_digest)
    for document in documents:
        # checked in their own integer type (not widened to int64): a shard holds up to ~10^8 tokens
        tokens = np.asarray(document)
        if tokens.size and tokens.dtype.kind not in "iu":
            raise ValueError(f"token ids must be integers, got {tokens.dtype}")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
            bad = int(tokens.max()) if tokens.max() >= vocab_size else int(tokens.min())
            raise ValueError(f"token id {bad} is outside the vocabulary of {vocab_size}")
        emit(tokens.astype(dtype).tobytes(), bin_file, bin_digest)
    emit(_IDX_HEADER.pack(IDX_MAGIC, VERSION, 0, len(documents)).ljust(HEADER_BYTES, b"\0"), idx_file, idx_digest)
    emit(offsets.tobytes(), idx_file, idx_digest)
    return WrittenShard(num_tokens, len(documents), bin_digest.hexdigest(), idx_digest.hexdigest())


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
            raw_offsets = f.read()
        if len(raw_offsets) != 8 * (num_docs + 1):
            raise ShardFormatError(f"{self.idx_path}: {len(raw_offsets)} bytes of offsets, its header "
                                   f"promises {num_docs + 1} offsets ({8 * (num_docs + 1)} bytes)")
        self.offsets = np.frombuffer(raw_offsets, dtype="<u8")
        if num_docs != self.header.num_docs:
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
    """The parsed manifest.json of `shard_dir`; ShardFormatError if it is missing or malformed."""
    path = Path(shard_dir) / MANIFEST_NAME
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        if any(Path(shard_dir).glob("*.bin")):  # tokenize removes the manifest first and writes it last
            raise ShardFormatError(f"{path}: no manifest, so the shards in {shard_dir} are incomplete (the "
                                   f"`pipeline tokenize` run that wrote them did not finish); "
                                   f"run tokenize again") from None
        raise ShardFormatError(f"{path}: no manifest; is {shard_dir} a directory written by `pipeline tokenize`?") from None
    except UnicodeDecodeError:
        raise ShardFormatError(f"{path}: manifest is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ShardFormatError(f"{path}: manifest is not valid JSON ({e})") from None
    except OSError as e:  # a directory, or no permission
        raise ShardFormatError(f"{path}: cannot read the manifest ({e.strerror or e})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), list):
        raise ShardFormatError(f"{path}: manifest has no list of shards")
    for key in ("vocab_size", "eot_id"):
        if key in manifest and (not isinstance(manifest[key], int) or isinstance(manifest[key], bool)):
            raise ShardFormatError(f"{path}: {key} must be an integer, got {manifest[key]!r}")
    for number, entry in enumerate(manifest["shards"]):
        missing = [key for key in _ENTRY_KEYS if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise ShardFormatError(f"{path}: shard entry {number} lacks {', '.join(missing)}")
        problem = _entry_problem(entry)
        if problem:
            raise ShardFormatError(f"{path}: shard entry {number}: {problem}")
    return manifest


def _entry_problem(entry: dict) -> str | None:
    """What is wrong with the types of a manifest entry, or None. File names must stay inside the
    shard directory: a manifest is data, and must not make a reader open any other file."""
    if entry["split"] not in SPLITS:
        return f"split must be {' or '.join(SPLITS)}, got {entry['split']!r}"
    for key in ("file", "index"):
        name = entry[key]
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
            return f"{key} must be a file name inside the shard directory, got {name!r}"
    for key in ("num_tokens", "num_docs"):
        if not isinstance(entry[key], int) or isinstance(entry[key], bool) or entry[key] < 0:
            return f"{key} must be a non-negative integer, got {entry[key]!r}"
    for key in ("sha256", "index_sha256"):
        if not isinstance(entry[key], str):
            return f"{key} must be a string, got {entry[key]!r}"
    return None


def open_shards(shard_dir: str | os.PathLike, split: str) -> list[Shard]:
    """Open every shard of `split` ("train" or "val") in manifest order."""
    manifest = load_manifest(shard_dir)
    return [Shard(Path(shard_dir) / entry["file"], Path(shard_dir) / entry["index"])
            for entry in manifest["shards"] if entry["split"] == split]


def iter_documents(shards: Iterable[Shard]) -> Iterable[np.ndarray]:
    for shard in shards:
        for k in range(shard.num_docs):
            yield shard.document(k)


MANIFEST_FORMAT = "gpt-token-shards"
SPLITS = ("train", "val")
_ENTRY_KEYS = ("split", "file", "index", "num_tokens", "num_docs", "sha256", "index_sha256")


def shard_stem(split: str, number: int) -> str:
    """File name of shard `number` of `split`, without extension: "train-00003"."""
    return f"{split}-{number:05d}"


def manifest_entry(split: str, number: int, written: WrittenShard) -> dict:
    """The manifest record of one shard that `write_shard` wrote."""
    stem = shard_stem(split, number)
    return {"split": split, "number": number, "file": f"{stem}.bin", "index": f"{stem}.idx",
            "num_tokens": written.num_tokens, "num_docs": written.num_docs,
            "sha256": written.sha256, "index_sha256": written.index_sha256}


def build_manifest(entries: Iterable[dict], vocab_size: int, eot_id: int, tokenizer: dict,
                   settings: dict | None = None) -> dict:
    """A manifest listing `entries` train first, then val, each split by shard number."""
    dtype = token_dtype(vocab_size)
    order = {split: k for k, split in enumerate(SPLITS)}
    shards = sorted(entries, key=lambda e: (order.get(e["split"], len(SPLITS)), e["split"], e["number"]))
    splits = {}
    for entry in shards:
        totals = splits.setdefault(entry["split"], {"shards": 0, "num_docs": 0, "num_tokens": 0})
        totals["shards"] += 1
        totals["num_docs"] += entry["num_docs"]
        totals["num_tokens"] += entry["num_tokens"]
    return {"format": MANIFEST_FORMAT, "format_version": VERSION, "dtype": dtype.name,
            "token_bytes": dtype.itemsize, "vocab_size": vocab_size, "eot_id": eot_id,
            "tokenizer": dict(tokenizer), "splits": splits, "settings": dict(settings or {}), "shards": shards}


def manifest_bytes(manifest: dict) -> bytes:
    """Canonical JSON of a manifest: equal manifests give equal bytes."""
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return sha256_of(f)


def verify_shard(shard_dir: str | os.PathLike, entry: dict, vocab_size: int | None = None,
                 eot_id: int | None = None) -> Shard:
    """Check one manifest entry against its files; ShardFormatError names the file at fault.

    Checks, cheapest first: both files exist; headers, sizes and document counts agree; offsets start
    at 0, never decrease and end at the token count; counts and vocabulary match the manifest; the
    checksums match; every token id is inside the vocabulary and every document ends with eot_id.
    """
    bin_path, idx_path = Path(shard_dir) / entry["file"], Path(shard_dir) / entry["index"]
    for path in (bin_path, idx_path):
        if not path.is_file():
            raise ShardFormatError(f"{path}: listed in the manifest but missing")
    shard = Shard(bin_path, idx_path)
    offsets = shard.offsets
    if offsets[0] != 0 or offsets[-1] != shard.header.num_tokens or np.any(offsets[1:] < offsets[:-1]):
        raise ShardFormatError(f"{idx_path}: document offsets are not a non-decreasing run from 0 to "
                               f"{shard.header.num_tokens}")
    for key, actual in (("num_tokens", shard.header.num_tokens), ("num_docs", shard.header.num_docs)):
        if entry[key] != actual:
            raise ShardFormatError(f"{bin_path}: header has {key} {actual}, the manifest says {entry[key]}")
    if vocab_size is not None and shard.header.vocab_size != vocab_size:
        raise ShardFormatError(f"{bin_path}: header has vocab_size {shard.header.vocab_size}, "
                               f"the manifest says {vocab_size}")
    if shard.header.token_bytes != token_dtype(shard.header.vocab_size).itemsize:
        raise ShardFormatError(f"{bin_path}: {shard.header.token_bytes}-byte tokens do not match "
                               f"vocab_size {shard.header.vocab_size}")
    for path, key in ((bin_path, "sha256"), (idx_path, "index_sha256")):
        if _file_sha256(path) != entry[key]:
            raise ShardFormatError(f"{path}: sha256 does not match the manifest (the file is corrupt or was replaced)")
    block = 1 << 24
    for start in range(0, shard.header.num_tokens, block):
        if int(shard.tokens[start:start + block].max()) >= shard.header.vocab_size:
            raise ShardFormatError(f"{bin_path}: holds a token id outside the vocabulary of {shard.header.vocab_size}")
    if eot_id is not None and shard.num_docs:
        ends = np.asarray(shard.tokens[(offsets[1:] - 1)[offsets[1:] > offsets[:-1]].astype(np.int64)])
        if len(ends) != shard.num_docs or np.any(ends != eot_id):
            raise ShardFormatError(f"{bin_path}: a document does not end with the end-of-text token {eot_id}")
    return shard


def verify_shard_dir(shard_dir: str | os.PathLike, on_shard=None) -> dict:
    """Verify every shard the manifest lists (see `verify_shard`); return the manifest.

    `on_shard(entry)` is called after each shard passes (for progress bars). Raises
    ShardFormatError at the first problem, naming the file.
    """
    manifest = load_manifest(shard_dir)
    if not manifest["shards"]:
        raise ShardFormatError(f"{Path(shard_dir) / MANIFEST_NAME}: the manifest lists no shards")
    vocab_size, eot_id = manifest.get("vocab_size"), manifest.get("eot_id")
    for entry in manifest["shards"]:
        verify_shard(shard_dir, entry, vocab_size, eot_id)
        if on_shard is not None:
            on_shard(entry)
    return manifest


def locate_document(manifest: dict, k: int) -> tuple[dict, int]:
    """(manifest entry, document number inside that shard) of global document `k` in manifest order."""
    total = sum(entry["num_docs"] for entry in manifest["shards"])
    if not 0 <= k < total:
        raise IndexError(f"document {k} is out of range: the shards hold {total} documents (0 to {total - 1})")
    for entry in manifest["shards"]:
        if k < entry["num_docs"]:
            return entry, k
        k -= entry["num_docs"]
    raise AssertionError("unreachable: k was checked against the total")


def write_shard_dir(out_dir: str | Path, splits: Mapping[str, Sequence[Sequence[Sequence[int]]]],
                    vocab_size: int, eot_id: int, tokenizer: Mapping | None = None) -> Path:
    """Write already-tokenized documents as shards plus manifest.json, in `pipeline tokenize`'s format.

    `splits` maps "train"/"val" to a list of shards, each a list of documents (token id lists ending
    with `eot_id`). For token ids that are already in memory (tests, benchmarks, other tokenizers'
    output); `pipeline tokenize` writes the same format at scale through Beam.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for split, shards in splits.items():
        for number, documents in enumerate(shards):
            stem = shard_stem(split, number)
            with open(out / f"{stem}.bin", "wb") as bin_file, open(out / f"{stem}.idx", "wb") as idx_file:
                entries.append(manifest_entry(split, number, write_shard(documents, vocab_size, bin_file, idx_file)))
    manifest = build_manifest(entries, vocab_size, eot_id, tokenizer or {})
    tmp = out / f".{MANIFEST_NAME}.tmp-{os.getpid()}"
    tmp.write_bytes(manifest_bytes(manifest))
    os.replace(tmp, out / MANIFEST_NAME)
    return out
