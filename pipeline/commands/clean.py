"""`python -m pipeline clean`: raw web data in, cleaned/ rejected/ stats.json report.html out."""
from __future__ import annotations

import argparse
import json
import time

from pipeline import config_io, dry_run
from pipeline.cli import USAGE_ERROR, fail, parse_key_values
from pipeline.config import STAGES, CleanConfig, load_clean_config
from pipeline.report import write_report
from pipeline.fileio import (COMPLETE_MARKER, delete_if_exists, delete_unlisted, join, mark_complete,
                             output_dir_problem, read_bytes, remove_temporary_files)
from pipeline.runner import is_local, make_pipeline, refuse_local_paths, unknown_beam_flags, with_local_workers
from pipeline.sources import SourceError, expand_sources
from pipeline.stages.write import SHARD_GLOB, shard_name
from pipeline.units import local_workers

PROG = "pipeline clean"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True, metavar="SRC",
                        help="files, directories, globs, gs:// or http(s):// URLs, or @list.txt files of them")
    parser.add_argument("--output", required=True, metavar="OUT", help="output directory (any Beam FileSystems path)")
    parser.add_argument("--config", metavar="FILE", help="TOML file of CleanConfig settings")
    parser.add_argument("--langs", help="languages to keep, e.g. en,de; 'all' keeps every language and labels it "
                        "(default: en, the config's lang.langs)")
    parser.add_argument("--stages", help=f"stages to run, from {','.join(STAGES)} (default: all)")
    parser.add_argument("--base-url", help="prefix for relative entries of @list files, e.g. https://data.commoncrawl.org/")
    parser.add_argument("--num-shards", type=int, help="files in cleaned/ and rejected/")
    parser.add_argument("--workers", type=int, help="worker processes of a local run (default: one per CPU core)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set quality.gopher_quality.min_words=20 (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print runner, options, inputs and stages, then exit without running (works offline)")
    parser.epilog = "Any other --flag is passed to Beam, e.g. --runner=DataflowRunner --project=... --region=..."


def build_config(args: argparse.Namespace) -> CleanConfig:
    overrides = parse_key_values(args.set, PROG)
    if args.stages is not None:
        overrides["stages"] = ",".join(s.strip() for s in args.stages.split(",") if s.strip())
    if args.langs is not None:
        overrides["lang.langs"] = args.langs
    if args.base_url is not None:
        overrides["read.base_url"] = args.base_url
    if args.num_shards is not None:
        overrides["output.num_shards"] = str(args.num_shards)
    if args.workers is not None:
        overrides["work.workers"] = str(args.workers)
    return load_clean_config(args.config, overrides)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    unknown = unknown_beam_flags(beam_args)
    if unknown:
        return fail(PROG, f"unrecognized arguments: {' '.join(unknown)}", USAGE_ERROR)
    try:
        config = build_config(args)
    except config_io.ConfigError as e:
        return fail(PROG, str(e), USAGE_ERROR)
    if args.dry_run:
        return dry_run.clean(PROG, args.input, config, args.output.rstrip("/"), beam_args)
    try:
        sources = expand_sources(args.input, config.read)
    except SourceError as e:
        return fail(PROG, str(e), USAGE_ERROR)
    if refused := refuse_local_paths(beam_args, [*sources, args.output]):
        return fail(PROG, refused, USAGE_ERROR)

    out_dir = args.output.rstrip("/")
    problem = output_dir_problem(out_dir, [*args.input, *sources])
    if problem:
        return fail(PROG, problem, USAGE_ERROR)
    started = time.time()
    try:
        from pipeline.graph import WORK_DIR, build_clean
        from pipeline.stages.spill import remove_work_dir

        workers = local_workers(config.work) if is_local(beam_args) else 1
        pipeline = make_pipeline(with_local_workers(beam_args, workers))
        try:
            build_clean(pipeline, sources, config, out_dir, workers)
        except config_io.ConfigError as e:  # stages check their settings and models while the graph is built
            return fail(PROG, str(e), USAGE_ERROR)
        # The marker goes first, so that from here until the end readers see an unfinished output.
        delete_if_exists([join(out_dir, "cleaned", COMPLETE_MARKER),
                          join(out_dir, "stats.json"), join(out_dir, "report.html")])
        pipeline.run().wait_until_finish()
        stats = json.loads(read_bytes(join(out_dir, "stats.json")))
        written = {shard_name(i) for i in range(config.output.num_shards)}
        delete_unlisted([join(out_dir, sub, SHARD_GLOB) for sub in ("cleaned", "rejected")], written)
        remove_work_dir(join(out_dir, WORK_DIR))
        write_report(out_dir)
        mark_complete(join(out_dir, "cleaned"))
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
