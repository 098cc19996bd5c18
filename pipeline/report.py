"""Render `report.html`: what a `clean` run did and why, from the files it wrote.

The page shows the funnel, drop reasons, languages and input files; for a few documents per reason
the decision that dropped them (`gopher_min_words: word_count 31 < 50`), near duplicates beside the
document they duplicate; kept documents; histograms of each rule's signal on kept and dropped
documents with the threshold drawn; and the command line, configuration, inputs and versions of the
run. `render_comparison` sets two runs side by side.

It is one self-contained page (inline CSS and SVG, no scripts, nothing to fetch), so it opens
offline. Every text from the data is HTML-escaped, and only http(s) URLs become links.

`sample_outputs` streams cleaned/ and rejected/ once each, keeping at most a fixed number of records
and values per reason, language and signal: those with the smallest stable hash of their id, so
the sample, and the page, are the same whatever the order of the files.
"""
from __future__ import annotations

import heapq
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from html import escape
from typing import Any, Iterator
from urllib.parse import urlsplit

from common.cli import first_line
from common.hashing import stable_hash
from pipeline.stages.dedup import EXACT_DUPLICATE, NEAR_DUPLICATE
from pipeline.text.verdict import describe, format_value

SNIPPET_CHARS = 300
EXAMPLES_PER_REASON = 3
KEPT_EXAMPLES_PER_LANG = 2
KEPT_EXAMPLE_LANGS = 8
VALUES_PER_SIGNAL = 2000
HISTOGRAM_BINS = 24
SOURCES_SHOWN = 50
LANGUAGES_SHOWN = 25
INPUTS_SHOWN = 20
_EXAMPLE_FIELDS = ("id", "source", "url", "stage", "reason", "decision", "duplicate_of", "error", "lang")
_NO_LANG = "(none)"

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1em}
table{border-collapse:collapse;width:100%}td,th{padding:.25em .6em;text-align:right;border-bottom:1px solid #eee}
td:first-child,th:first-child{text-align:left}td.path{word-break:break-all;width:45%}
.bar{background:#4a7bd0;height:.9em;display:inline-block}.drop{background:#d0704a}
.num{font-variant-numeric:tabular-nums;white-space:nowrap}.cell{width:35%;text-align:left}.left{text-align:left}
blockquote{margin:.3em 0 .8em;padding:.4em .8em;background:#f6f6f6;border-left:3px solid #d0704a;
white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px}blockquote.kept{border-left-color:#4a7bd0}
.muted{color:#777}.meta{overflow-wrap:anywhere}code,pre{font-size:12px;background:#f6f6f6;padding:.1em .3em}
pre{white-space:pre-wrap;overflow-wrap:anywhere;padding:.6em}.decision{font-family:monospace;color:#a33}
.plots{display:flex;flex-wrap:wrap;gap:1em}.plot{width:23em}.plot svg{width:100%;height:auto}
.up{color:#2a5db0}.down{color:#b0602a}
"""


class ReportError(Exception):
    """An output directory that cannot be reported on (missing, unfinished, unreadable)."""


@dataclass
class _BottomK:
    """The `k` items with the smallest keys seen so far: a seeded sample of bounded size."""

    k: int
    _heap: list = field(default_factory=list)  # (-key, tiebreak, item): the largest kept key on top

    def add(self, key: int, tiebreak: str, item: Any) -> None:
        entry = (-key, tiebreak, item)
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, entry)
        elif entry[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, entry)

    def items(self) -> list:
        return [item for _, _, item in sorted(self._heap, key=lambda e: (-e[0], e[1]))]


@dataclass
class OutputSample:
    """What the page shows of cleaned/ and rejected/ (see `sample_outputs`)."""

    rejected_examples: dict[str, list[dict]] = field(default_factory=dict)  # reason -> records
    kept_examples: dict[str, list[dict]] = field(default_factory=dict)  # language -> records
    partners: dict[str, dict] = field(default_factory=dict)  # id of a kept document -> it, for duplicates
    rules: dict[str, dict] = field(default_factory=dict)  # reason -> {signal, op, threshold} (or value)
    dropped_values: dict[str, list[float]] = field(default_factory=dict)  # reason -> its signal's values
    kept_values: dict[str, list[float]] = field(default_factory=dict)  # signal -> values on kept documents
    kept_counts: dict[str, int] = field(default_factory=dict)  # signal -> kept documents that carry it


def sample_outputs(out_dir: str) -> OutputSample:
    """Stream rejected/ then cleaned/ of a `clean` output, keeping a bounded sample of each."""
    sample = OutputSample()
    examples: dict[str, _BottomK] = defaultdict(lambda: _BottomK(EXAMPLES_PER_REASON))
    dropped: dict[str, _BottomK] = defaultdict(lambda: _BottomK(VALUES_PER_SIGNAL))
    for record in _records(out_dir, "rejected"):
        reason, key, doc_id = record.get("reason") or "", _sample_key(record), str(record.get("id"))
        trimmed = _trimmed(record)
        if record.get("duplicate_of"):  # whole, to measure its similarity to the kept partner
            trimmed["full_text"] = record.get("text") or ""
        examples[reason].add(key, doc_id, trimmed)
        decision = record.get("decision") or {}
        if decision:  # the rule itself: a comparison without this document's value, or what a property rule found
            rule = {k: v for k, v in decision.items() if k != "value"} if "threshold" in decision else decision
            sample.rules.setdefault(reason, rule)
        if _is_number(decision.get("value")) and _is_number(decision.get("threshold")):
            dropped[reason].add(key, doc_id, decision["value"])
    sample.rejected_examples = {reason: heap.items() for reason, heap in examples.items()}
    sample.dropped_values = {reason: heap.items() for reason, heap in dropped.items()}

    wanted_partners = {str(r["duplicate_of"]) for records in sample.rejected_examples.values()
                       for r in records if r.get("duplicate_of")}
    signals = {rule["signal"] for rule in sample.rules.values()}
    kept: dict[str, _BottomK] = defaultdict(lambda: _BottomK(VALUES_PER_SIGNAL))
    kept_examples: dict[str, _BottomK] = defaultdict(lambda: _BottomK(KEPT_EXAMPLES_PER_LANG))
    kept_counts: dict[str, int] = defaultdict(int)
    for doc in _records(out_dir, "cleaned"):
        key, doc_id = _sample_key(doc), str(doc.get("id"))
        kept_examples[doc.get("lang") or _NO_LANG].add(key, doc_id, _trimmed(doc))
        if doc_id in wanted_partners:
            sample.partners[doc_id] = {**_trimmed(doc), "full_text": doc.get("text") or ""}
        for signal in signals:
            if _is_number(doc.get(signal)):
                kept[signal].add(key, doc_id, doc[signal])
                kept_counts[signal] += 1
    sample.kept_examples = {lang: heap.items() for lang, heap in kept_examples.items()}
    sample.kept_values = {signal: heap.items() for signal, heap in kept.items()}
    sample.kept_counts = dict(kept_counts)
    return sample


def load_stats(out_dir: str) -> dict[str, Any]:
    """The stats.json of a finished `clean` output, or ReportError saying what is wrong."""
    from apache_beam.io.filesystems import FileSystems

    from common.fileio import join

    if not FileSystems.exists(join(out_dir, "stats.json")):
        # An object store (gs://, ...) has no folders to test for: there a folder is what it holds.
        if not (FileSystems.exists(out_dir) or FileSystems.match([join(out_dir, "**")])[0].metadata_list):
            raise ReportError(f"{out_dir} does not exist")
    return _load_output_json(out_dir, "stats.json", "stats", ("input_docs", "kept_docs", "rejected", "funnel"))


def load_timing(out_dir: str) -> dict[str, Any]:
    """The timing.json of a finished `clean` output, or ReportError saying what is wrong."""
    from pipeline.run_metrics import RUN_TIMING

    return _load_output_json(out_dir, RUN_TIMING, "timing", ("wall_seconds", "docs_per_second", "input_mb_per_second"))


def _load_output_json(out_dir: str, name: str, what: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object in `out_dir`/`name`, which must have `keys`, or ReportError saying what is wrong."""
    from apache_beam.io.filesystems import FileSystems

    from common.fileio import join, read_bytes

    path = join(out_dir, name)
    if not FileSystems.exists(path):
        raise ReportError(f"{out_dir} has no {name}: not the output of a finished `pipeline clean` run")
    try:
        figures = json.loads(read_bytes(path))
    except (OSError, ValueError) as error:
        raise ReportError(f"cannot read {path}: {error}") from None
    missing = [key for key in keys if key not in figures] if isinstance(figures, dict) else ["object"]
    if missing:
        raise ReportError(f"{path} is not a clean run's {what} (no {', '.join(missing)})")
    return figures


def build_report(out_dir: str, with_timing: bool = False) -> str:
    """The page for a finished `clean` output; `with_timing` adds how long the run took (timing.json),
    which makes the page differ from run to run."""
    stats = load_stats(out_dir)
    timing = load_timing(out_dir) if with_timing else None
    return render_report(stats, sample_outputs(out_dir), timing)


def write_report(out_dir: str, output: str | None = None, with_timing: bool = False) -> str:
    """Build `report.html` for a finished `clean` output (see `build_report`); returns where it was written."""
    from common.fileio import atomic_write, join

    path = output or join(out_dir, "report.html")
    atomic_write(path, build_report(out_dir, with_timing).encode("utf-8"))
    return path


def _records(out_dir: str, folder: str) -> Iterator[dict]:
    from apache_beam.io.filesystems import FileSystems

    from common.fileio import SHARD_GLOB, join
    from common.compressed import ReadError, decompressed_lines

    pattern = join(out_dir, folder, SHARD_GLOB)
    paths = sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)
    for path in paths:
        line_number = 0
        try:
            for line_number, line in enumerate(decompressed_lines(path), 1):
                if line.strip():
                    yield json.loads(line)
        except (OSError, ReadError, ValueError) as error:
            raise ReportError(f"cannot read {path} (after line {line_number}): {first_line(error)}") from None


def _sample_key(record: dict) -> int:
    return stable_hash(str(record.get("id")), seed=16)


def _trimmed(record: dict) -> dict:
    trimmed = {key: record[key] for key in _EXAMPLE_FIELDS if record.get(key) is not None}
    trimmed["text"] = (record.get("text") or "")[:SNIPPET_CHARS]
    return trimmed


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------- page


def render_report(stats: dict[str, Any], sample: OutputSample | None = None,
                  timing: dict[str, Any] | None = None) -> str:
    """The HTML page for `stats` (see `pipeline.stats`) and a sample of the outputs, and `timing`
    (timing.json) where given."""
    sample = sample or OutputSample()
    parts = [
        _head("Corpus cleaning report"),
        "<h1>Corpus cleaning report</h1>",
        f"<p><b>{stats['input_docs']:,}</b> documents in, <b>{stats['kept_docs']:,}</b> kept "
        f"({_percent(stats['kept_docs'], stats['input_docs'])}), "
        f"<b>{sum(stats['rejected'].values()):,}</b> rejected. "
        f"{_size(stats.get('input_bytes', 0))} in, {_size(stats.get('kept_bytes', 0))} kept.</p>",
        _funnel(stats), _reasons(stats, sample), _languages(stats), _sources(stats), _failed_downloads(stats),
        _histograms(stats, sample), _rejected_examples(stats, sample), _kept_examples(sample), _run(stats),
        _timing(timing) if timing else "", "</body></html>\n",
    ]
    return "".join(parts)


def _head(title: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width'><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>")


def _funnel(stats: dict[str, Any]) -> str:
    top = max((row["docs_in"] for row in stats["funnel"]), default=0) or 1
    rows = []
    for row in stats["funnel"]:
        rows.append(
            f"<tr><td>{escape(row['stage'])}</td><td class='num'>{row['docs_in']:,}</td>"
            f"<td class='num'>{row['docs_out']:,}</td><td class='num'>{row['docs_dropped']:,}</td>"
            f"<td class='num'>{_size(row['bytes_in'])}</td><td class='num'>{_size(row['bytes_out'])}</td>"
            f"<td class='cell'>{_bars(row['docs_out'], row['docs_dropped'], top)}</td></tr>")
    return ("<h2 id='funnel'>Funnel</h2><table><tr><th>stage</th><th>docs in</th><th>docs out</th><th>dropped</th>"
            "<th>bytes in</th><th>bytes out</th><th></th></tr>" + "".join(rows) + "</table>")


def _reasons(stats: dict[str, Any], sample: OutputSample) -> str:
    reasons = sorted(stats["rejected"].items(), key=lambda kv: (-kv[1], kv[0]))
    if not reasons:
        return "<h2>Drop reasons</h2><p class='muted'>Nothing was rejected.</p>"
    top = reasons[0][1]
    total = stats["input_docs"] or 1
    rows = []
    for reason, count in reasons:
        name = escape(reason)
        if reason in sample.rejected_examples:
            name = f"<a href='#{_anchor(reason)}'>{name}</a>"
        rule = sample.rules.get(reason)
        threshold = escape(_rule_text(rule) if rule else _duplicate_rule_text(reason, stats))
        rows.append(f"<tr><td>{name}</td><td class='left decision'>{threshold}</td><td class='num'>{count:,}</td>"
                    f"<td class='num'>{100 * count / total:.1f}%</td>"
                    f"<td class='cell'>{_bars(0, count, top)}</td></tr>")
    return ("<h2 id='reasons'>Drop reasons</h2><p class='muted'>A reason links to its examples; the rule shows "
            "which signal dropped a document and where the threshold lies.</p><table><tr><th>reason</th>"
            "<th class='left'>dropped when</th><th>docs</th><th>of input</th><th></th></tr>"
            + "".join(rows) + "</table>")


def _languages(stats: dict[str, Any]) -> str:
    kept_langs, dropped_langs = stats.get("languages", {}), stats.get("languages_dropped", {})
    langs = sorted(set(kept_langs) | set(dropped_langs),
                   key=lambda lang: (-kept_langs.get(lang, 0) - dropped_langs.get(lang, 0), lang))
    if not langs:
        return "<h2>Languages</h2><p class='muted'>No language was identified (the lang stage did not run).</p>"
    top = max(kept_langs.get(lang, 0) + dropped_langs.get(lang, 0) for lang in langs) or 1
    more = (f"<p class='muted'>… and {len(langs) - LANGUAGES_SHOWN:,} more languages (all are in stats.json).</p>"
            if len(langs) > LANGUAGES_SHOWN else "")
    rows = "".join(
        f"<tr><td>{escape(lang)}</td><td class='num'>{kept_langs.get(lang, 0):,}</td>"
        f"<td class='num'>{dropped_langs.get(lang, 0):,}</td>"
        f"<td class='cell'>{_bars(kept_langs.get(lang, 0), dropped_langs.get(lang, 0), top)}</td></tr>"
        for lang in langs[:LANGUAGES_SHOWN])
    return ("<h2 id='languages'>Languages</h2><p class='muted'>Kept: documents written to cleaned/. Dropped: "
            "removed by the language stage.</p><table><tr><th>language</th><th>kept</th>"
            "<th>dropped by language</th><th></th></tr>" + rows + "</table>" + more)


def _sources(stats: dict[str, Any]) -> str:
    sources = stats.get("sources")
    if sources is None:
        return ("<h2 id='sources'>Input files</h2><p class='muted'>This run's stats.json has no per-file counts "
                "(written by an older version).</p>")
    ordered = sorted(sources.items(), key=lambda kv: (-kv[1]["input_docs"], kv[0]))
    rows = []
    for source, counts in ordered[:SOURCES_SHOWN]:
        reasons = sorted(counts["rejected"].items(), key=lambda kv: (-kv[1], kv[0]))
        reason_text = ", ".join(f"{escape(reason)} {n:,}" for reason, n in reasons)
        rows.append(f"<tr><td class='path'>{_link_or_text(source)}</td><td class='num'>{counts['input_docs']:,}</td>"
                    f"<td class='num'>{counts['kept_docs']:,}</td><td class='left'>{reason_text}</td></tr>")
    more = (f"<p class='muted'>… and {len(ordered) - SOURCES_SHOWN:,} more files (all are in stats.json).</p>"
            if len(ordered) > SOURCES_SHOWN else "")
    return ("<h2 id='sources'>Input files</h2><table><tr><th>file</th><th>docs in</th><th>kept</th>"
            "<th class='left'>rejected, by reason</th></tr>" + "".join(rows) + "</table>" + more)


def _failed_downloads(stats: dict[str, Any]) -> str:
    failed = stats.get("failed_downloads") or []
    if not failed:
        return ""
    rows = "".join(f"<tr><td class='path'>{_link_or_text(item['url'])}</td>"
                   f"<td class='left'>{escape(str(item['error']))}</td></tr>" for item in failed)
    return "<h2>Failed downloads</h2><table><tr><th>url</th><th class='left'>error</th></tr>" + rows + "</table>"


def _histograms(stats: dict[str, Any], sample: OutputSample) -> str:
    plots = []
    for reason in sorted(sample.dropped_values, key=lambda r: (-stats["rejected"].get(r, 0), r)):
        rule = sample.rules[reason]
        plots.append(_histogram(reason, rule, sample.kept_values.get(rule["signal"], []),
                                sample.kept_counts.get(rule["signal"], 0),
                                sample.dropped_values.get(reason, []), stats["rejected"].get(reason, 0)))
    if not plots:
        return ""
    return ("<h2 id='signals'>Signals against their thresholds</h2><p class='muted'>For each rule that dropped "
            "documents: its signal on kept documents (blue) and on the documents it dropped (orange), "
            "scaled from a sample to all of them, with the threshold in red. Bars just across the line are "
            "what moving the threshold would keep or drop. Values beyond the range shown are counted in the "
            "end bins; documents dropped earlier by another rule are not shown.</p><div class='plots'>"
            + "".join(plots) + "</div>")


def _histogram(reason: str, rule: dict, kept: list[float], kept_total: int, dropped: list[float],
               dropped_total: int) -> str:
    threshold = float(rule["threshold"])
    values = sorted(kept + dropped)
    low = min(values[int(0.01 * (len(values) - 1))], threshold) if values else threshold - 1
    high = max(values[int(0.99 * (len(values) - 1))], threshold) if values else threshold + 1
    if high <= low:
        low, high = low - 0.5, high + 0.5
    # A threshold at an end of the range gets a little room, so its line stays inside the plot.
    room = (high - low) * 0.04
    low, high = low - room * (threshold == low), high + room * (threshold == high)

    def counts(sampled: list[float], total: int) -> list[float]:
        """Documents per bin, the sample scaled up to the `total` it was drawn from."""
        bins = [0.0] * HISTOGRAM_BINS
        for value in sampled:
            index = int((value - low) / (high - low) * HISTOGRAM_BINS)
            bins[min(max(index, 0), HISTOGRAM_BINS - 1)] += total / len(sampled)
        return bins

    kept_bins, dropped_bins = counts(kept, kept_total), counts(dropped, dropped_total)
    width, height, left, bottom = 320, 150, 6, 20
    plot_height = height - bottom - 16
    tallest = max(k + d for k, d in zip(kept_bins, dropped_bins)) or 1
    bin_width = (width - 2 * left) / HISTOGRAM_BINS
    shapes = []
    for i, (k, d) in enumerate(zip(kept_bins, dropped_bins)):
        x = left + i * bin_width
        kept_h, dropped_h = plot_height * k / tallest, plot_height * d / tallest
        base = height - bottom
        if kept_h:
            shapes.append(f"<rect x='{x:.1f}' y='{base - kept_h:.1f}' width='{bin_width - 1:.1f}' "
                          f"height='{kept_h:.1f}' fill='#4a7bd0'/>")
        if dropped_h:
            shapes.append(f"<rect x='{x:.1f}' y='{base - kept_h - dropped_h:.1f}' width='{bin_width - 1:.1f}' "
                          f"height='{dropped_h:.1f}' fill='#d0704a'/>")
    line_x = left + (threshold - low) / (high - low) * (width - 2 * left)
    anchor = "end" if line_x > width / 2 else "start"
    label_x = line_x - 3 if anchor == "end" else line_x + 3
    svg = (f"<svg viewBox='0 0 {width} {height}' role='img' aria-label='{escape(rule['signal'])} histogram'>"
           + "".join(shapes)
           + f"<line x1='{left}' y1='{height - bottom}' x2='{width - left}' y2='{height - bottom}' stroke='#999'/>"
           f"<line x1='{line_x:.1f}' y1='10' x2='{line_x:.1f}' y2='{height - bottom}' stroke='#d00' "
           f"stroke-width='2' stroke-dasharray='4 2'/>"
           f"<text x='{label_x:.1f}' y='20' font-size='11' fill='#d00' text-anchor='{anchor}'>"
           f"{escape(rule['op'])} {_number(threshold)}</text>"
           f"<text x='{left}' y='{height - 4}' font-size='10' fill='#555'>{_number(low)}</text>"
           f"<text x='{width - left}' y='{height - 4}' font-size='10' fill='#555' text-anchor='end'>"
           f"{_number(high)}</text>"
           f"<text x='{width - left if anchor == 'start' else left}' y='10' font-size='10' fill='#555' "
           f"text-anchor='{'end' if anchor == 'start' else 'start'}'>{tallest:,.0f} docs</text></svg>")
    return (f"<div class='plot'><b><a href='#{_anchor(reason)}'>{escape(reason)}</a></b>: "
            f"<span class='decision'>{escape(rule['signal'])}</span>{svg}<div class='muted'>kept {kept_total:,} "
            f"(sample {len(kept):,}) · dropped {dropped_total:,} (sample {len(dropped):,})</div></div>")


def _rejected_examples(stats: dict[str, Any], sample: OutputSample) -> str:
    if not sample.rejected_examples:
        return ""
    sections = ["<h2 id='examples'>Example rejections</h2>"]
    for reason in sorted(sample.rejected_examples, key=lambda r: (-stats["rejected"].get(r, 0), r)):
        sections.append(f"<h3 id='{_anchor(reason)}'>{escape(reason)} "
                        f"<span class='muted'>({stats['rejected'].get(reason, 0):,})</span></h3>")
        for record in sample.rejected_examples[reason]:
            lines = [_provenance(record)]
            if record.get("decision"):
                lines.append(f"<div class='decision'>{escape(reason)}: {escape(describe(record['decision']))}</div>")
            if record.get("error"):
                lines.append(f"<div class='decision'>{escape(str(record['error']))}</div>")
            lines.append(f"<blockquote>{escape(record.get('text') or '')}</blockquote>")
            if record.get("duplicate_of"):
                lines.append(_partner(record, sample, stats))
            sections.append("".join(lines))
    return "".join(sections)


def _partner(record: dict, sample: OutputSample, stats: dict[str, Any]) -> str:
    partner_id = str(record["duplicate_of"])
    partner = sample.partners.get(partner_id)
    if partner is None:
        return f"<div class='muted'>duplicate of {escape(partner_id)} (not among the kept documents)</div>"
    similarity = _jaccard(record, partner, stats)
    measured = f", Jaccard {similarity:.2f} of the texts as written" if similarity is not None else ""
    dedup = stats["run"]["config"]["dedup"] if similarity is not None else {}
    if similarity is not None and similarity < dedup["threshold"]:
        why = "other documents of their cluster join them"
        if dedup.get("line_dedup"):
            why += ", or line dedup has since removed lines"
        measured += f" (under {format_value(dedup['threshold'])}: {why})"
    return (f"<div class='muted'>duplicate of the kept document {escape(partner_id)}{measured}:</div>"
            f"<blockquote class='kept'>{escape(partner.get('text') or '')}</blockquote>")


def _jaccard(record: dict, partner: dict, stats: dict[str, Any]) -> float | None:
    """Similarity of a duplicate to its kept partner, by the run's own shingling settings. Dedup does
    not record it (a cluster may join two documents through others), so it is measured here, on
    the texts as written (line dedup, when on, may since have removed lines of the kept one)."""
    dedup = ((stats.get("run") or {}).get("config") or {}).get("dedup")
    text = record.get("full_text")
    if not dedup or text is None:
        return None
    from pipeline.text.shingles import jaccard, shingle_hashes

    def shingles(doc_text: str, lang: str | None):
        return shingle_hashes(doc_text, dedup["shingle_size"], dedup["char_shingle_size"], lang,
                              dedup["min_space_ratio"], chars_only=dedup["shingle_kind"] == "char")

    return jaccard(shingles(text, record.get("lang")), shingles(partner["full_text"], partner.get("lang")))


def _kept_examples(sample: OutputSample) -> str:
    if not sample.kept_examples:
        return ""
    langs = sorted(sample.kept_examples, key=lambda lang: (lang == _NO_LANG, lang))[:KEPT_EXAMPLE_LANGS]
    sections = ["<h2 id='kept'>Example kept documents</h2>"]
    for lang in langs:
        sections.append(f"<h3>{escape(lang)}</h3>")
        for record in sample.kept_examples[lang]:
            sections.append(_provenance(record) + f"<blockquote class='kept'>{escape(record.get('text') or '')}"
                            "</blockquote>")
    return "".join(sections)


def _provenance(record: dict) -> str:
    where = [escape(str(record.get("id")))]
    if record.get("url"):
        where.append(_link_or_text(str(record["url"])))
    if record.get("source"):
        where.append(_link_or_text(str(record["source"])))
    return f"<div class='muted meta'>{' · '.join(where)}</div>"


def _run(stats: dict[str, Any]) -> str:
    run = stats.get("run")
    if not run:
        return "<h2 id='run'>Run</h2><p class='muted'>This run's stats.json does not record how it was run.</p>"
    inputs = run.get("inputs") or []
    shown = "".join(f"<li>{_link_or_text(str(source))}</li>" for source in inputs[:INPUTS_SHOWN])
    more = f"<li class='muted'>… and {len(inputs) - INPUTS_SHOWN:,} more</li>" if len(inputs) > INPUTS_SHOWN else ""
    versions = "".join(f"<tr><td>{escape(name)}</td><td class='left'>{escape(str(version))}</td></tr>"
                       for name, version in (run.get("versions") or {}).items())
    config = escape(json.dumps(run.get("config"), indent=2, sort_keys=True, ensure_ascii=False))
    return (f"<h2 id='run'>Run</h2><p>Command line:</p><pre>{escape(str(run.get('command', '')))}</pre>"
            f"<p>Inputs ({len(inputs):,}):</p><ul>{shown}{more}</ul>"
            f"<table><tr><th>component</th><th class='left'>version</th></tr>{versions}</table>"
            f"<details><summary>Configuration, as resolved</summary><pre>{config}</pre></details>")


def _timing(timing: dict[str, Any]) -> str:
    """How long the run took (timing.json): unlike the rest of the page it differs from run to run."""
    steps = sorted((timing.get("step_seconds") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    step_rows = "".join(f"<tr><td>{escape(step)}</td><td class='num'>{seconds:,.2f}</td></tr>" for step, seconds in steps)
    step_table = (f"<table><tr><th>step</th><th>worker seconds</th></tr>{step_rows}</table>" if steps else
                  "<p class='muted'>The runner did not report time per step.</p>")
    return (f"<h2 id='timing'>Timing of this run</h2><p>Wall time <b>{timing['wall_seconds']:,.1f} s</b>: "
            f"{timing['docs_per_second']:,.1f} documents/s, {timing['input_mb_per_second']:,.2f} MB/s of input.</p>"
            f"{step_table}{_metrics(timing)}")


def _metrics(timing: dict[str, Any]) -> str:
    metrics = timing.get("metrics")
    if not metrics:
        return ""
    counters = "".join(f"<tr><td>{escape(namespace)}</td><td>{escape(name)}</td><td class='num'>{value:,}</td></tr>"
                       for namespace, names in metrics.get("counters", {}).items() for name, value in names.items())
    distributions = "".join(
        f"<tr><td>{escape(namespace)}</td><td>{escape(name)}</td><td class='num'>{d['count']:,}</td>"
        f"<td class='num'>{_number(d['min'])}</td><td class='num'>{_number(d['mean'])}</td>"
        f"<td class='num'>{_number(d['max'])}</td></tr>"
        for namespace, names in metrics.get("distributions", {}).items() for name, d in names.items())
    return ("<h3 id='metrics'>Beam metrics</h3>"
            f"<table><tr><th>namespace</th><th>counter</th><th>total</th></tr>{counters}</table>"
            "<p class='muted'>Distributions: the largest value is the memory (or group size) to watch as a corpus "
            "grows.</p><table><tr><th>namespace</th><th>distribution</th><th>count</th><th>min</th><th>mean</th>"
            f"<th>max</th></tr>{distributions}</table>")


# ------------------------------------------------------------------------------------------ compare


def render_comparison(stats_a: dict[str, Any], stats_b: dict[str, Any], name_a: str, name_b: str) -> str:
    """Two runs side by side: funnel, reasons, languages and configuration, with B − A deltas."""
    head = f"<tr><th>{{}}</th><th>{escape(name_a)}</th><th>{escape(name_b)}</th><th>change</th></tr>"

    def table(title: str, label: str, a: dict[str, int], b: dict[str, int], order: list[str]) -> str:
        rows = "".join(f"<tr><td>{escape(key)}</td><td class='num'>{a.get(key, 0):,}</td>"
                       f"<td class='num'>{b.get(key, 0):,}</td><td class='num'>{_delta(a.get(key, 0), b.get(key, 0))}"
                       f"</td></tr>" for key in order)
        return f"<h2>{title}</h2><table>{head.format(label)}{rows}</table>"

    def union(a: dict[str, int], b: dict[str, int]) -> list[str]:
        return sorted(set(a) | set(b), key=lambda key: (-max(a.get(key, 0), b.get(key, 0)), key))

    def stage_counts(stats: dict[str, Any]) -> dict[str, int]:
        return {row["stage"]: row["docs_out"] for row in stats["funnel"]}

    funnel_a, funnel_b = stage_counts(stats_a), stage_counts(stats_b)
    stages = list(dict.fromkeys([*funnel_a, *funnel_b]))
    totals = {"documents in": "input_docs", "kept": "kept_docs"}
    summary_a = {label: stats_a[key] for label, key in totals.items()}
    summary_b = {label: stats_b[key] for label, key in totals.items()}
    langs_a, langs_b = stats_a.get("languages", {}), stats_b.get("languages", {})
    return "".join([
        _head("Corpus cleaning runs compared"),
        f"<h1>Corpus cleaning runs compared</h1><p>A: <code>{escape(name_a)}</code><br>"
        f"B: <code>{escape(name_b)}</code></p>",
        table("Totals", "", summary_a, summary_b, list(totals)),
        table("Funnel: documents out of each stage", "stage", funnel_a, funnel_b, stages),
        table("Drop reasons", "reason", stats_a["rejected"], stats_b["rejected"],
              union(stats_a["rejected"], stats_b["rejected"])),
        table("Languages kept", "language", langs_a, langs_b, union(langs_a, langs_b)),
        _config_changes(stats_a, stats_b, name_a, name_b),
        "</body></html>\n",
    ])


def _config_changes(stats_a: dict[str, Any], stats_b: dict[str, Any], name_a: str, name_b: str) -> str:
    config_a = _flatten((stats_a.get("run") or {}).get("config") or {})
    config_b = _flatten((stats_b.get("run") or {}).get("config") or {})
    if not config_a or not config_b:
        return "<h2>Configuration</h2><p class='muted'>A run's stats.json does not record its configuration.</p>"
    changed = [key for key in sorted(set(config_a) | set(config_b)) if config_a.get(key) != config_b.get(key)]
    if not changed:
        return "<h2>Configuration</h2><p>Both runs used the same configuration.</p>"
    rows = "".join(f"<tr><td>{escape(key)}</td><td class='left'>{escape(json.dumps(config_a.get(key)))}</td>"
                   f"<td class='left'>{escape(json.dumps(config_b.get(key)))}</td><td></td></tr>" for key in changed)
    return (f"<h2>Configuration: what differs</h2><table><tr><th>key</th><th class='left'>{escape(name_a)}</th>"
            f"<th class='left'>{escape(name_b)}</th><th></th></tr>{rows}</table>")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _delta(a: int, b: int) -> str:
    """B − A; colored by direction only, as more of a count is good for some rows and bad for others."""
    if a == b:
        return "<span class='muted'>=</span>"
    relative = f" ({100 * (b - a) / a:+.1f}%)" if a else ""
    return f"<span class='{'up' if b > a else 'down'}'>{b - a:+,}{relative}</span>"


# ------------------------------------------------------------------------------------------ helpers


def _link_or_text(value: str) -> str:
    """An http(s) URL as a link; anything else (a path, a javascript: URL) as plain text."""
    text = escape(value)
    try:
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return text
    if scheme not in ("http", "https"):
        return text
    return f"<a href=\"{escape(value, quote=True)}\" rel='nofollow noopener noreferrer'>{text}</a>"


def _rule_text(rule: dict) -> str:
    """A rule as a condition: "word_count < 50", "lang not in de,en", "text contains '{'"."""
    if "threshold" in rule:
        return f"{rule['signal']} {rule['op']} {format_value(rule['threshold'])}"
    return describe(rule)


def _duplicate_rule_text(reason: str, stats: dict[str, Any]) -> str:
    """Dedup's rules, which drop by a document's cluster rather than by a signal of its own."""
    dedup = ((stats.get("run") or {}).get("config") or {}).get("dedup") or {}
    if reason == NEAR_DUPLICATE and "threshold" in dedup:
        return f"Jaccard ≥ {format_value(dedup['threshold'])} with a kept document"
    if reason == EXACT_DUPLICATE:
        return "same text as a kept document"
    return ""


def _anchor(reason: str) -> str:
    return "reason-" + re.sub(r"[^a-z0-9_-]", "-", reason.lower())


def _bars(kept: int, dropped: int, top: int) -> str:
    return (f"<span class='bar' style='width:{100 * kept / top:.1f}%'></span>"
            f"<span class='bar drop' style='width:{100 * dropped / top:.1f}%'></span>")


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return escape(str(value))


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TB"
