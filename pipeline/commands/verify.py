"""`python -m pipeline verify SHARDS`: exit 0 only if every shard, index, header and checksum is sound."""
from __future__ import annotations

import argparse

from tqdm import tqdm

from common.cli import existing_path, fail
from common.shard_format import ShardFormatError, load_manifest, verify_shard_dir

PROG = "pipeline verify"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", metavar="SHARDS", type=existing_path, help="directory written by `pipeline tokenize`")


def run(args: argparse.Namespace) -> int:
    try:
        total = len(load_manifest(args.shards)["shards"])
        # disable=None: no bar when stderr is not a terminal, so an error stays one line in logs
        with tqdm(total=total, desc="verify", unit="shard", leave=False, disable=None) as progress:
            manifest = verify_shard_dir(args.shards, on_shard=lambda entry: progress.update())
    except ShardFormatError as e:
        return fail(PROG, str(e))
    shards = manifest["shards"]
    docs, tokens = sum(e["num_docs"] for e in shards), sum(e["num_tokens"] for e in shards)
    splits = ", ".join(f"{split} {n}" for split, n in _count_by_split(shards).items())
    print(f"verify: OK: {len(shards)} shards ({splits}), {docs} documents, {tokens} tokens, "
          f"vocab {manifest.get('vocab_size')}, checksums match")
    return 0


def _count_by_split(shards: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in shards:
        counts[entry["split"]] = counts.get(entry["split"], 0) + 1
    return counts
