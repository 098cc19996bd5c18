"""Render `report.html`: the run's funnel, drop reasons, languages and example rejections.

One self-contained page (inline CSS, no scripts, no fonts or images to fetch) so it opens offline.
"""
from __future__ import annotations

from html import escape
from typing import Any

SNIPPET_CHARS = 300
EXAMPLES_PER_REASON = 3

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}td,th{padding:.25em .6em;text-align:right;border-bottom:1px solid #eee}
td:first-child,th:first-child{text-align:left}.bar{background:#4a7bd0;height:.9em;display:inline-block}
.drop{background:#d0704a}.num{font-variant-numeric:tabular-nums}.cell{width:40%;text-align:left}
blockquote{margin:.3em 0 .8em;padding:.4em .8em;background:#f6f6f6;border-left:3px solid #d0704a;
white-space:pre-wrap;font-size:12px}.muted{color:#777}
"""


def render_report(stats: dict[str, Any], examples: dict[str, list[dict[str, Any]]]) -> str:
    """The HTML page for `stats` (see `pipeline.stats`) and a few rejection records per reason."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Corpus cleaning report</title><style>", _STYLE, "</style></head><body>",
        "<h1>Corpus cleaning report</h1>",
        f"<p><b>{stats['input_docs']:,}</b> documents in, <b>{stats['kept_docs']:,}</b> kept "
        f"({_percent(stats['kept_docs'], stats['input_docs'])}), "
        f"<b>{sum(stats['rejected'].values()):,}</b> rejected. "
        f"{_size(stats['input_bytes'])} in, {_size(stats['kept_bytes'])} kept.</p>",
        _funnel(stats), _reasons(stats), _languages(stats), _failed_downloads(stats), _examples(stats, examples),
        "</body></html>\n",
    ]
    return "".join(parts)


def _funnel(stats: dict[str, Any]) -> str:
    top = max((row["docs_in"] for row in stats["funnel"]), default=0) or 1
    rows = []
    for row in stats["funnel"]:
        width = 100 * row["docs_out"] / top
        drop_width = 100 * row["docs_dropped"] / top
        rows.append(
            f"<tr><td>{escape(row['stage'])}</td><td class='num'>{row['docs_in']:,}</td>"
            f"<td class='num'>{row['docs_out']:,}</td><td class='num'>{row['docs_dropped']:,}</td>"
            f"<td class='num'>{_size(row['bytes_in'])}</td><td class='num'>{_size(row['bytes_out'])}</td>"
            f"<td class='cell'><span class='bar' style='width:{width:.1f}%'></span>"
            f"<span class='bar drop' style='width:{drop_width:.1f}%'></span></td></tr>")
    return ("<h2>Funnel</h2><table><tr><th>stage</th><th>docs in</th><th>docs out</th><th>dropped</th>"
            "<th>bytes in</th><th>bytes out</th><th></th></tr>" + "".join(rows) + "</table>")


def _reasons(stats: dict[str, Any]) -> str:
    reasons = sorted(stats["rejected"].items(), key=lambda kv: (-kv[1], kv[0]))
    if not reasons:
        return "<h2>Drop reasons</h2><p class='muted'>Nothing was rejected.</p>"
    top = reasons[0][1]
    total = stats["input_docs"] or 1
    rows = "".join(
        f"<tr><td>{escape(reason)}</td><td class='num'>{count:,}</td><td class='num'>{100 * count / total:.1f}%</td>"
        f"<td class='cell'><span class='bar drop' style='width:{100 * count / top:.1f}%'></span></td></tr>"
        for reason, count in reasons)
    return ("<h2>Drop reasons</h2><table><tr><th>reason</th><th>docs</th><th>of input</th><th></th></tr>"
            + rows + "</table>")


def _languages(stats: dict[str, Any]) -> str:
    langs = sorted(set(stats["languages"]) | set(stats["languages_dropped"]),
                   key=lambda lang: (-stats["languages"].get(lang, 0) - stats["languages_dropped"].get(lang, 0), lang))
    if not langs:
        return "<h2>Languages</h2><p class='muted'>No language was identified (the lang stage did not run).</p>"
    top = max(stats["languages"].get(lang, 0) + stats["languages_dropped"].get(lang, 0) for lang in langs) or 1
    rows = []
    for lang in langs:
        kept, dropped = stats["languages"].get(lang, 0), stats["languages_dropped"].get(lang, 0)
        rows.append(
            f"<tr><td>{escape(lang)}</td><td class='num'>{kept:,}</td><td class='num'>{dropped:,}</td>"
            f"<td class='cell'><span class='bar' style='width:{100 * kept / top:.1f}%'></span>"
            f"<span class='bar drop' style='width:{100 * dropped / top:.1f}%'></span></td></tr>")
    return ("<h2>Languages</h2><p class='muted'>Kept: documents written to cleaned/. Dropped: removed by the "
            "language stage.</p><table><tr><th>language</th><th>kept</th><th>dropped by language</th><th></th></tr>"
            + "".join(rows) + "</table>")


def _failed_downloads(stats: dict[str, Any]) -> str:
    failed = stats.get("failed_downloads") or []
    if not failed:
        return ""
    rows = "".join(f"<tr><td>{escape(item['url'])}</td><td>{escape(str(item['error']))}</td></tr>" for item in failed)
    return "<h2>Failed downloads</h2><table><tr><th>url</th><th>error</th></tr>" + rows + "</table>"


def _examples(stats: dict[str, Any], examples: dict[str, list[dict[str, Any]]]) -> str:
    if not examples:
        return ""
    sections = ["<h2>Example rejections</h2>"]
    for reason in sorted(examples, key=lambda r: (-stats["rejected"].get(r, 0), r)):
        sections.append(f"<h3>{escape(reason)}</h3>")
        for record in examples[reason][:EXAMPLES_PER_REASON]:
            where = record.get("url") or record.get("source") or ""
            detail = f" — duplicate of {escape(str(record['duplicate_of']))}" if record.get("duplicate_of") else ""
            snippet = (record.get("text") or record.get("error") or "")[:SNIPPET_CHARS]
            sections.append(f"<div class='muted'>{escape(str(record.get('id')))} · {escape(str(where))}{detail}</div>"
                            f"<blockquote>{escape(snippet)}</blockquote>")
    return "".join(sections)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TB"
