"""Turn the tallies a `clean` run gathered into `stats.json` (pure; no Beam).

The pipeline emits small `(kind, key, value)` tallies from each stage; `assemble_stats` folds them
into one dict whose core obeys the invariant

    input_docs == kept_docs + sum(rejected.values())
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

# Tally kinds
STAGE_KEPT = "stage_kept"          # key: stage, value: (docs, bytes) that left the stage
STAGE_DROPPED = "stage_dropped"    # key: stage, value: (docs, bytes) the stage rejected
REASON = "reason"                  # key: reason, value: docs
KEPT_LANG = "kept_lang"            # key: language, value: docs kept
DROPPED_LANG = "dropped_lang"      # key: language, value: docs the language stage dropped
FAILED_URL = "failed_url"          # key: url, value: error message
EXAMPLES = "examples"              # key: reason, value: a few rejection records

READ_STAGE = "read"


def document_bytes(doc: dict[str, Any]) -> int:
    """Size of what a document carries: its text, or its HTML before extraction."""
    if doc.get("text_ref"):  # a spilled text: its length is its UTF-8 size
        return doc["text_ref"][2]
    return len((doc.get("text") or doc.get("html") or "").encode("utf-8", "surrogatepass"))


def assemble_stats(tallies: Iterable[tuple[str, str, Any]], stages: list[str]) -> dict[str, Any]:
    """Fold tallies into the stats dict. `stages` are the stages that ran, in order, after "read"."""
    kept: dict[str, tuple[int, int]] = {}
    dropped: dict[str, tuple[int, int]] = {}
    reasons: dict[str, int] = defaultdict(int)
    kept_langs: dict[str, int] = defaultdict(int)
    dropped_langs: dict[str, int] = defaultdict(int)
    failed_urls: dict[str, str] = {}
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
    }


def check_invariant(stats: dict[str, Any]) -> None:
    """Raise if documents were lost or invented between input and output."""
    accounted = stats["kept_docs"] + sum(stats["rejected"].values())
    if stats["input_docs"] != accounted:
        raise AssertionError(f"document accounting is off: {stats['input_docs']} in, {accounted} kept or rejected")


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]
