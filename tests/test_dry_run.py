"""`--dry-run`: what would run is printed, nothing runs, nothing remote is listed or read."""
import json
from pathlib import Path

import pytest

from pipeline.__main__ import main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data/sample"
DATAFLOW = ["--runner=DataflowRunner", "--project=my-project", "--region=us-central1",
            "--temp_location=gs://my-bucket/tmp", f"--setup_file={REPO / 'setup.py'}"]
CLEAN_STAGES = "Read -> UniqueIds -> ReadRejected -> Extract -> Lang -> Quality -> Dedup -> AllRejected"


def test_clean_dry_run_lists_local_inputs_and_stages_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["clean", "--input", str(SAMPLE / "html"), str(SAMPLE / "web"), "--output", str(out),
                 "--stages", "extract,lang", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "runner: LocalRunner" in printed
    assert "inputs: 15 local source(s), 0 remote" in printed
    assert f"{SAMPLE / 'html'}: 12 source(s): {SAMPLE / 'html'}/de--computerbase.de.htc.html" in printed
    assert "stages: Read -> UniqueIds -> ReadRejected -> Extract -> Lang -> AllRejected -> WriteCleaned" in printed
    assert not out.exists()


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
