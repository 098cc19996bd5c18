"""Extraction settings judged on pages whose right answer is known: content kept, duplicates kept,
junk kept, documents/s.

    PYTHONPATH=. python bench/labelled.py            # the table, on bench/data/labelled/
    PYTHONPATH=. python bench/labelled.py --rebuild  # rewrite the data from the repository's real files

The data (see bench/data/labelled/README.md) is built as a user builds a regression set: real news
articles (known main text) put into the main block of real web pages, in place of that page's own
paragraphs, so every menu, sidebar and footer around them is real template; plus known exact and
near duplicates of those articles and known junk (templates with the article block emptied,
cookie walls, lorem ipsum, error pages, pages in other languages). labels.jsonl says what each
page is.

Each configuration runs the real `python -m pipeline clean --langs en` (in this process, one
worker, after a warm-up run, so imports and model loads are not counted) and is judged on the
kept documents:
  content kept   share of the articles' known paragraphs found in the kept text of their page or
                 of a kept copy of it
  articles       articles kept at all (their page or a copy)
  extra text     share of kept characters of article pages that are not known paragraphs (template)
  dups kept      kept copies of an article beyond the first (the right answer is 0)
  junk kept      junk pages kept (the right answer is 0)
  clean docs/s   pages / wall time of the whole run (all stages)
  extract docs/s pages / CPU time of extraction alone
The pre-pass rows do not change the product: a cheap language guess (the page's `<html lang>`, or
fastText on resiliparse's text) drops pages before the full extraction; pages it drops count as
lost, and its cost is added to the extraction time of the pages it lets through.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import random
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "bench/data/labelled"
PAGES = DATA / "pages.warc.gz"
LABELS = DATA / "labels.jsonl"
SAMPLE = REPO / "data/sample"
ARTICLES = 60

CONFIGS = {
    "trafilatura (fast=true)": ["--set", "extract.extractor=trafilatura"],
    "trafilatura, fallbacks on (fast=false)": ["--set", "extract.extractor=trafilatura", "--set", "extract.fast=false"],
    "trafilatura, favor=precision": ["--set", "extract.extractor=trafilatura", "--set", "extract.favor=precision"],
    "resiliparse as is": ["--set", "extract.extractor=resiliparse", "--set", "extract.strip_boilerplate=false"],
    "resiliparse + boilerplate lines stripped (default)": ["--set", "extract.extractor=resiliparse",
                                                 "--set", "extract.strip_boilerplate=true"],
}
PREPASS_BASE = "trafilatura (fast=true)"


# ---------------------------------------------------------------- building the data

def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if s.strip()]


def _paragraphs(text: str, per: int = 3) -> list[str]:
    sentences = _sentences(text)
    return [" ".join(sentences[i:i + per]) for i in range(0, len(sentences), per)]


def _lee_articles() -> tuple[list[dict], dict[str, list[dict]]]:
    """The original articles of the syndicated-news sample, and the near-duplicate copies of each."""
    with gzip.open(SAMPLE / "jsonl/lee-news-syndicated.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    originals = {row["cluster"]: row for row in rows if row["id"].endswith("-orig")}
    copies: dict[str, list[dict]] = {}
    for row in rows:
        if "-near" in row["id"]:
            copies.setdefault(row["cluster"], []).append(row)
    return [originals[key] for key in sorted(originals)], copies


def _templates() -> list[tuple[str, str]]:
    """(name, HTML) of real pages that have a block of paragraphs to put an article in."""
    sys.path.insert(0, str(REPO))
    from pipeline.config import ReadConfig
    from pipeline.sources.read import read_source

    pages = [(path.name, path.read_text(encoding="utf-8", errors="replace"))
             for path in sorted((SAMPLE / "html").glob("*.html"))]
    for warc in ("dolma-sample-0000.warc.gz", "cc-main-2020-34-sample.warc.gz"):
        pages += [(doc.get("url") or doc["id"], doc["html"])
                  for tag, doc in read_source(str(SAMPLE / "web" / warc), ReadConfig()) if "html" in doc]
    return [(name, page) for name, page in pages if _main_block(page) is not None and len(page) < 150_000]


def _main_block(page: str):
    """(parsed page, the element whose own <p> children hold the most text: the article body), or None."""
    import lxml.html

    try:
        root = lxml.html.fromstring(page)
    except Exception:   # noqa: BLE001 -- unparsable pages are not templates
        return None
    best, best_chars = None, 200
    for element in root.iter():
        chars = sum(len(child.text_content()) for child in element if child.tag == "p")
        if chars > best_chars:
            best, best_chars = element, chars
    return (root, best) if best is not None else None


def _fill(page: str, paragraphs: list[str]) -> bytes:
    """`page` with its main block's paragraphs replaced by `paragraphs` (none: an empty block)."""
    import lxml.html

    root, block = _main_block(page)
    own = [child for child in block if child.tag == "p"]
    position = block.index(own[0])
    for child in own:
        block.remove(child)
    for offset, text in enumerate(paragraphs):
        paragraph = lxml.html.Element("p")
        paragraph.text = text
        block.insert(position + offset, paragraph)
    return lxml.html.tostring(root, encoding="utf-8", doctype="<!DOCTYPE html>")


def _response_record(url: str, body: bytes) -> bytes:
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + body
    head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url)}>\r\n"
            f"WARC-Date: 2024-01-01T00:00:00Z\r\nWARC-Target-URI: {url}\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n")
    return gzip.compress(head.encode() + http + b"\r\n\r\n", mtime=0)


COOKIE_WALL = [
    "We value your privacy. This site uses cookies to personalise content and ads and to analyse our traffic.",
    "By clicking Accept all you agree to the use of cookies as described in our cookie policy and privacy policy.",
    "You can change your choice at any time under Settings.",
    "Accept all. Reject all. Manage settings.",
]
ERROR_PAGE = ["Page not found.", "Sorry, the page you requested could not be found.",
              "It may have been moved or deleted. Please check the address or go back to the home page."]


def build(seed: int = 0) -> None:
    rng = random.Random(seed)
    articles, copies = _lee_articles()
    templates = _templates()
    # junk goes into English pages only (the bundled en-- pages and the dolma WARC's sites)
    english = [(n, t) for n, t in templates if n.startswith(("en--", "https://"))]
    udhr = {path.stem: _paragraphs(path.read_text(encoding="utf-8"), 2)[:8]
            for path in sorted((SAMPLE / "text/udhr").glob("*.txt")) if path.stem != "en"}
    pages, labels = [], []

    def add(kind: str, template: tuple[str, str], paragraphs: list[str], **extra) -> None:
        url = f"https://bench.example/{kind}/{len(pages):03d}"
        pages.append(_response_record(url, _fill(template[1], paragraphs)))
        labels.append({"url": url, "kind": kind, "template": template[0], "paragraphs": paragraphs, **extra})

    for number, article in enumerate(articles[:ARTICLES]):
        add("article", templates[number % len(templates)], _paragraphs(article["text"]), article=article["id"])
    for number in rng.sample(range(ARTICLES), 8):          # the same page again, under another URL
        add("exact_duplicate", templates[number % len(templates)], labels[number]["paragraphs"],
            article=labels[number]["article"], duplicate_of=labels[number]["url"])
    syndicated = [cluster for cluster in sorted(copies) if int(cluster.split("-")[1]) < ARTICLES]
    for cluster in rng.sample(syndicated, 10):             # a syndicated copy on another site's template
        number = int(cluster.split("-")[1])
        add("near_duplicate", templates[(number + 7) % len(templates)], _paragraphs(copies[cluster][0]["text"]),
            article=copies[cluster][0]["id"], duplicate_of=labels[number]["url"])
    for template in rng.sample(english, 6):
        add("junk_template_only", template, [])
    for template in rng.sample(english, 4):
        add("junk_cookie_wall", template, COOKIE_WALL)
    for template in rng.sample(english, 3):
        add("junk_error_page", template, ERROR_PAGE)
    for template in rng.sample(english, 3):
        add("junk_lorem_ipsum", template, _lorem(rng))
    for lang, template in zip(sorted(udhr), rng.sample(english, len(udhr))):
        add("junk_other_language", template, udhr[lang], lang=lang)

    DATA.mkdir(parents=True, exist_ok=True)
    PAGES.write_bytes(b"".join(pages))
    LABELS.write_text("".join(json.dumps(label, ensure_ascii=False) + "\n" for label in labels), encoding="utf-8")
    print(f"{len(pages)} pages from {len(templates)} templates -> {PAGES} ({PAGES.stat().st_size / 1e6:.2f} MB)")


def _lorem(rng: random.Random) -> list[str]:
    words = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
             "et dolore magna aliqua").split()
    return [" ".join(["Lorem", "ipsum"] + [rng.choice(words) for _ in range(30)]).capitalize() + "." for _ in range(4)]



# ---------------------------------------------------------------- measuring

def _words(text: str) -> str:
    return " ".join(text.split())


def _clean(out: Path, flags: list[str]) -> float:
    """Run the real clean command on the bench pages; its wall time in seconds."""
    from pipeline.__main__ import main

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        status = main(["clean", "--input", str(PAGES), "--output", str(out), "--langs", "en", "--workers", "1",
                       "--num-shards", "1", *flags])
    if status != 0:
        raise SystemExit(f"clean {' '.join(flags)} failed with exit status {status}")
    return time.perf_counter() - started


def _kept(out: Path) -> dict[str, str]:
    kept = {}
    for shard in sorted((out / "cleaned").glob("part-*.jsonl.gz")):
        with gzip.open(shard, "rt", encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)
                kept[doc["url"]] = doc["text"]
    return kept


def _extract_seconds(pages: list[dict], flags: list[str]) -> dict[str, float]:
    """CPU seconds of extraction (with normalization) per page URL."""
    from pipeline.config import load_clean_config
    from pipeline.text.extract import document_text

    overrides = dict(flag.split("=", 1) for flag in flags if flag != "--set")
    config = load_clean_config(None, overrides).extract
    document_text(pages[0], config)   # modules and settings load before timing
    seconds = {}
    for page in pages:
        started = time.process_time()
        document_text(page, config)
        seconds[page["url"]] = time.process_time() - started
    return seconds


def _judge(labels: list[dict], kept: dict[str, str]) -> dict:
    """Scores of one run. An article, its exact copies and its syndicated copies form a cluster:
    its content counts as kept when any page of the cluster keeps it, and every kept page of a
    cluster beyond the first is a duplicate kept."""
    clusters: dict[str, list[dict]] = {}
    for label in labels:
        if "article" in label:
            clusters.setdefault(label["article"][:len("lee-000")], []).append(label)
    found = total = extra = kept_chars = dups = articles = 0
    for pages in clusters.values():
        [original] = [label for label in pages if label["kind"] == "article"]
        texts = [_words(kept[label["url"]]) for label in pages if label["url"] in kept]
        total += len(original["paragraphs"])
        found += sum(any(_words(p) in text for text in texts) for p in original["paragraphs"])
        articles += bool(texts)
        dups += max(0, len(texts) - 1)
        for label in pages:
            if label["url"] in kept:
                text = _words(kept[label["url"]])
                known = sum(len(_words(p)) + 1 for p in label["paragraphs"] if _words(p) in text)
                kept_chars += len(text)
                extra += max(0, len(text) - known)
    return {"content": found / total, "articles": articles, "extra": extra / kept_chars if kept_chars else 0.0,
            "dups": dups, "junk": sum(label["url"] in kept for label in labels if label["kind"].startswith("junk"))}


_HTML_LANG = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?([a-zA-Z]{2,3})", re.I)


def _prepass_drops(pages: list[dict]) -> dict[str, tuple[set[str], dict[str, float]]]:
    """For each pre-pass: the pages it drops as not English, and its CPU seconds per page."""
    from pipeline.config import ExtractConfig, LangConfig
    from pipeline.text.extract import extract_text
    from pipeline.text.lang import LanguageJudge

    judge = LanguageJudge(LangConfig(langs=["en"]))
    raw = ExtractConfig(extractor="resiliparse", strip_boilerplate=False)
    results = {}
    for name, guess in (("<html lang>", lambda page: _html_lang(page["html"])),
                        ("fastText on resiliparse text",
                         lambda page: _confident_lang(judge({"text": extract_text(page["html"], raw)})))):
        dropped, seconds = set(), {}
        for page in pages:
            started = time.process_time()
            lang = guess(page)
            seconds[page["url"]] = time.process_time() - started
            if lang is not None and lang != "en":
                dropped.add(page["url"])
        results[name] = (dropped, seconds)
    return results


def _html_lang(page_html: str) -> str | None:
    match = _HTML_LANG.search(page_html[:5000].encode("utf-8", "replace"))
    return match.group(1).decode().lower() if match else None


def _confident_lang(verdict) -> str | None:
    """The guessed language where fastText is sure of it, else None (no drop on a doubtful guess)."""
    return verdict.signals["lang"] if verdict.signals["lang_score"] > 0.9 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="rewrite bench/data/labelled from the repository")
    args = parser.parse_args()
    if args.rebuild:
        build()
    sys.path.insert(0, str(REPO))
    from pipeline.config import ReadConfig
    from pipeline.sources.read import read_source

    labels = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines()]
    pages = [doc for tag, doc in read_source(str(PAGES), ReadConfig()) if "html" in doc]
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        _clean(Path(scratch) / "warm-up", CONFIGS[PREPASS_BASE])   # imports, models, Beam: not counted
        for name, flags in CONFIGS.items():
            wall = _clean(Path(scratch) / f"run-{len(rows)}", flags)
            kept = _kept(Path(scratch) / f"run-{len(rows)}")
            seconds = _extract_seconds(pages, flags)
            rows[name] = {**_judge(labels, kept), "clean_dps": len(pages) / wall,
                          "extract_dps": len(pages) / sum(seconds.values()), "kept": kept, "seconds": seconds}
    base = rows[PREPASS_BASE]
    for name, (dropped, prepass_seconds) in _prepass_drops(pages).items():
        kept = {url: text for url, text in base["kept"].items() if url not in dropped}
        cpu = sum(prepass_seconds.values()) + sum(s for url, s in base["seconds"].items() if url not in dropped)
        lost = sorted(label["template"] for label in labels
                      if label["kind"] == "article" and label["url"] in dropped and label["url"] in base["kept"])
        junk = sorted(label["kind"] for label in labels if label["url"] in base["kept"] and label["url"] not in kept
                      and label["kind"].startswith("junk"))
        rows[f"{PREPASS_BASE} + pre-pass: {name}"] = {**_judge(labels, kept), "clean_dps": None,
                                                      "extract_dps": len(pages) / cpu, "lost": lost,
                                                      "junk_dropped": junk}
    print(f"{len(pages)} pages: {sum(l['kind'] == 'article' for l in labels)} articles, "
          f"{sum(l['kind'].endswith('duplicate') for l in labels)} duplicates, "
          f"{sum(l['kind'].startswith('junk') for l in labels)} junk\n")
    print("| configuration | content kept | articles kept | extra text | dups kept | junk kept | clean docs/s "
          "| extract docs/s | content × extract docs/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        clean = f"{row['clean_dps']:.1f}" if row["clean_dps"] else "—"
        print(f"| {name} | {row['content']:.1%} | {row['articles']} | {row['extra']:.1%} | {row['dups']} "
              f"| {row['junk']} | {clean} | {row['extract_dps']:.0f} | {row['content'] * row['extract_dps']:.0f} |")
    for name, row in rows.items():
        if "lost" in row:
            print(f"\n{name}: drops {len(row['lost'])} kept articles (templates: {', '.join(row['lost']) or '-'}) "
                  f"and {len(row['junk_dropped'])} kept junk pages ({', '.join(row['junk_dropped']) or '-'})")
    for name, row in rows.items():
        if "kept" in row:
            junk = sorted(label["kind"] for label in labels
                          if label["url"] in row["kept"] and label["kind"].startswith("junk"))
            print(f"\n{name}: junk kept: {', '.join(junk) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
