"""A module missing on the workers stops the run with that error, instead of failing every document alike."""
import sys
from pathlib import Path

import apache_beam as beam
import pytest

from pipeline.__main__ import main
from pipeline.runner import make_pipeline
from pipeline.stages.routing import JudgeStage
from pipeline.text.verdict import keep

HTML = str(Path(__file__).resolve().parents[1] / "data/sample/html")


def test_clean_stops_when_the_extractor_cannot_be_imported(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "trafilatura", None)     # as on a worker where it is not installed
    # one in-process worker: the module is hidden in this process only
    code = main(["clean", "--input", HTML, "--output", str(tmp_path / "out"), "--workers", "1",
                 "--set", "extract.extractor=trafilatura"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "trafilatura" in err and "ModuleNotFoundError" in err
    assert not (tmp_path / "out/stats.json").exists()


class _JudgeNeedingAMissingModule:
    def __call__(self, doc):
        import webcorpus_missing_scorer  # noqa: F401 -- not installed anywhere
        return keep()


def test_a_filter_that_cannot_import_its_module_fails_the_pipeline():
    pipeline = make_pipeline([])
    _ = (pipeline | beam.Create([{"id": "a", "text": "x"}, {"id": "b", "text": "y"}])
         | JudgeStage("quality", _JudgeNeedingAMissingModule))
    with pytest.raises(Exception, match="webcorpus_missing_scorer"):
        pipeline.run().wait_until_finish()
