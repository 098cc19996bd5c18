"""`clean` against datatrove's FineWeb-style pipeline on the same WARC files, the 1 → 2 core scaling of
`clean`, and where its time goes per document. `make bench` runs this and rewrites its section of
BENCHMARKS.md (between the `bench:clean-vs-datatrove` markers).

    PYTHONPATH=. python bench/vs_datatrove.py [--size 40M] [--files 8] [--repeat 2] [--no-write]

1. datatrove 0.10.1 goes into its own environment (`.bench/datatrove-venv`, reused when present;
   never our package). Its language filter would download lid.176 on first use: its cache is
   filled from our bundled model first, and the hub is switched off, so nothing is downloaded.
2. The input is built once by bench/scale.py's builder from the repository's files (real page
   templates, real text) and cached under `.bench/`. datatrove cannot split one file across
   tasks, so it is written as `--files` WARC.gz files, and both sides read those same files.
3. Each round runs, in turn (the order rotates every round, so drifting load hits all alike):
   `python -m pipeline clean --langs en` with default options on 2 cores; datatrove
   (`bench/datatrove_fineweb.py`, LocalPipelineExecutor, 2 tasks, 2 workers) on the same 2 cores;
   and `clean --workers 1` on 1 core. Cores are pinned with taskset, so a bigger machine measures
   the same thing; the 1-core run is pinned too, as the Beam runner's own threads would otherwise
   borrow the second core and flatter the one-worker figure.
4. The profile calls our stage functions in this process, one core, on the same documents, and
   times a run on an empty input for start-up.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from common.cli import fail, first_line  # noqa: E402
from pipeline.units import usable_cores  # noqa: E402
from scale import build, parse_size  # noqa: E402

PROG = "bench/vs_datatrove.py"
# datatrove with what its WARC reader, JSONL writer, English word tokenizer and lid download path import
DATATROVE = ["datatrove[processing]==0.10.1", "warcio", "faust-cchardet", "python-magic", "orjson", "spacy", "aiohttp",
             "lxml_html_clean"]  # trafilatura 1.11 needs it with lxml >= 5.2
MARK_BEGIN, MARK_END = "<!-- bench:clean-vs-datatrove -->", "<!-- /bench:clean-vs-datatrove -->"
TARGET_RATIO, TARGET_SCALING = 1.5, 1.8
# Where datatrove keeps lid.176, asked of datatrove itself (the path is computed as its downloader does).
LID_CACHE_PATH = """
import os
from datatrove.io import strip_protocol
from datatrove.utils.lid import FT176LID
from huggingface_hub import cached_assets_path
folder = cached_assets_path(library_name="datatrove", namespace="lid", subfolder=FT176LID.MODEL_SUBFOLDER)
print(os.path.join(folder, strip_protocol(FT176LID.MODEL_URL).replace("/", "_")))
"""


class BenchError(Exception):
    """A step of the benchmark failed; the message is one line."""


def _run(command: list[str], log: Path, **kwargs) -> subprocess.CompletedProcess:
    with open(log, "w") as out:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=out, text=True, **kwargs)
    if done.returncode:
        last = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:] or ["no output"]
        raise BenchError(f"{' '.join(command[:4])} ... failed ({done.returncode}): {last[0].strip()} (log: {log})")
    return done


# --- datatrove's environment --------------------------------------------------------------------

def datatrove_python(venv: Path, log: Path) -> Path:
    """The Python of a venv holding DATATROVE, created (and installed) unless already there."""
    python, marker = venv / "bin/python", venv / ".installed"
    if not (python.exists() and marker.exists() and marker.read_text() == "\n".join(DATATROVE)):
        print(f"installing {', '.join(DATATROVE)} into {venv} (once; a few minutes)", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(venv)], log)
        _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *DATATROVE], log)
        marker.write_text("\n".join(DATATROVE))
    return python


def datatrove_env(home: Path) -> dict[str, str]:
    """datatrove's environment: its own cache folder, the hub off, and our package out of reach."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}


def fill_lid_cache(python: Path, env: dict[str, str], log: Path) -> None:
    """Put our bundled lid.176 where datatrove looks for its download, marked complete as its downloader
    marks it. Ours is the compressed lid.176.ftz of the same model; both sides then score with one file."""
    from pipeline.text.lang import BUNDLED_MODEL

    target = Path(_run([str(python), "-c", LID_CACHE_PATH], log, env=env).stdout.strip())
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BUNDLED_MODEL, target)
    Path(f"{target}.completed").touch()


def versions(python: Path, env: dict[str, str], log: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps({p: m.version(p) for p in ('datatrove', 'trafilatura', 'spacy', 'fasttext-numpy2-wheel')}))")
    return json.loads(_run([str(python), "-c", code], log, env=env).stdout)


# --- timed runs ---------------------------------------------------------------------------------

def two_cores() -> list[int]:
    """Two usable cores on different physical cores where the machine says which share one (SMT
    siblings would make "2 cores" one core and a half)."""
    usable = sorted(os.sched_getaffinity(0))

    def siblings(core: int) -> set[int]:
        try:
            listed = Path(f"/sys/devices/system/cpu/cpu{core}/topology/thread_siblings_list").read_text().strip()
        except OSError:
            return {core}
        found = set()
        for span in listed.split(","):
            low, _, high = span.partition("-")
            found.update(range(int(low), int(high or low) + 1))
        return found

    first = usable[0]
    apart = [core for core in usable[1:] if core not in siblings(first)]
    return [first, (apart or usable[1:])[0]] if len(usable) > 1 else usable


def pinned(cores: list[int], command: list[str]) -> list[str]:
    return ["taskset", "-c", ",".join(map(str, cores)), *command]


def clean_command(files: list[Path], out: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "clean", "--input", *map(str, files), "--output", str(out),
            "--langs", "en", *options]


def time_clean(cores: list[int], files: list[Path], work: Path, *options: str) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory(dir=work) as out:
        started = time.perf_counter()
        _run(pinned(cores, clean_command(files, Path(out, "out"), *options)), work / "clean.log", cwd=REPO,
             env={**os.environ, "PYTHONPATH": str(REPO)})
        seconds = time.perf_counter() - started
        stats = json.loads(Path(out, "out/stats.json").read_text())
    before_dedup = next((row["docs_in"] for row in stats["funnel"] if row["stage"] == "dedup"), 0)
    return seconds, {"docs": stats["input_docs"], "kept": stats["kept_docs"], "before_dedup": before_dedup}


def time_datatrove(cores: list[int], python: Path, env: dict[str, str], folder: Path, work: Path) -> tuple[float, dict]:
    script = REPO / "bench/datatrove_fineweb.py"
    with tempfile.TemporaryDirectory(dir=work) as out:
        started = time.perf_counter()
        done = _run(pinned(cores, [str(python), str(script), "--input", str(folder), "--output", out,
                                   "--tasks", str(len(cores)), "--workers", str(len(cores))]),
                    work / "datatrove.log", env=env, cwd=work)
        seconds = time.perf_counter() - started
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    # its extractor gives up on a page after 1 s (datatrove's default), which a loaded machine reaches
    timeouts = (work / "datatrove.log").read_text(errors="replace").count("Timeout while cleaning record text")
    return seconds, {"kept": summary["kept"], "before_dedup": summary["after_filters"], "extract_timeouts": timeouts}


# --- per-stage profile --------------------------------------------------------------------------

def _timed(function, items):
    """(results, seconds) of `function` over `items`; results are (item, output) pairs."""
    started = time.perf_counter()
    results = [(item, function(item)) for item in items]
    return results, time.perf_counter() - started


def profile(files: list[Path], cores: list[int]) -> tuple[list[tuple[str, int, float]], int]:
    """[(step, documents in, seconds)] of clean's steps called in this process, on one core, on `files`,
    and the number of documents read. Each step gets what the one before kept, as in the pipeline."""
    from pipeline.config import load_clean_config

    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores[:1])
    try:
        return _profile_steps(files, load_clean_config(None, {"lang.langs": "en"}))
    finally:
        os.sched_setaffinity(0, allowed)


def _profile_steps(files: list[Path], config) -> tuple[list[tuple[str, int, float]], int]:
    from apache_beam import Create

    from pipeline.document import rejection
    from common.fileio import atomic_gzip_create, jsonl_line
    from pipeline.runner import make_pipeline
    from pipeline.sources.read import read_source
    from pipeline.stages.dedup import Deduplicate, _AddFingerprint
    from pipeline.stages.routing import KEPT
    from pipeline.stages.unique_ids import _census
    from pipeline.text.extract import document_text
    from pipeline.text.lang import LanguageJudge
    from pipeline.text.quality import QualityJudge
    from pipeline.units import Unit

    rows = []
    started = time.perf_counter()
    read = [(tag, doc) for path in files for tag, doc in read_source(str(path), config.read)]
    rows.append(("read (WARC.gz to records)", len(read), time.perf_counter() - started))
    started = time.perf_counter()
    for path in files:
        for _ in _census(Unit(str(path)), config.read, {str(path): 0}):
            pass
    rows.append(("id census (every unit read again, records hashed)", len(read), time.perf_counter() - started))
    docs = [doc for tag, doc in read if tag == KEPT]

    document_text({"html": "<html><body><p>Warm-up page.</p></body></html>"}, config.extract)
    extracted, seconds = _timed(lambda doc: document_text(doc, config.extract), docs)
    rows.append(("extract (HTML to text, normalize)", len(docs), seconds))
    texts = [{**{k: v for k, v in doc.items() if k != "html"}, "text": text} for doc, (text, verdict) in extracted
             if verdict.keep]
    dropped = [rejection({**doc, "text": text}, "extract", verdict.reason) for doc, (text, verdict) in extracted
               if not verdict.keep]

    for stage, step, judge in (("lang", "lang (fastText lid.176)", LanguageJudge(config.lang)),
                               ("quality", "quality (Gopher, C4, FineWeb rules)", QualityJudge(config.quality))):
        judged, seconds = _timed(judge, texts)
        rows.append((step, len(texts), seconds))
        texts = [{**doc, **verdict.signals} for doc, verdict in judged if verdict.keep]
        dropped += [rejection(doc, stage, verdict.reason) for doc, verdict in judged if not verdict.keep]

    # The fingerprint DoFn's process() is plain Python: calling it times exactly what a worker does per document.
    fingerprint = _AddFingerprint(config.dedup)
    fingerprint.setup()
    fingerprinted, seconds = _timed(lambda doc: next(fingerprint.process(doc)), texts)
    rows.append(("fingerprint (content hash, shingles, MinHash, LSH keys)", len(texts), seconds))
    dedup_seconds = []
    for docs_in in ([], [output for _, output in fingerprinted]):
        with tempfile.TemporaryDirectory() as scratch:
            pipeline = make_pipeline([])
            pipeline | Create(docs_in, reshuffle=False) | Deduplicate(config.dedup, scratch)
            started = time.perf_counter()
            pipeline.run().wait_until_finish()
            dedup_seconds.append(time.perf_counter() - started)
    rows.append(("dedup joins (Beam, 1 process; minus the same graph run empty)", len(texts),
                 max(0.0, dedup_seconds[1] - dedup_seconds[0])))

    records = texts + dropped
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, atomic_gzip_create(os.path.join(folder, "part.jsonl.gz")) as shard:
        for record in records:
            shard.write(jsonl_line(record))
    rows.append(("write (JSON lines, gzip; cleaned and rejected)", len(records), time.perf_counter() - started))
    return rows, len(read)


def startup_seconds(cores: list[int], work: Path) -> dict[int, float]:
    """Seconds of the whole `clean` command on an empty WARC: 1 worker on 1 core, default on 2."""
    empty = work / "empty.warc.gz"
    gzip.open(empty, "wb").close()
    return {len(run_cores): time_clean(run_cores, [empty], work, *options)[0]
            for run_cores, options in ((cores[:1], ("--workers", "1")), (cores, ()))}


# --- report -------------------------------------------------------------------------------------

def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return f"{model}, {os.cpu_count()} cores ({usable_cores()} usable), {memory:.0f} GiB, Python {platform.python_version()}"


def commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def _verdict(value: float, target: float) -> str:
    return f"target ≥ {target}×: **{'met' if value >= target else 'not met'}**"


def report(facts: dict) -> str:
    clean2, dt, clean1 = (facts["runs"][name] for name in ("clean2", "datatrove", "clean1"))
    pages = facts["pages"]

    def rates(runs):
        return [pages / seconds for seconds, _ in runs]

    median = {name: statistics.median(rates(runs)) for name, runs in facts["runs"].items()}
    ratio, scaling = median["clean2"] / median["datatrove"], median["clean2"] / median["clean1"]
    v = facts["versions"]
    lines = [
        MARK_BEGIN,
        f"Written by `make bench` (`bench/vs_datatrove.py`) on {facts['date']}, commit {facts['commit']}. "
        f"Machine: {facts['machine']}; load average {facts['load_before']:.2f} before, {facts['load_after']:.2f} after. "
        f"Input: {pages:,} real-like pages, {facts['megabytes']:.1f} MB of WARC.gz, built by bench/scale.py's builder "
        f"from the repository's files only, split into {facts['files']} files because datatrove cannot split one "
        f"file across tasks; both sides read the same files. {facts['repeat']} round(s), the three runs of a round "
        "one after the other; each figure is the whole command, start-up included. The whole benchmark took "
        f"{facts['elapsed'] / 60:.1f} minutes.",
        "",
        "| run | cores (taskset) | documents/s, each round | median documents/s | kept before dedup | kept |",
        "|---|---|---|---|---|---|",
    ]
    for name, label, cores in (
            ("clean2", "`clean --langs en`, default options (2 workers)", 2),
            ("datatrove", f"datatrove {v['datatrove']} FineWeb-style, LocalPipelineExecutor, 2 tasks, 2 workers", 2),
            ("clean1", "`clean --langs en --workers 1`", 1)):
        runs = facts["runs"][name]
        each = ", ".join(f"{rate:.1f}" for rate in rates(runs))
        lines.append(f"| {label} | {cores} | {each} | {median[name]:.1f} | {runs[-1][1]['before_dedup']:,} | "
                     f"{runs[-1][1]['kept']:,} |")
    lines += [
        "",
        f"- **clean / datatrove on 2 cores: {ratio:.2f}×** ({_verdict(ratio, TARGET_RATIO)}).",
        f"- **clean, 1 → 2 cores: {scaling:.2f}×** ({_verdict(scaling, TARGET_SCALING)}).",
        f"- datatrove skipped {', '.join(str(counts['extract_timeouts']) for _, counts in dt)} pages (each round) "
        "on its default 1 s extraction timeout, which a loaded machine reaches more often; a skipped page is "
        "work it does not do, so skips flatter datatrove's figure, not ours.",
        "",
        f"datatrove's side: trafilatura {v['trafilatura']} (favour_precision), lid.176 at 0.65 (its cache filled from "
        "our bundled `lid.176.ftz`, so both sides use one model file), Gopher repetition and quality, C4 (no "
        f"terminal-punctuation line filter, as FineWeb), FineWeb quality (spaCy {v['spacy']} word tokenizer), "
        "MinHash 14 × 8 signatures → buckets (14 tasks) → clusters (1 task) → filter, JSONL out; no URL block list, "
        "token counting or PII step (our `clean` has none). Ours does more per document: it also writes every "
        "rejected document with its reason (`rejected/`), exact-duplicate removal, Jaccard checks of MinHash "
        "candidates, stats.json and report.html.",
        "",
        "Where `clean`'s time goes, per document, one core: our stage functions called in one process on the same "
        "documents (each step gets what the one before kept), and start-up: the whole command on an empty WARC.",
        "",
        "| step | documents in | seconds | ms per document in | ms per input page |",
        "|---|---|---|---|---|",
    ]
    for step, docs_in, seconds in facts["profile"]:
        lines.append(f"| {step} | {docs_in:,} | {seconds:.1f} | {1000 * seconds / docs_in:.2f} | "
                     f"{1000 * seconds / pages:.2f} |")
    steps = sum(seconds for _, _, seconds in facts["profile"])
    startup = facts["startup"]
    lines.append(f"| **sum of the steps** | | {steps:.1f} | | {1000 * steps / pages:.2f} |")
    for workers, seconds in startup.items():
        lines.append(f"| start-up, {workers} worker(s) on {workers} core(s) | 0 | {seconds:.1f} | — | "
                     f"{1000 * seconds / pages:.2f} |")
    one_core = statistics.median(seconds for seconds, _ in clean1)
    rest = one_core - steps - startup[1]
    lines += [
        "",
        f"The 1-core run took {one_core:.1f} s (median): {steps:.1f} s of steps and {startup[1]:.1f} s of start-up "
        f"leave {rest:.1f} s ({rest / one_core:.0%}) to what only a whole run has: Beam's per-element work between "
        "steps, spilling texts to disk and reading them back, the shuffles, and the runner's own threads.",
        MARK_END,
    ]
    return "\n".join(lines)


def rewrite_section(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END), re.S)
    if not pattern.search(text):
        raise BenchError(f"{path} has no {MARK_BEGIN} … {MARK_END} section to rewrite")
    path.write_text(pattern.sub(lambda _: section, text), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="40M", help="compressed input size (default 40M: about 1,500 pages)")
    parser.add_argument("--files", type=int, default=8, help="WARC.gz files the input is split into")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of the three timed runs")
    parser.add_argument("--work", type=Path, default=REPO / ".bench", help="datatrove's venv, inputs, logs")
    parser.add_argument("--benchmarks", type=Path, default=REPO / "BENCHMARKS.md", help="file whose section is rewritten")
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    args = parser.parse_args()
    try:
        size = parse_size(args.size)
    except (ValueError, IndexError):
        size = 0
    if size <= 0:
        return fail(PROG, f"--size: not a positive size: {args.size!r} (e.g. 40M)", 2)
    if args.files < 1 or args.repeat < 1:
        return fail(PROG, "--files and --repeat must be at least 1", 2)
    cores = two_cores()
    if len(cores) < 2 or not shutil.which("taskset"):
        return fail(PROG, "needs 2 usable cores and taskset (util-linux): the comparison is pinned to 2 cores")
    args.work.mkdir(parents=True, exist_ok=True)
    work = args.work.resolve()
    started = time.perf_counter()
    try:
        load_before = os.getloadavg()[0]
        python = datatrove_python(work / "datatrove-venv", work / "pip.log")
        env = datatrove_env(work / "hf-home")
        fill_lid_cache(python, env, work / "datatrove.log")
        folder = work / f"input-{args.size}-{args.files}files"
        files, pages = build(size, folder, file_bytes=-(-size // args.files))
        print(f"input: {pages} pages in {len(files)} files under {folder}", flush=True)
        runs = {"clean2": [], "datatrove": [], "clean1": []}
        timed = {
            "clean2": lambda: time_clean(cores, files, work),
            "datatrove": lambda: time_datatrove(cores, python, env, folder, work),
            "clean1": lambda: time_clean(cores[:1], files, work, "--workers", "1"),
        }
        order = list(timed)
        for round_number in range(args.repeat):
            for name in order[round_number % 3:] + order[:round_number % 3]:
                seconds, counts = timed[name]()
                runs[name].append((seconds, counts))
                print(f"round {round_number + 1}: {name} {seconds:.1f}s, {pages / seconds:.1f} docs/s, {counts}", flush=True)
        rows, read = profile(files, cores)
        startup = startup_seconds(cores, work)
        facts = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit(),
                 "machine": machine(), "load_before": load_before, "load_after": os.getloadavg()[0],
                 "pages": pages, "files": len(files), "repeat": args.repeat, "runs": runs, "profile": rows,
                 "startup": startup, "elapsed": time.perf_counter() - started,
                 "megabytes": sum(f.stat().st_size for f in files) / 1e6, "versions": versions(python, env, work / "datatrove.log")}
        if read != pages:
            raise BenchError(f"the profile read {read} records, the builder wrote {pages}")
        section = report(facts)
        print(section)
        if not args.no_write:
            rewrite_section(args.benchmarks, section)
            print(f"rewrote the clean-vs-datatrove section of {args.benchmarks}")
    except (BenchError, OSError) as error:
        return fail(PROG, first_line(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
