"""The clean-vs-datatrove benchmark's report: it states the targets plainly, met or not, and rewrites only
its own section of BENCHMARKS.md."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import vs_datatrove  # noqa: E402

COUNTS = {"kept": 50, "before_dedup": 52}


def _facts(clean2_s: float, datatrove_s: float, clean1_s: float) -> dict:
    return {"date": "2026-01-01 00:00 UTC", "commit": "abc1234", "machine": "test CPU, 2 cores", "load_before": 0.5,
            "load_after": 0.7, "pages": 1000, "files": 8, "repeat": 2, "megabytes": 26.0,
            "versions": {"datatrove": "0.10.1", "trafilatura": "1.11.0", "spacy": "3.8.0"},
            "runs": {"clean2": [(clean2_s, COUNTS)] * 2,
                     "datatrove": [(datatrove_s, {**COUNTS, "extract_timeouts": 3})] * 2,
                     "clean1": [(clean1_s, COUNTS)] * 2},
            "profile": [("read", 1000, 1.0), ("extract", 1000, 10.0)], "startup": {1: 5.0, 2: 8.0}, "elapsed": 600.0}


def test_a_shortfall_is_stated_as_not_met():
    section = vs_datatrove.report(_facts(clean2_s=60.0, datatrove_s=66.0, clean1_s=90.0))
    assert "clean / datatrove on 2 cores: 1.10×** (target ≥ 1.5×: **not met**)" in section
    assert "1 → 2 cores: 1.50×** (target ≥ 1.8×: **not met**)" in section
    assert "| **sum of the steps** | | 11.0 | | 11.00 |" in section   # 11 s over 1000 pages
    assert "leave 74.0 s (82%)" in section   # the 1-core run's 90 s less the steps and its 5 s start-up


def test_targets_reached_are_stated_as_met():
    section = vs_datatrove.report(_facts(clean2_s=40.0, datatrove_s=80.0, clean1_s=76.0))
    assert "2.00×** (target ≥ 1.5×: **met**)" in section and "1.90×** (target ≥ 1.8×: **met**)" in section


def test_only_the_marked_section_is_rewritten(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# Before\n{vs_datatrove.MARK_BEGIN}\nold figures\n{vs_datatrove.MARK_END}\n## After\n")
    vs_datatrove.rewrite_section(path, f"{vs_datatrove.MARK_BEGIN}\nnew figures\n{vs_datatrove.MARK_END}")
    assert path.read_text() == f"# Before\n{vs_datatrove.MARK_BEGIN}\nnew figures\n{vs_datatrove.MARK_END}\n## After\n"
    path.write_text("# no markers\n")
    with pytest.raises(vs_datatrove.BenchError, match="no <!-- bench:clean-vs-datatrove --> "):
        vs_datatrove.rewrite_section(path, "x")


def test_the_repository_benchmarks_file_has_the_section():
    text = (Path(vs_datatrove.REPO) / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert text.count(vs_datatrove.MARK_BEGIN) == 1 and text.count(vs_datatrove.MARK_END) == 1
