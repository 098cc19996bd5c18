"""`python -m pipeline clean`: raw web data in, cleaned/ rejected/ stats.json report.html out."""
from __future__ import annotations

import argparse
import json
import logging
import time

from pipeline import config_io
from pipeline.cli import USAGE_ERROR, fail, parse_key_values
from pipeline.config import STAGES, CleanConfig
from pipeline.report import write_report
from pipeline.fileio import delete_unlisted, join, read_bytes, remove_temporary_files
from pipeline.runner import make_pipeline, unknown_beam_flags
from pipeline.sources import SourceError, expand_sources
from pipeline.stages.write import SHARD_GLOB, shard_name

PROG = "pipeline clean"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True, metavar="SRC",
                        help="files, directories, globs, gs:// or http(s):// URLs, or @list.txt files of them")
    parser.add_argument("--output", required=True, metavar="OUT", help="output directory (any Beam FileSystems path)")
    parser.add_argument("--config", metavar="FILE", help="TOML file of CleanConfig settings")
    parser.add_argument("--langs", help="languages to keep, e.g. en,de; 'all' keeps every language and labels it")
    parser.add_argument("--stages", help=f"stages to run, from {','.join(STAGES)} (default: all)")
    parser.add_argument("--base-url", help="prefix for relative entries of @list files, e.g. https://data.commoncrawl.org/")
    parser.add_argument("--num-shards", type=int, help="files in cleaned/ and rejected/")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set quality.gopher_quality.min_words=20 (repeatable)")
    parser.epilog = "Any other --flag is passed to Beam, e.g. --runner=DataflowRunner --project=... --region=..."


def build_config(args: argparse.Namespace) -> CleanConfig:
    overrides = parse_key_values(args.set, PROG)
    if args.stages is not None:
        stages = [s.strip() for s in args.stages.split(",") if s.strip()]
        unknown = [s for s in stages if s not in STAGES]
        if unknown or not stages:
            raise config_io.ConfigError(f"unknown stage {unknown[0] if unknown else '(none)'!r}; "
                                        f"choose from {','.join(STAGES)}")
        overrides["stages"] = ",".join(stages)
    if args.langs is not None:
        overrides["lang.langs"] = args.langs
    if args.base_url is not None:
        overrides["read.base_url"] = args.base_url
    if args.num_shards is not None:
        overrides["output.num_shards"] = str(args.num_shards)
    config = config_io.load(CleanConfig, args.config, overrides)
    if config.output.num_shards < 1:
        raise config_io.ConfigError(f"output.num_shards must be at least 1, got {config.output.num_shards}")
    return config


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    unknown = unknown_beam_flags(beam_args)
    if unknown:
        return fail(PROG, f"unrecognized arguments: {' '.join(unknown)}", USAGE_ERROR)
    try:
        config = build_config(args)
    except config_io.ConfigError as e:
        return fail(PROG, str(e), USAGE_ERROR)
    try:
        sources = expand_sources(args.input, config.read)
    except SourceError as e:
        return fail(PROG, str(e), USAGE_ERROR)

    out_dir = args.output.rstrip("/")
    started = time.time()
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    try:
        from pipeline.graph import build_clean

        pipeline = make_pipeline(beam_args)
        try:
            build_clean(pipeline, sources, config, out_dir)
        except config_io.ConfigError as e:  # stages check their settings and models while the graph is built
            return fail(PROG, str(e), USAGE_ERROR)
        pipeline.run().wait_until_finish()
        stats = json.loads(read_bytes(join(out_dir, "stats.json")))
        written = {shard_name(i) for i in range(config.output.num_shards)}
        delete_unlisted([join(out_dir, sub, SHARD_GLOB) for sub in ("cleaned", "rejected")], written)
        write_report(out_dir)
    except Exception as e:  # one line for the user; the traceback helps nobody who gave a bad file
        return fail(PROG, f"{type(e).__name__}: {e}")
    finally:
        remove_temporary_files([out_dir, join(out_dir, "*")])
    rejected = sum(stats["rejected"].values())
    top = ", ".join(f"{reason} {n}" for reason, n in sorted(stats["rejected"].items(), key=lambda kv: -kv[1])[:4])
    print(f"clean: {stats['input_docs']} documents in, {stats['kept_docs']} kept, {rejected} rejected"
          f"{' (' + top + ')' if top else ''} in {time.time() - started:.1f}s → {out_dir}/cleaned, "
          f"report {out_dir}/report.html")
    return 0
