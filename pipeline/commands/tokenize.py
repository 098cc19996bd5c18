"""`python -m pipeline tokenize`: cleaned/ documents → train/val token shards + manifest.json."""
from __future__ import annotations

import argparse
import json
import os
import time

import apache_beam as beam

from common.cli import USAGE_ERROR, existing_path, fail
from common.fileio import (delete_if_exists, delete_unlisted, ensure_dir, join, output_dir_problem, read_bytes,
                           remove_temporary_files)
from common.shard_format import MANIFEST_NAME, SPLITS
from pipeline import dry_run
from pipeline.config import TokenizeConfig
from pipeline.progress import LINE_EVERY_S, ProgressDisplay, RunProgress, announce_job, count_progress
from pipeline.runner import is_local, make_pipeline, refuse_local_paths, unknown_beam_flags
from pipeline.stages.tokenize import TokenizerIdentity, TokenizeToShards
from tokenizer import Tokenizer, TokenizerError
from tokenizer.corpus import InputError, cleaned_files, cleaned_pattern

PROG = "pipeline tokenize"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TokenizeConfig()
    parser.add_argument("--input", required=True, metavar="CLEANED", type=existing_path,
                        help="cleaned/ directory written by `pipeline clean` (or a glob of its files); gs:// works")
    parser.add_argument("--tokenizer", required=True, metavar="TOK", type=existing_path, help="directory written by `tokenizer train`")
    parser.add_argument("--output", required=True, metavar="SHARDS", help="directory for the shards and manifest.json")
    parser.add_argument("--num-shards", type=int, help="number of train shards (default: sized by --shard-tokens)")
    parser.add_argument("--shard-tokens", type=int, default=defaults.shard_tokens,
                        help="target tokens per shard when --num-shards is not given")
    parser.add_argument("--val-fraction", type=float, default=defaults.val_fraction,
                        help="share of documents in the val split")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help="documents per encoding call")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the split and shard hashes")
    parser.add_argument("--dry-run", action="store_true",
                        help="print runner, options, inputs and stages, then exit without running (works offline)")
    parser.epilog = "Any other --flag is passed to Beam, e.g. --runner=DataflowRunner --project=... --region=..."


def run(args: argparse.Namespace, beam_args: list[str] | None = None) -> int:
    beam_args = list(beam_args or [])
    unknown = unknown_beam_flags(beam_args)
    if unknown:
        return fail(PROG, f"unrecognized arguments: {' '.join(unknown)}", USAGE_ERROR)
    config = TokenizeConfig(val_fraction=args.val_fraction, num_shards=args.num_shards,
                            shard_tokens=args.shard_tokens, batch_size=args.batch_size, seed=args.seed)
    if refused := refuse_local_paths(beam_args, [args.input, args.tokenizer, args.output]):
        return fail(PROG, refused, USAGE_ERROR)
    if args.dry_run:
        try:
            config.validate()
        except ValueError as e:
            return fail(PROG, str(e), USAGE_ERROR)
        return dry_run.tokenize(PROG, args.input, args.tokenizer, args.output.rstrip("/"), config, beam_args)
    # after the dry run, which must not touch a remote --output
    problem = output_dir_problem(args.output, [args.input, args.tokenizer])
    if problem:
        return fail(PROG, problem, USAGE_ERROR)
    try:
        config.validate()
        cleaned_files(args.input)
        tokenizer_path = args.tokenizer if "://" in args.tokenizer else os.path.abspath(args.tokenizer)
        tokenizer = Tokenizer.load(tokenizer_path, read=read_bytes)
    except (ValueError, InputError, TokenizerError) as e:
        return fail(PROG, str(e), USAGE_ERROR)
    identity = TokenizerIdentity(tokenizer_path, tokenizer.model_sha256, tokenizer.vocab_size, tokenizer.eot_id)

    out_dir = args.output.rstrip("/")
    started = time.time()
    try:
        # The manifest is the completion marker: gone first, written last (by TokenizeToShards).
        delete_if_exists([join(out_dir, MANIFEST_NAME)])
        manifest = tokenize(args.input, out_dir, identity, config, beam_args)
        listed = {name for entry in manifest["shards"] for name in (entry["file"], entry["index"])}
        delete_unlisted([join(out_dir, f"{split}-*.{ext}") for split in SPLITS for ext in ("bin", "idx")], listed)
    except Exception as e:  # one line for the user; the traceback helps nobody who gave a bad file
        return fail(PROG, f"{type(e).__name__}: {e}")
    finally:
        remove_temporary_files([out_dir])
    splits = manifest["splits"]
    if not splits:
        return fail(PROG, f"no documents in {args.input}: nothing to tokenize")
    parts = ", ".join(f"{split} {s['num_docs']} docs / {s['num_tokens']} tokens in {s['shards']} "
                      f"shard{'s' if s['shards'] != 1 else ''}"
                      for split, s in splits.items())
    print(f"tokenize: {parts} ({manifest['dtype']}, vocab {manifest['vocab_size']}) in "
          f"{time.time() - started:.1f}s → {join(out_dir, MANIFEST_NAME)}")
    return 0


def tokenize(input_path: str, out_dir: str, identity: TokenizerIdentity, config: TokenizeConfig,
             beam_args: list[str], progress_seconds: float = LINE_EVERY_S) -> dict:
    """Run the tokenize pipeline and return the manifest it wrote; a local run shows how many documents
    it read so far (a bar at a terminal, else a line every `progress_seconds`)."""
    ensure_dir(out_dir)
    pipeline = make_pipeline(beam_args)
    # Lines of gzipped files give no byte count to measure against: documents read is the measure.
    progress = RunProgress.start([]) if is_local(beam_args) else None
    try:
        build_tokenize(pipeline, input_path, out_dir, identity, config, progress)
        with ProgressDisplay(PROG, progress, ["read"], interval_s=progress_seconds):
            result = pipeline.run()
            announce_job(PROG, result, beam_args)
            result.wait_until_finish()
    finally:
        if progress is not None:
            progress.finish()
    return json.loads(read_bytes(join(out_dir, MANIFEST_NAME)))


def build_tokenize(pipeline: beam.Pipeline, input_path: str, out_dir: str, identity: TokenizerIdentity,
                   config: TokenizeConfig, progress: RunProgress | None = None) -> None:
    # validate=False: the files were listed already (a dry run lists no remote path)
    lines = pipeline | "ReadCleaned" >> beam.io.ReadFromText(cleaned_pattern(input_path), validate=False)
    _ = count_progress(lines, progress, "read", "ReadProgress") | "Tokenize" >> TokenizeToShards(out_dir, identity, config)

