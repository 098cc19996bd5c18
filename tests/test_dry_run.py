"""`--dry-run`: what would run is printed, nothing runs, nothing remote is listed or read."""
import json
import tempfile
from pathlib import Path

import pytest

from pipeline.__main__ import main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data/sample"
DATAFLOW = ["--runner=DataflowRunner", "--project=my-project", "--region=us-central1",
            "--temp_location=gs://my-bucket/tmp", f"--setup_file={REPO / 'setup.py'}"]
CLEAN_STAGES = ("Read -> PassedRead -> SpillReadRejected -> Extract -> PassedExtract -> SpillExtractRejected -> Lang -> "
                "PassedLang -> SpillLangRejected -> Quality -> PassedQuality -> SpillQualityRejected -> Fingerprint -> "
                "SpillKept -> Journal -> Dedup -> PassedDedup -> WriteCleaned -> WriteRejected -> Summarize")


def test_clean_dry_run_lists_local_inputs_and_stages_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "out"
    assert main(["clean", "--input", str(SAMPLE / "html"), str(SAMPLE / "web"), "--output", str(out),
                 "--stages", "extract,lang", "--workers", "2", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "runner: LocalRunner (local, 2 worker processes)" in printed
    assert "inputs: 15 local source(s), 0 remote" in printed
    assert f"{SAMPLE / 'html'}: 12 source(s): {SAMPLE / 'html'}/de--computerbase.de.htc.html" in printed
    assert ("stages: Read -> PassedRead -> SpillReadRejected -> Extract -> PassedExtract -> SpillExtractRejected -> "
            "Lang -> PassedLang -> SpillLangRejected -> SpillKept -> Journal -> WriteCleaned -> WriteRejected -> "
            "Summarize") in printed
    assert not out.exists() and not list((tmp_path / "tmp").iterdir())


def test_a_local_list_of_remote_entries_is_read_but_its_remote_entries_are_not_listed(tmp_path, capsys):
    """The entries are shown as given: listing memfs:// (a FileSystem in this process) or gs:// (which
    would need credentials and network) is left to the run; the local entry is listed."""
    (tmp_path / "list.txt").write_text(f"memfs://bucket/not-there/*.warc.gz\ngs://my-bucket/crawl/a.warc.gz\n"
                                       f"{SAMPLE / 'html'}\n")
    assert main(["clean", "--input", f"@{tmp_path / 'list.txt'}", "--output", str(tmp_path / "out"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "inputs: 12 local source(s), 2 remote" in printed
    assert (f"@{tmp_path / 'list.txt'}: 12 source(s): {SAMPLE / 'html'}/de--computerbase.de.htc.html" in printed
            and "; 2 remote, as given: gs://my-bucket/crawl/a.warc.gz, memfs://bucket/not-there/*.warc.gz" in printed)


def test_dataflow_dry_run_refuses_local_entries_of_a_local_list_as_the_run_does(tmp_path, capsys):
    (tmp_path / "list.txt").write_text(f"gs://my-bucket/crawl/a.warc.gz\n{SAMPLE / 'html'}\n")
    args = ["clean", "--input", f"@{tmp_path / 'list.txt'}", "--output", "gs://my-bucket/clean", *DATAFLOW]
    assert main([*args, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read this machine's disk" in err and str(SAMPLE / "html") in err


def test_clean_dry_run_reports_a_bad_input_in_one_line(tmp_path, capsys):
    assert main(["clean", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o"), "--dry-run"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_tokenize_dry_run_loads_the_local_tokenizer_and_writes_nothing(tmp_path, capsys):
    cleaned = tmp_path / "clean"
    assert main(["clean", "--input", str(SAMPLE / "jsonl/dolma-cc_en_head-0091.jsonl.gz"), "--output", str(cleaned)]) == 0
    from tokenizer.__main__ import main as tokenizer_main
    assert tokenizer_main(["train", "--input", str(cleaned / "cleaned"), "--output", str(tmp_path / "tok"),
                           "--vocab-size", "500"]) == 0
    capsys.readouterr()
    shards = tmp_path / "shards"
    assert main(["tokenize", "--input", str(cleaned / "cleaned"), "--tokenizer", str(tmp_path / "tok"),
                 "--output", str(shards), "--dry-run", "--direct_num_workers=2"]) == 0
    printed = capsys.readouterr().out
    assert "local source(s), 0 remote" in printed and "--direct_num_workers=2" in printed
    assert "stages: ReadCleaned -> Tokenize" in printed
    assert not shards.exists()


def test_dataflow_dry_run_works_offline_and_writes_the_translated_job(tmp_path, capfd):
    """No credentials, no network: remote inputs stay unlisted, nothing is read from gs://, the job is
    translated (our transforms, the staged sdist) and written to --dataflow_job_file, not submitted.
    Building the sdist prints nothing (Beam's first try, `python -m build`, is not installed here)."""
    job_file = tmp_path / "job.json"
    assert main(["clean", "--input", "@gs://my-bucket/warc.paths", "gs://my-bucket/crawl/*.warc.gz",
                 "--output", "gs://my-bucket/clean", "--dry-run", *DATAFLOW, f"--dataflow_job_file={job_file}"]) == 0
    printed, errors = capfd.readouterr()
    assert errors == ""
    assert "runner: DataflowRunner" in printed and "--project=my-project" in printed
    assert "@gs://my-bucket/warc.paths  (remote, as given)" in printed
    assert "inputs: 0 local source(s), 2 remote" in printed
    assert f"stages: {CLEAN_STAGES}" in printed
    job = json.loads(job_file.read_text())
    assert "workflow.tar.gz" in job["stagedPackages"]          # the --setup_file sdist, built locally
    for transform in ("Read/ReadUnit", "Extract/ExtractText", "Dedup", "WriteCleaned", "Summarize"):
        assert any(name.startswith(transform) for name in job["transforms"]), transform
    assert job["job"]["type"] == "JOB_TYPE_BATCH" and job["job"]["name"]


def test_tokenize_dataflow_dry_run_reads_nothing_remote(tmp_path, capsys):
    assert main(["tokenize", "--input", "gs://my-bucket/clean/cleaned", "--tokenizer", "gs://my-bucket/tok",
                 "--output", "gs://my-bucket/shards", "--dry-run", *DATAFLOW]) == 0
    printed = capsys.readouterr().out
    assert "stages: ReadCleaned -> Tokenize" in printed and "gs://my-bucket/clean/cleaned  (remote, as given)" in printed
    assert "dataflow job:" in printed
