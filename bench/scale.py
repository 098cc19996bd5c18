"""Wall time and peak memory of `python -m pipeline clean --langs en` as the corpus grows.

    PYTHONPATH=. python bench/scale.py --sizes 10M,100M [--workers 2] [--repo PATH] [--out /tmp/webcorpus-scale]

Builds real-like WARC inputs as a user would: real pages (the bundled HTML files, the response
records of the bundled Common Crawl / dolma WARC samples, and the HTML files of `--extra-html` when
given) serve as templates, and the text of
every `<p>` is replaced by paragraphs drawn from real text corpora (English web and news texts,
and for one page in five the Universal Declaration in another language), so that every page is
unique and dedup has real work, not a corpus of exact repeats. Inputs are written once under
`--out` (not the repository) as WARC.gz files of at most 512 MB, like Common Crawl's. With `--wet`
the same pages become WET.gz conversion records of their visible text, as Common Crawl's WET files
hold them (for sizing runs that start from WET).

It then runs the real command line and polls /proc for the resident memory of the whole process
tree (the runner and its worker processes), reporting the peak of their sum and of the largest
single process. `--repo` runs another checkout's pipeline on the same inputs (a before/after
comparison); the figures go to stdout as a Markdown table and to `--out`/results.jsonl.
"""
from __future__ import annotations

import argparse
import gzip
import html
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILE_LIMIT = 512 * 1024**2
_PARAGRAPH = re.compile(r"(<p\b[^>]*>)(.*?)(</p>)", re.S | re.I)


def parse_size(text: str) -> int:
    """Bytes of a size such as 40M, 1.5G or 1000."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def _paragraphs(texts, lo=150, hi=2000) -> list[str]:
    found = []
    for text in texts:
        for block in re.split(r"\n\s*\n|\n", text):
            block = " ".join(block.split())
            if lo <= len(block) <= hi:
                found.append(block)
    return found


def _jsonl_texts(paths):
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                yield json.loads(line).get("text") or ""


def _pools(extra_html: Path | None = None) -> tuple[list[str], list[list[str]]]:
    """Templates and paragraph pools (English first, then one per other language), from the repository's
    real files and the HTML files in `extra_html`."""
    sys.path.insert(0, str(REPO))
    from pipeline.config import ReadConfig
    from pipeline.sources.read import read_source

    templates = []
    for folder in (REPO / "data/sample/html", *([extra_html] if extra_html else [])):
        templates += [p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.glob("*.html"))]
    for warc in sorted((REPO / "data/sample/web").glob("*.warc.gz")):
        templates += [doc["html"] for tag, doc in read_source(str(warc), ReadConfig()) if "html" in doc]
    templates = [t for t in templates if _PARAGRAPH.search(t)]
    jsonl = REPO / "data/sample/jsonl"   # the English ones: dolma's cc_en_head and Lee's news
    english = _paragraphs(_jsonl_texts(sorted(jsonl.glob("dolma-cc_en_head-*")) + sorted(jsonl.glob("lee-news*"))))
    others = [_paragraphs([p.read_text(encoding="utf-8")], lo=60)
              for p in sorted((REPO / "data/sample/text/udhr").glob("*.txt")) if p.stem != "en"]
    return templates, [english, *[pool for pool in others if len(pool) >= 3]]


def _page(rng: random.Random, templates, pools) -> bytes:
    pool = rng.choice(pools[1:]) if rng.random() < 0.2 else pools[0]   # one page in five not in English
    template = rng.choice(templates)

    def fill(match):
        return match.group(1) + html.escape(" ".join(rng.sample(pool, rng.randint(1, 3)))) + match.group(3)

    return _PARAGRAPH.sub(fill, template).encode("utf-8")


def _record(body: bytes, number: int) -> bytes:
    http = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    headers = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:{uuid.UUID(int=number)}>\r\n"
               f"WARC-Target-URI: https://example.org/page/{number}\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
               f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n")
    member = io.BytesIO()
    with gzip.GzipFile(fileobj=member, mode="wb", mtime=0) as f:   # one gzip member per record, as CC does
        f.write(headers.encode() + http + b"\r\n\r\n")
    return member.getvalue()


def _wet_record(body: bytes, number: int) -> bytes:
    """The page as Common Crawl's WET has it: a conversion record of all its visible text."""
    from resiliparse.extract.html2text import extract_plain_text

    text = extract_plain_text(body.decode("utf-8"), main_content=False).encode("utf-8")
    headers = (f"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Record-ID: <urn:uuid:{uuid.UUID(int=number)}>\r\n"
               f"WARC-Target-URI: https://example.org/page/{number}\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
               f"Content-Type: text/plain\r\nContent-Length: {len(text)}\r\n\r\n")
    member = io.BytesIO()
    with gzip.GzipFile(fileobj=member, mode="wb", mtime=0) as f:
        f.write(headers.encode() + text + b"\r\n\r\n")
    return member.getvalue()


def build(target: int, folder: Path, seed: int = 0, file_bytes: int = FILE_LIMIT,
          extra_html: Path | None = None, wet: bool = False) -> tuple[list[Path], int]:
    """WARC.gz files (WET.gz with `wet`) of about `file_bytes` each under `folder`, totalling at least
    `target` bytes; reused when already built."""
    manifest = folder / "manifest.json"
    if manifest.exists():
        done = json.loads(manifest.read_text())
        return [folder / name for name in done["files"]], done["pages"]
    folder.mkdir(parents=True, exist_ok=True)
    templates, pools = _pools(extra_html)
    rng = random.Random(seed)
    files, pages, total = [], 0, 0
    while total < target:
        path = folder / f"scale-{len(files):05d}.{'warc.wet' if wet else 'warc'}.gz"
        written = 0
        with open(path, "wb") as out:
            while written < file_bytes and total + written < target:
                record = (_wet_record if wet else _record)(_page(rng, templates, pools), pages)
                out.write(record)
                written += len(record)
                pages += 1
        files.append(path)
        total += written
    manifest.write_text(json.dumps({"files": [p.name for p in files], "pages": pages, "bytes": total}))
    return files, pages


def _tree_rss(root: int) -> tuple[int, int]:
    """(sum, largest) resident bytes of `root` and all its descendants, from /proc."""
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    sizes = [rss.get(pid, 0) for pid in tree]
    return sum(sizes), max(sizes)


def measure(repo: Path, files: list[Path], out: Path, workers: int | None) -> dict:
    # A killed earlier run leaves its work folder, and `clean` would resume from it: start afresh.
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "pipeline", "clean", "--input", *map(str, files), "--output", str(out),
               "--langs", "en"]
    if workers is not None:
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_sum = peak_one = 0
    while process.poll() is None:
        total, largest = _tree_rss(process.pid)
        peak_sum, peak_one = max(peak_sum, total), max(peak_one, largest)
        time.sleep(0.5)
    wall = time.perf_counter() - started
    stdout, stderr = process.communicate()
    if process.returncode:
        raise SystemExit(f"clean failed ({process.returncode}): {stderr.strip().splitlines()[-1:]}")
    stats = json.loads((out / "stats.json").read_text())
    return {"wall_s": round(wall, 1), "docs": stats["input_docs"], "kept": stats["kept_docs"],
            "docs_per_s": round(stats["input_docs"] / wall, 1), "peak_rss_gb": round(peak_sum / 1024**3, 2),
            "peak_process_gb": round(peak_one / 1024**3, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10M,100M,1G,3G", help="compressed WARC sizes, e.g. 10M,100M,1G")
    parser.add_argument("--out", type=Path, default=Path("/tmp/webcorpus-scale"))
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose pipeline runs (default: this one)")
    parser.add_argument("--workers", type=int, help="--workers for clean (default: the command's own default)")
    parser.add_argument("--label", default="", help="name of this configuration in the results")
    parser.add_argument("--extra-html", type=Path, help="a folder of more real HTML pages to use as templates")
    parser.add_argument("--wet", action="store_true", help="WET.gz inputs (the pages' visible text, as Common "
                        "Crawl's WET files hold it) instead of WARC.gz")
    args = parser.parse_args()
    kind = "wet" if args.wet else "warc"
    print(f"| input | {kind.upper()}.gz MB | pages | wall s | docs/s | peak RSS, all processes GB | largest process GB |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        name = size if kind == "warc" else f"{kind}-{size}"
        files, pages = build(parse_size(size), args.out / f"input-{name}", extra_html=args.extra_html, wet=args.wet)
        result = measure(args.repo.resolve(), files, args.out / f"output-{name}", args.workers)
        megabytes = sum(f.stat().st_size for f in files) / 1024**2
        result.update(size=size, kind=kind, warc_mb=round(megabytes), pages=pages, label=args.label,
                      workers=args.workers, repo=str(args.repo))
        with open(args.out / "results.jsonl", "a") as f:
            f.write(json.dumps(result) + "\n")
        print(f"| {size} {args.label} | {megabytes:.0f} | {pages} | {result['wall_s']} | {result['docs_per_s']} | "
              f"{result['peak_rss_gb']} | {result['peak_process_gb']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
