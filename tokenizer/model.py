"""The trained tokenizer as the rest of the project uses it: a SentencePiece model plus its metadata.

A tokenizer directory holds `tokenizer.model` (the SentencePiece model) and `tokenizer_meta.json`
(vocabulary size, special tokens and their ids, normalization and training settings, the model's
sha256, and the compression measured on held-out text). `Tokenizer.load` checks that the two agree.

Encoding is lossless: `decode(encode(text)) == text` for every string. SentencePiece itself gets
there with identity normalization, no dummy prefix, kept whitespace and byte fallback; the one
character it cannot round-trip is its own whitespace marker U+2581, which it decodes to a space, so
`encode` spells that character with byte-fallback tokens instead (they decode to U+2581 verbatim).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Callable, Iterable, Sequence

import sentencepiece as spm

from common.cli import first_line

MODEL_FILE = "tokenizer.model"
META_FILE = "tokenizer_meta.json"
META_FORMAT = "webcorpus-gpt-tokenizer"
META_VERSION = 1
EOT_TOKEN = "<|endoftext|>"
# SentencePiece's internal stand-in for a space; literal occurrences are encoded as raw bytes.
WHITESPACE_MARKER = "\u2581"


class TokenizerError(ValueError):
    """A tokenizer directory is missing, incomplete or inconsistent; the message is one line."""


class Tokenizer:
    """A loaded tokenizer. Build it with `Tokenizer.load(directory)`."""

    def __init__(self, model_bytes: bytes, meta: dict, source: str = "<memory>"):
        self.meta = meta
        self.source = source
        self.model_sha256 = hashlib.sha256(model_bytes).hexdigest()
        if meta.get("model_sha256") not in (None, self.model_sha256):
            raise TokenizerError(f"{source}: {MODEL_FILE} has sha256 {self.model_sha256[:12]}..., "
                                 f"{META_FILE} expects {meta['model_sha256'][:12]}...; the directory is inconsistent")
        try:
            self._sp = spm.SentencePieceProcessor(model_proto=model_bytes)
        except RuntimeError:  # SentencePiece's own parse error, with C++ file and line in it
            raise TokenizerError(f"{source}: {MODEL_FILE} is not a SentencePiece model") from None
        self.vocab_size = self._sp.get_piece_size()
        if meta.get("vocab_size", self.vocab_size) != self.vocab_size:
            raise TokenizerError(f"{source}: model has {self.vocab_size} pieces, {META_FILE} says {meta['vocab_size']}")
        self.eot_token = meta.get("eot_token", EOT_TOKEN)
        self.eot_id = self._sp.piece_to_id(self.eot_token)
        if self._sp.id_to_piece(self.eot_id) != self.eot_token or self.eot_id != meta.get("eot_id", self.eot_id):
            raise TokenizerError(f"{source}: the model has no {self.eot_token!r} token at id {meta.get('eot_id')}")
        self._marker_ids = [self._sp.piece_to_id(f"<0x{b:02X}>") for b in WHITESPACE_MARKER.encode("utf-8")]

    @classmethod
    def load(cls, directory: str | os.PathLike, read: Callable[[str], bytes] | None = None) -> "Tokenizer":
        """Load from a directory: local or any Beam FileSystems URL such as gs://. `read` reads one
        file; by default local files are read without Beam (so the trainer can use it, Beam takes
        ~2 s to import) and URLs through Beam FileSystems; the pipeline reads every path through
        FileSystems (`common.fileio.read_bytes`)."""
        directory = str(directory)
        read = read or _read_local_or_remote
        meta_path = _join(directory, META_FILE)
        try:
            meta = json.loads(_read(meta_path, read))
        except UnicodeDecodeError:
            raise TokenizerError(f"{meta_path}: not UTF-8 text") from None
        except json.JSONDecodeError as e:
            raise TokenizerError(f"{meta_path}: not valid JSON ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
            raise TokenizerError(f"{meta_path}: not a tokenizer written by `python -m tokenizer train`")
        for key, kind in _META_TYPES.items():
            if key in meta and (not isinstance(meta[key], kind) or isinstance(meta[key], bool)):
                raise TokenizerError(f"{meta_path}: {key} must be {'a string' if kind is str else 'an integer'}, "
                                     f"got {meta[key]!r}")
        model_file = meta.get("model_file", MODEL_FILE)
        if model_file in ("", ".", "..") or "/" in model_file or "\\" in model_file:  # never open another file
            raise TokenizerError(f"{meta_path}: model_file must be a file name inside the tokenizer directory, "
                                 f"got {model_file!r}")
        return cls(_read(_join(directory, model_file), read), meta, directory)

    @property
    def processor(self) -> spm.SentencePieceProcessor:
        """The underlying SentencePiece processor (for id/piece lookups)."""
        return self._sp

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str], num_threads: int = 1) -> list[list[int]]:
        """Encode many texts in one SentencePiece call (its C++ loop, optionally threaded)."""
        encoded = self._sp.encode(list(texts), num_threads=num_threads)
        for i, text in enumerate(texts):
            if WHITESPACE_MARKER in text:
                encoded[i] = self._encode_with_literal_markers(text)
        return encoded

    def _encode_with_literal_markers(self, text: str) -> list[int]:
        parts = text.split(WHITESPACE_MARKER)
        ids: list[int] = []
        for k, piece_ids in enumerate(self._sp.encode(parts)):
            if k:
                ids.extend(self._marker_ids)
            ids.extend(piece_ids)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`; control tokens such as end-of-text decode to nothing."""
        return self._sp.decode([int(i) for i in ids])

    def id_to_piece(self, token_id: int) -> str:
        return self._sp.id_to_piece(int(token_id))

    def __repr__(self) -> str:
        return f"Tokenizer({self.source!r}, vocab_size={self.vocab_size}, eot_id={self.eot_id})"


# Fields of tokenizer_meta.json that the loader reads, with their types.
_META_TYPES = {"model_file": str, "model_sha256": str, "vocab_size": int, "eot_id": int, "eot_token": str}


def _is_url(path: str) -> bool:
    return "://" in path


def _join(directory: str, name: str) -> str:
    if _is_url(directory):
        from common.fileio import join  # Beam FileSystems only for remote paths (and ~2 s to import)

        return join(directory, name)
    return os.path.join(directory, name)


def _read_local_or_remote(path: str) -> bytes:
    if _is_url(path):
        from common.fileio import read_bytes

        return read_bytes(path)
    with open(path, "rb") as f:
        return f.read()


def _read(path: str, read: Callable[[str], bytes]) -> bytes:
    try:
        return read(path)
    except Exception as e:  # each FileSystems backend has its own "not found" error
        raise TokenizerError(f"cannot read {path}: {first_line(e)}; is it a directory written by "
                             f"`python -m tokenizer train`?") from None
