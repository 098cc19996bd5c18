"""Bounded-memory runs: work units, spilled texts and worker processes change nothing in the output."""
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import pytest
import xxhash
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from pipeline.config import ReadConfig, WorkConfig
from pipeline.document import HTML_REF, JOURNAL_REF, TEXT_REF
from pipeline.sources.read import read_source
from pipeline.stages.read import ReadSources
from pipeline.stages.routing import KEPT
from pipeline.stages.spill import SpillTexts, remove_work_dir
from pipeline.stages.write import WriteJsonlShards
from pipeline.units import Unit, local_input_bytes, local_workers, plan_units, usable_cores
from tests.run_outputs import identical_outputs

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data/sample"
WARC = str(SAMPLE / "web/cc-main-2020-34-sample.warc.gz")
CLIPPED_WARC = str(REPO / "tests/data/sources/clipped.warc.gz")


def test_plan_units_splits_files_so_every_worker_has_one():
    assert plan_units(["a.warc.gz"], WorkConfig(), workers=2) == [Unit("a.warc.gz", 0, 2), Unit("a.warc.gz", 1, 2)]
    assert plan_units(["a", "b", "c"], WorkConfig(), workers=2) == [Unit("a"), Unit("b"), Unit("c")]
    assert plan_units(["a"], WorkConfig(parts_per_file=3), workers=1) == [Unit("a", i, 3) for i in range(3)]
    # a URL is downloaded by whoever reads it: never split, or every part would download it
    assert plan_units(["https://x/a.warc.gz"], WorkConfig(), workers=4) == [Unit("https://x/a.warc.gz")]


def test_default_workers_are_the_cores_this_process_may_use():
    # taskset, cgroup cpusets and `docker --cpuset-cpus` narrow the cores a run may use; a worker per
    # core of the whole machine would crowd them (the clean-vs-datatrove bench pins runs to 2 cores)
    code = ("import os; from pipeline.config import WorkConfig; from pipeline.units import local_workers; "
            "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); print(local_workers(WorkConfig(), ['gs://bucket/crawl.warc.gz']))")
    pinned = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert pinned.stdout.strip() == "1"
    assert local_workers(WorkConfig(workers=3), []) == 3


def _expected(sources):
    """What reading each source straight through gives: (id, html or text) and (id, reason) pairs."""
    docs, rejected = [], []
    for source in sources:
        for tag, record in read_source(source, ReadConfig()):
            if tag == KEPT:
                docs.append((record["id"], record.get("html") or record.get("text")))
            else:
                rejected.append((record["id"], record["reason"], None))
    return docs, rejected


def _check_read(units, docs, rejected, scratch: Path):
    with beam.Pipeline(runner=FnApiRunner()) as p:
        read, read_rejected = p | ReadSources(units, ReadConfig(), str(scratch))
        assert_that(read | "Docs" >> beam.Map(lambda d: (d["id"], d.get("html") or d.get("text"))),
                    equal_to(docs), label="docs")
        assert_that(read_rejected | "Rejected" >> beam.Map(lambda r: (r["id"], r["reason"], r.get("duplicate_of"))),
                    equal_to(rejected), label="rejected")


def test_a_stride_split_source_gives_the_documents_of_the_whole(tmp_path):
    docs, rejected = _expected([WARC, CLIPPED_WARC])
    assert len(docs) > 10 and len(rejected) == 2   # the clipped file gives two read_errors
    _check_read([Unit(WARC, i, 3) for i in range(3)] + [Unit(CLIPPED_WARC, i, 2) for i in range(2)], docs, rejected,
                tmp_path)


@pytest.mark.parametrize("parts", [1, 2])
def test_duplicate_ids_are_settled_across_units(tmp_path, parts):
    source = tmp_path / "dups.jsonl"
    rows = [{"id": "a", "text": "first a"}, {"id": "b", "text": "b"}, {"id": "a", "text": "second a"},
            {"id": "a", "text": "first a"}]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    # The id goes to the first record in content order (its digest), wherever the records were read.
    records = [record for tag, record in read_source(str(source), ReadConfig()) if record["id"] == "a"]
    kept_a = min(records, key=lambda r: xxhash.xxh128_hexdigest(json.dumps(r, sort_keys=True).encode()))["text"]
    _check_read([Unit(str(source), i, parts) for i in range(parts)], [("a", kept_a), ("b", "b")],
                [("a", "duplicate_id", "a")] * 2, tmp_path / ".work")


def test_spilled_records_are_compact_and_write_the_same_bytes(tmp_path):
    records = [{"id": f"doc-{i:03d}", "text": f"text {i} ünïcödé 🌍" * (i + 1), "lang": "en"} for i in range(40)]
    records.append({"id": "empty", "text": ""})
    for spill, out in ((False, tmp_path / "plain"), (True, tmp_path / "spilled")):
        with beam.Pipeline(runner=FnApiRunner()) as p:
            spilled = p | beam.Create(records) | SpillTexts(str(tmp_path / ".work"), spill)
            assert_that(spilled | beam.Map(lambda r: ("text" in r, TEXT_REF in r)),
                        equal_to([(not spill, spill)] * 40 + [(True, False)]))
            spilled | WriteJsonlShards(str(out), 3, str(tmp_path / ".work"))
    assert len(list((tmp_path / ".work").glob("spill-*"))) >= 1
    for shard in sorted((tmp_path / "plain").glob("part-*")):
        assert shard.read_bytes() == (tmp_path / "spilled" / shard.name).read_bytes()


def test_the_html_of_pages_dropped_at_extraction_waits_on_disk_too(tmp_path):
    # the largest field a record can carry (up to extract.max_html_chars): held in the runner's
    # memory until the writers, it grew with the corpus (~150 KB per page dropped at extraction)
    html = "<html><body>" + "<div>menu ünïcödé 🌍</div>" * 500 + "</body></html>"
    records = [{"id": f"page-{i}", "stage": "extract", "reason": "extract_empty", "html": html + str(i),
                "text": "t" * i} for i in range(5)]
    for spill, out in ((False, tmp_path / "plain"), (True, tmp_path / "spilled")):
        with beam.Pipeline(runner=FnApiRunner()) as p:
            spilled = p | beam.Create(records) | SpillTexts(str(tmp_path / ".work"), spill)
            assert_that(spilled | beam.Map(lambda r: ("html" in r, HTML_REF in r, TEXT_REF in r)),
                        equal_to([(not spill, spill, spill)] * 4 + [(not spill, spill, False)]))
            spilled | WriteJsonlShards(str(out), 2, str(tmp_path / ".work"))
    for shard in sorted((tmp_path / "plain").glob("part-*")):
        assert shard.read_bytes() == (tmp_path / "spilled" / shard.name).read_bytes()
    written = [json.loads(line) for shard in sorted((tmp_path / "spilled").glob("part-*"))
               for line in gzip.decompress(shard.read_bytes()).splitlines()]
    assert sorted(r["html"] for r in written) == sorted(r["html"] for r in records)


def _clean(out: Path, *flags: str) -> dict:
    inputs = [str(SAMPLE / "web"), str(SAMPLE / "jsonl/lee-news-syndicated.jsonl.gz"),
              str(SAMPLE / "jsonl/dolma-cc_en_head-0091.jsonl.gz")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "pipeline", "clean", "--input", *inputs, "--output", str(out),
                             "--langs", "en,de", *flags], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not (out / ".work").exists()
    return identical_outputs(out)


@pytest.fixture(scope="module")
def spilled_one_worker(tmp_path_factory):
    return _clean(tmp_path_factory.mktemp("scale") / "out", "--workers", "1")


def test_clean_accounts_for_every_document(spilled_one_worker):
    stats = json.loads(spilled_one_worker["stats.json"])
    assert stats["input_docs"] == stats["kept_docs"] + sum(stats["rejected"].values())
    assert {"exact_duplicate", "near_duplicate"} & set(stats["rejected"])

    def written(folder):
        return [json.loads(line) for name, data in spilled_one_worker.items() if name.startswith(folder)
                for line in gzip.decompress(data).decode().splitlines()]
    kept, rejected = written("cleaned/"), written("rejected/")
    assert len(kept) == stats["kept_docs"] and all(doc["text"] and TEXT_REF not in doc for doc in kept)
    # replayed records are written whole: signals back from the journal, no references left
    assert all(not {TEXT_REF, HTML_REF, JOURNAL_REF} & set(record) for record in kept + rejected)
    assert all("word_count" in doc and "lang_score" in doc for doc in kept)
    assert all("decision" in record for record in rejected if record["stage"] in ("lang", "quality"))


def test_clean_output_is_identical_without_spilling(spilled_one_worker, tmp_path):
    assert _clean(tmp_path / "out", "--workers", "1", "--set", "work.spill=false") == spilled_one_worker


def test_clean_output_is_identical_with_two_worker_processes(spilled_one_worker, tmp_path):
    assert _clean(tmp_path / "out", "--workers", "2") == spilled_one_worker


def test_a_negative_worker_count_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipeline", "clean", "--input", str(SAMPLE / "html"),
                             "--output", str(tmp_path / "out"), "--workers", "-1"], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "pipeline clean: error: work.workers and work.parts_per_file must be 0 (automatic) or more"]


def test_remove_work_dir_deletes_spill_files_of_earlier_runs_too(tmp_path):
    work = tmp_path / ".work"
    work.mkdir()
    (work / "spill-of-a-run-that-died.txt").write_bytes(b"text")
    remove_work_dir(str(work))
    assert not work.exists()
    remove_work_dir(str(work))   # nothing there: nothing to do


def test_small_local_inputs_run_in_one_worker_large_or_remote_ones_in_one_per_core(tmp_path):
    small = tmp_path / "small.warc.gz"
    small.write_bytes(b"x" * 1000)
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "data-00000-of-00001.arrow").write_bytes(b"x" * 3000)
    cores = usable_cores()
    assert local_input_bytes([str(small), str(dataset)]) == 4000
    assert local_workers(WorkConfig(), [str(small), str(dataset)]) == 1
    assert local_workers(WorkConfig(one_worker_below_mb=0.001), [str(small), str(dataset)]) == cores
    assert local_workers(WorkConfig(), [str(small), "gs://bucket/crawl.warc.gz"]) == cores  # size unknown offline
    assert local_workers(WorkConfig(workers=3), [str(small)]) == 3   # an explicit count wins
