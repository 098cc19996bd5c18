"""Turn the tallies a `clean` run gathered into `stats.json` (pure; no Beam), and describe the run.

The pipeline emits small `(kind, key, value)` tallies from each stage; `assemble_stats` folds them
into one dict whose core obeys the invariant

    input_docs == kept_docs + sum(rejected.values())
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import platform
import shlex
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from pipeline.document import HTML_REF, TEXT_REF

# Tally kinds
STAGE_KEPT = "stage_kept"          # key: stage, value: (docs, bytes) that left the stage
STAGE_DROPPED = "stage_dropped"    # key: stage, value: (docs, bytes) the stage rejected
REASON = "reason"                  # key: reason, value: docs
KEPT_LANG = "kept_lang"            # key: language, value: docs kept
DROPPED_LANG = "dropped_lang"      # key: language, value: docs the language stage dropped
FAILED_URL = "failed_url"          # key: url, value: error message
SOURCE_KEPT = "source_kept"        # key: source, value: docs of it kept
SOURCE_REASON = "source_reason"    # key: (source, reason), value: docs of it rejected for reason

READ_STAGE = "read"


def document_bytes(doc: dict[str, Any]) -> int:
    """Size of what a document carries: its text, or its HTML before extraction."""
    for field, ref in (("text", TEXT_REF), ("html", HTML_REF)):
        if doc.get(ref):  # spilled (pipeline.stages.spill): its length is its UTF-8 size
            return doc[ref][2]
        if doc.get(field):
            return len(doc[field].encode("utf-8", "surrogatepass"))
    return 0


def assemble_stats(tallies: Iterable[tuple[str, str, Any]], stages: list[str]) -> dict[str, Any]:
    """Fold tallies into the stats dict. `stages` are the stages that ran, in order, after "read"."""
    kept: dict[str, tuple[int, int]] = {}
    dropped: dict[str, tuple[int, int]] = {}
    reasons: dict[str, int] = defaultdict(int)
    kept_langs: dict[str, int] = defaultdict(int)
    dropped_langs: dict[str, int] = defaultdict(int)
    failed_urls: dict[str, str] = {}
    sources: dict[str, dict[str, Any]] = defaultdict(lambda: {"input_docs": 0, "kept_docs": 0, "rejected": {}})
    for kind, key, value in tallies:
        if kind == STAGE_KEPT:
            kept[key] = _add(kept.get(key, (0, 0)), value)
        elif kind == STAGE_DROPPED:
            dropped[key] = _add(dropped.get(key, (0, 0)), value)
        elif kind == REASON:
            reasons[key] += value
        elif kind == KEPT_LANG:
            kept_langs[key] += value
        elif kind == DROPPED_LANG:
            dropped_langs[key] += value
        elif kind == FAILED_URL:
            failed_urls[key] = value
        elif kind == SOURCE_KEPT:
            sources[key]["kept_docs"] += value
            sources[key]["input_docs"] += value
        elif kind == SOURCE_REASON:
            source, reason = key
            rejected = sources[source]["rejected"]
            rejected[reason] = rejected.get(reason, 0) + value
            sources[source]["input_docs"] += value
    order = [READ_STAGE, *stages]
    read_docs, read_bytes = kept.get(READ_STAGE, (0, 0))
    read_dropped_docs, read_dropped_bytes = dropped.get(READ_STAGE, (0, 0))
    funnel = []
    docs_in, bytes_in = read_docs + read_dropped_docs, read_bytes + read_dropped_bytes
    for stage in order:
        docs_out, bytes_out = kept.get(stage, (0, 0))
        drop_docs, drop_bytes = dropped.get(stage, (0, 0))
        funnel.append({"stage": stage, "docs_in": docs_in, "docs_out": docs_out, "docs_dropped": drop_docs,
                       "bytes_in": bytes_in, "bytes_out": bytes_out, "bytes_dropped": drop_bytes})
        docs_in, bytes_in = docs_out, bytes_out
    return {
        "input_docs": funnel[0]["docs_in"],
        "kept_docs": funnel[-1]["docs_out"],
        "rejected": dict(sorted(reasons.items())),
        "input_bytes": funnel[0]["bytes_in"],
        "kept_bytes": funnel[-1]["bytes_out"],
        "stages": order,
        "funnel": funnel,
        "languages": dict(sorted(kept_langs.items(), key=lambda kv: (-kv[1], kv[0]))),
        "languages_dropped": dict(sorted(dropped_langs.items(), key=lambda kv: (-kv[1], kv[0]))),
        "failed_downloads": [{"url": url, "error": error} for url, error in sorted(failed_urls.items())],
        # Per input file (or URL): documents in, kept, and rejected per reason; input = kept + rejected.
        "sources": {source: {**counts, "rejected": dict(sorted(counts["rejected"].items()))}
                    for source, counts in sorted(sources.items())},
    }


def describe_run(sources: list[str], config: Any, out_dir: str, argv: list[str] | None = None) -> dict[str, Any]:
    """What a reader of the outputs needs to reproduce them: the command line, the configuration as
    resolved (defaults, file and overrides together), the inputs, and the versions that ran.

    The outputs of the same input and options are byte-identical whatever the runner and wherever
    they are written, so the command line leaves out Beam's options (runner, workers, project) and
    shows the output folder as OUT."""
    argv = sys.argv if argv is None else argv
    program = argv[0] if argv else ""
    if Path(program).name == "__main__.py":  # `python -m PACKAGE` leaves the module's path in argv[0]
        program = f"python -m {Path(program).parent.name}"
    config_dict = dataclasses.asdict(config)
    return {
        "command": " ".join([program, *map(shlex.quote, _content_arguments(argv[1:], out_dir))]).strip(),
        # `work` says how the run was executed (processes, spilling), never what it wrote
        "config": {section: value for section, value in config_dict.items() if section != "work"},
        "inputs": list(sources),
        "versions": {
            "python": platform.python_version(),
            "apache-beam": _package_version("apache-beam"),
            "webcorpus-gpt": _package_version("webcorpus-gpt"),
            "fasttext language model": _model_version(config_dict.get("lang", {}).get("model") or _bundled_lid_model()),
        },
    }


def _content_arguments(args: list[str], out_dir: str) -> list[str]:
    """`args` without Beam's own options, and with the output folder as OUT."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.runner import quiet_option_parsing

    with quiet_option_parsing():  # our own flags are "unparseable" to Beam, as expected
        beam_names = set(PipelineOptions(args).get_all_options(drop_default=True, retain_unknown_options=False))
    kept: list[str] = []
    beam_value_may_follow = False
    for arg in _without_execution_settings(args):
        if beam_value_may_follow and not arg.startswith("-"):
            beam_value_may_follow = False
            continue
        beam_value_may_follow = False
        if arg.startswith("--") and arg[2:].split("=", 1)[0].replace("-", "_") in beam_names:
            beam_value_may_follow = "=" not in arg
            continue
        if arg.rstrip("/") == out_dir.rstrip("/"):
            arg = "OUT"
        elif arg.startswith("--output=") and arg.split("=", 1)[1].rstrip("/") == out_dir.rstrip("/"):
            arg = "--output=OUT"
        kept.append(arg)
    return kept


def _without_execution_settings(args: list[str]) -> list[str]:
    """`args` without `--workers N` and `--set work.KEY=VALUE`: how many processes ran and whether texts
    were spilled change nothing in the outputs."""
    kept: list[str] = []
    remaining = iter(args)
    for arg in remaining:
        if arg == "--workers":
            next(remaining, None)
        elif arg == "--set":
            value = next(remaining, "")
            if not value.startswith("work."):
                kept += [arg, value]
        elif not (arg.startswith("--workers=") or arg.startswith("--set=work.")):
            kept.append(arg)
    return kept


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _bundled_lid_model() -> str:
    from pipeline.text.lang import BUNDLED_MODEL

    return str(BUNDLED_MODEL)


def _model_version(path: str) -> str:
    """A model file's name and the start of its SHA-256 (remote models: the path alone)."""
    local = Path(path)
    if not local.is_file():
        return path
    digest = hashlib.sha256(local.read_bytes()).hexdigest()[:12]
    return f"{local.name} sha256:{digest}"


def json_file_bytes(figures: dict[str, Any]) -> bytes:
    """The bytes of a JSON output file (`stats.json`, `timing.json`): keys sorted, so the same
    figures always give the same file."""
    return (json.dumps(figures, indent=2, sort_keys=True) + "\n").encode()


def check_invariant(stats: dict[str, Any]) -> None:
    """Raise if documents were lost or invented between input and output."""
    accounted = stats["kept_docs"] + sum(stats["rejected"].values())
    if stats["input_docs"] != accounted:
        raise AssertionError(f"document accounting is off: {stats['input_docs']} in, {accounted} kept or rejected")


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]
