"""`python -m pipeline report OUT [--compare OTHER_OUT] [--output FILE] [--with-timing]`: rebuild a clean run's report.html
from its stats.json, cleaned/ and rejected/, or set two runs side by side."""
from __future__ import annotations

import argparse

from common.cli import existing_path, fail
from common.fileio import atomic_write, join
from pipeline.report import ReportError, load_stats, render_comparison, write_report

PROG = "pipeline report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", type=existing_path, help="output directory of a finished `pipeline clean` run")
    parser.add_argument("--compare", metavar="OTHER_OUT", type=existing_path,
                        help="a second clean output: write a side-by-side comparison (OUT as A, OTHER_OUT as B) "
                             "instead of OUT's report")
    parser.add_argument("--output", metavar="FILE",
                        help="where to write the page (default: OUT/report.html, or OUT/compare.html with --compare)")
    parser.add_argument("--with-timing", action="store_true",
                        help="add how long the run took (OUT/timing.json); the page then differs from run to run")


def run(args: argparse.Namespace) -> int:
    out_dir = args.out.rstrip("/")
    try:
        if args.compare is None:
            path = write_report(out_dir, args.output, args.with_timing)
        else:
            other_dir = args.compare.rstrip("/")
            page = render_comparison(load_stats(out_dir), load_stats(other_dir), out_dir, other_dir)
            path = args.output or join(out_dir, "compare.html")
            atomic_write(path, page.encode("utf-8"))
    except ReportError as error:
        return fail(PROG, str(error))
    except OSError as error:  # e.g. --output in a folder that cannot be written
        return fail(PROG, f"{type(error).__name__}: {error}")
    print(f"report: {path}")
    return 0
