"""`python -m pipeline clean`: raw web data in, cleaned/ rejected/ stats.json report.html out."""
from __future__ import annotations

import argparse
import json
import sys
import time

from apache_beam.io.filesystems import FileSystems

from common import config_io
from common.cli import USAGE_ERROR, existing_path, fail, parse_key_values
from common.fileio import (COMPLETE_MARKER, SHARD_GLOB, atomic_write, delete_if_exists, delete_unlisted, join,
                           mark_complete, output_dir_problem, read_bytes, remove_temporary_files, shard_name)
from pipeline import dry_run
from pipeline.config import STAGES, CleanConfig, load_clean_config
from pipeline.progress import ProgressDisplay, RunProgress, announce_job
from pipeline.report import write_report
from pipeline.resume import plan_fingerprint
from pipeline.run_metrics import RUN_TIMING, beam_metrics, timing
from pipeline.runner import (in_one_process, is_local, make_pipeline, refuse_local_paths, unknown_beam_flags,
                             with_local_workers)
from pipeline.sources import SourceError, expand_sources
from pipeline.sources.formats import is_url
from pipeline.stages.journal import WorkFolder, find_done_units, record_plan
from pipeline.stats import describe_run, json_file_bytes
from pipeline.units import local_workers, plan_units

PROG = "pipeline clean"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True, metavar="SRC",
                        help="files, directories, globs, gs:// or http(s):// URLs, or @list.txt files of them")
    parser.add_argument("--output", required=True, metavar="OUT", help="output directory (any Beam FileSystems path)")
    parser.add_argument("--config", metavar="FILE", type=existing_path,
                        help="TOML file of CleanConfig settings (default: the built-in defaults)")
    parser.add_argument("--langs", help="languages to keep, e.g. en,de; 'all' keeps every language and labels it "
                        "(default: en, the config's lang.langs)")
    parser.add_argument("--stages", help=f"stages to run, from {','.join(STAGES)} (default: all)")
    parser.add_argument("--base-url", help="prefix for relative entries of @list files, e.g. "
                        "https://data.commoncrawl.org/ (default: none; relative entries are local paths)")
    parser.add_argument("--num-shards", type=int,
                        help=f"files in cleaned/ and rejected/ (default: output.num_shards, {CleanConfig().output.num_shards})")
    parser.add_argument("--workers", type=int, help="worker processes of a local run (default: 1 for local input "
                        "under work.one_worker_below_mb, 16 MB; else one per CPU core)")
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
    started = time.monotonic()   # the run's wall time includes building the graph (models load then)
    progress = RunProgress.start(sources) if is_local(beam_args) else None
    try:
        from pipeline.graph import WORK_DIR, build_clean, build_filter_pass, build_finish_pass
        from pipeline.stages.spill import remove_work_dir

        workers = local_workers(config.work, sources) if is_local(beam_args) else 1
        work_dir = join(out_dir, WORK_DIR)
        # A local run on local disk takes two passes (see `pipeline.graph`): the work units are
        # filtered and journaled in `workers` processes, so that a killed run resumes from the units
        # it finished; then this process replays the journals through dedup, the writers and the
        # counts. The second pass runs in one process: FnApiRunner runs every stage in parallel
        # parts, and a stage after a shuffle run so lost some of its records (993 of 48,312 on a 1 GB
        # WARC, one run in two). A remote runner retries its own work, and starts a cancelled job over.
        two_passes = is_local(beam_args) and "://" not in out_dir
        found = _work_folder(work_dir, sources, config, out_dir, workers) if two_passes else None
        first = make_pipeline(with_local_workers(beam_args, workers))
        try:
            if two_passes:
                build_filter_pass(first, sources, config, out_dir, workers, progress, found.done)
            else:
                build_clean(first, sources, config, out_dir, workers, progress)
        except config_io.ConfigError as e:  # stages check their settings and models while the graph is built
            return fail(PROG, str(e), USAGE_ERROR)
        if found:
            if found.other_plan:
                print(f"{PROG}: discarding the unfinished run in {work_dir}: its options or inputs differ",
                      file=sys.stderr)
                remove_work_dir(work_dir)
            elif found.done:
                print(f"{PROG}: resuming: {len(found.done)} of {found.units} work units already done", file=sys.stderr)
            record_plan(work_dir, found.fingerprint)
        # The marker goes first, so that from here until the end readers see an unfinished output.
        delete_if_exists([join(out_dir, "cleaned", COMPLETE_MARKER), join(out_dir, "stats.json"),
                          join(out_dir, RUN_TIMING), join(out_dir, "report.html")])
        counted = ["read", "extract", *(stage for stage in ("lang", "quality", "dedup") if stage in config.stages)]
        with ProgressDisplay(PROG, progress, counted, interval_s=config.work.progress_seconds):
            results = [_run(first, beam_args)]
            if two_passes:
                journaled = _work_folder(work_dir, sources, config, out_dir, workers)
                if len(journaled.done) != journaled.units:
                    raise RuntimeError(f"the first pass left {journaled.units - len(journaled.done)} of "
                                       f"{journaled.units} work units without a complete journal")
                second = make_pipeline(in_one_process(beam_args))
                build_finish_pass(second, sources, config, out_dir, workers, progress)
                results.append(_run(second, beam_args))
            wall_seconds = time.monotonic() - started
        stats = json.loads(read_bytes(join(out_dir, "stats.json")))
        # How long the run took, and what Beam's metrics counted (a resumed run does not re-count the
        # units it replays), differ from run to run: they go to a file of their own, so stats.json
        # stays byte-identical.
        run_timing = {**timing(results, stats, wall_seconds), "metrics": beam_metrics(results)}
        atomic_write(join(out_dir, RUN_TIMING), json_file_bytes(run_timing))
        written = {shard_name(i) for i in range(config.output.num_shards)}
        delete_unlisted([join(out_dir, sub, SHARD_GLOB) for sub in ("cleaned", "rejected")], written)
        remove_work_dir(join(out_dir, WORK_DIR))
        write_report(out_dir)
        mark_complete(join(out_dir, "cleaned"))
    except Exception as e:  # one line for the user; the traceback helps nobody who gave a bad file
        return fail(PROG, f"{type(e).__name__}: {e}")
    finally:
        remove_temporary_files([out_dir, join(out_dir, "*")])
        if progress is not None:
            progress.finish()
    rejected = sum(stats["rejected"].values())
    top = ", ".join(f"{reason} {n}" for reason, n in sorted(stats["rejected"].items(), key=lambda kv: -kv[1])[:4])
    print(f"clean: {stats['input_docs']} documents in, {stats['kept_docs']} kept, {rejected} rejected"
          f"{' (' + top + ')' if top else ''} in {run_timing['wall_seconds']:.1f}s "
          f"({run_timing['docs_per_second']:,.1f} docs/s, {run_timing['input_mb_per_second']:.2f} MB/s) → {out_dir}/cleaned, "
          f"report {out_dir}/report.html")
    return 0


def _run(pipeline, beam_args: list[str]):
    result = pipeline.run()
    announce_job(PROG, result, beam_args)
    result.wait_until_finish()
    return result


def _work_folder(work_dir: str, sources: list[str], config: CleanConfig, out_dir: str, workers: int) -> WorkFolder:
    """What an interrupted run of the same plan left in `work_dir` for this one (nothing is changed yet)."""
    def stamp(source: str) -> tuple[str, int | None, float | None]:
        found = [] if is_url(source) else [m for r in FileSystems.match([source]) for m in r.metadata_list]
        if len(found) != 1:  # a URL, or a folder saved by `datasets`: named, not stamped
            return source, None, None
        return source, found[0].size_in_bytes, found[0].last_updated_in_seconds

    run = describe_run(sources, config, out_dir)
    fingerprint = plan_fingerprint(run["config"], [stamp(source) for source in sources], run["versions"])
    return find_done_units(work_dir, fingerprint, plan_units(sources, config.work, workers))
