"""Which runners the commands reach, and what they refuse before starting one."""
import sys
import textwrap

import pytest

from pipeline.runner import unknown_beam_flags

DATAFLOW = ["--runner=DataflowRunner", "--project=p", "--region=us-central1", "--temp_location=gs://b/tmp"]


def test_typos_are_still_caught():
    assert unknown_beam_flags(["--runnr=DirectRunner"]) == ["--runnr=DirectRunner"]
    assert unknown_beam_flags(["--runner=DataflowRuner"]) == ["--runner=DataflowRuner"]
    assert unknown_beam_flags([*DATAFLOW, "--num_worker=3"]) == ["--num_worker=3"]
    assert unknown_beam_flags([*DATAFLOW, "--num_workers=3", "--sdk_container_image=x"]) == []


def test_options_of_a_runner_outside_beams_core_are_accepted(tmp_path, monkeypatch):
    """A runner package declares its own options class; it is imported before flags are checked."""
    (tmp_path / "cluster_runner.py").write_text(textwrap.dedent('''
        from apache_beam.options.pipeline_options import PipelineOptions
        from apache_beam.runners.portability.portable_runner import PortableRunner

        class ClusterOptions(PipelineOptions):
            @classmethod
            def _add_argparse_args(cls, parser):
                parser.add_argument("--cluster_scheduler_address")

        class ClusterRunner(PortableRunner):
            pass
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cluster_runner", raising=False)
    args = ["--runner=cluster_runner.ClusterRunner", "--cluster_scheduler_address=10.0.0.1:8786"]
    assert unknown_beam_flags(args) == []
    assert unknown_beam_flags([*args, "--cluster_sheduler_address=x"]) == ["--cluster_sheduler_address=x"]


def test_dask_runner_options_are_not_rejected():
    # Dask is not installed here: its runner cannot be imported, so its flags are left to it.
    assert unknown_beam_flags(["--runner=apache_beam.runners.dask.dask_runner.DaskRunner",
                               "--dask_client_address=10.0.0.1:8786"]) == []
