"""`python -m pipeline inspect SHARDS --doc K | --tokens START:END`: decode shard contents back to text."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from common.cli import USAGE_ERROR, existing_path, fail
from common.shard_format import Shard, ShardFormatError, load_manifest, locate_document

PROG = "pipeline inspect"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", metavar="SHARDS", type=existing_path, help="directory written by `pipeline tokenize`")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--doc", type=int, metavar="K",
                      help="print document K (0-based; shards in manifest order, documents in shard order)")
    what.add_argument("--tokens", metavar="START:END",
                      help="print tokens [START, END) of all shards laid end to end in manifest order")
    parser.add_argument("--ids", action="store_true", help="print token ids and pieces instead of decoded text")
    parser.add_argument("--tokenizer", metavar="TOK", type=existing_path,
                        help="tokenizer directory (default: the one the manifest names; its sha256 must match)")


def parse_range(text: str) -> tuple[int, int]:
    start, sep, end = text.partition(":")
    try:
        start_at, end_at = int(start), int(end)
    except ValueError:
        raise ValueError(f"--tokens expects START:END (integers), got {text!r}") from None
    if not sep or start_at < 0 or end_at < start_at:
        raise ValueError(f"--tokens expects 0 <= START <= END, got {text!r}")
    return start_at, end_at


def read_token_range(shard_dir: str, manifest: dict, start: int, end: int) -> np.ndarray:
    """Tokens [start, end) of the shards laid end to end in manifest order."""
    total = sum(entry["num_tokens"] for entry in manifest["shards"])
    if end > total:
        raise IndexError(f"token range {start}:{end} is out of range: the shards hold {total} tokens")
    pieces, offset = [], 0
    for entry in manifest["shards"]:
        lo, hi = max(start - offset, 0), min(end - offset, entry["num_tokens"])
        if lo < hi:
            shard = Shard(Path(shard_dir) / entry["file"], Path(shard_dir) / entry["index"])
            pieces.append(np.asarray(shard.tokens[lo:hi]))
        offset += entry["num_tokens"]
    return np.concatenate(pieces) if pieces else np.zeros(0, np.int64)


def load_tokenizer(manifest: dict, override: str | None):
    from tokenizer import Tokenizer, TokenizerError

    recorded = manifest.get("tokenizer") or {}
    path = override or recorded.get("path")
    if not path:
        raise TokenizerError("the manifest names no tokenizer; pass --tokenizer TOK")
    tokenizer = Tokenizer.load(path)
    expected = recorded.get("model_sha256")
    if expected and tokenizer.model_sha256 != expected:
        raise TokenizerError(f"{path} is not the tokenizer these shards were made with "
                             f"(model sha256 {tokenizer.model_sha256[:12]}..., manifest {expected[:12]}...)")
    return tokenizer


def run(args: argparse.Namespace) -> int:
    from tokenizer import TokenizerError

    if args.doc is not None and args.doc < 0:
        return fail(PROG, f"--doc must be 0 or more, got {args.doc}", USAGE_ERROR)
    try:
        span = parse_range(args.tokens) if args.tokens is not None else None
    except ValueError as e:
        return fail(PROG, str(e), USAGE_ERROR)
    try:
        manifest = load_manifest(args.shards)
        if span is None:
            entry, k = locate_document(manifest, args.doc)
            tokens = Shard(Path(args.shards) / entry["file"], Path(args.shards) / entry["index"]).document(k)
        else:
            tokens = read_token_range(args.shards, manifest, *span)
        tokenizer = load_tokenizer(manifest, args.tokenizer)
    except (ShardFormatError, TokenizerError, IndexError, OSError) as e:
        return fail(PROG, str(e))
    if args.ids:
        for token in tokens:
            print(f"{int(token)}\t{tokenizer.id_to_piece(int(token))}")
    else:
        print(tokenizer.decode(tokens))
    return 0
