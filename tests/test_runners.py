"""Which runners the commands reach, and what they refuse before starting one."""
import os
import socket
import subprocess
import sys
import time
import textwrap
from pathlib import Path

import apache_beam as beam
import pytest

from pipeline.__main__ import main
from pipeline.runner import in_one_process, make_pipeline, remote_workers, unknown_beam_flags
from tests.run_outputs import identical_outputs

REPO = Path(__file__).resolve().parents[1]
HTML = str(REPO / "data/sample/html")
DATAFLOW = ["--runner=DataflowRunner", "--project=p", "--region=us-central1", "--temp_location=gs://b/tmp"]


@pytest.mark.parametrize("runner_args", [
    DATAFLOW,
    ["--runner=PortableRunner", "--job_endpoint=embed"],                        # DOCKER by default
    ["--runner=PortableRunner", "--job_endpoint=jobs.example:8099", "--environment_type=EXTERNAL",
     "--environment_config=pool.example:50000"],
])
def test_clean_refuses_a_local_input_for_remote_workers_in_one_line(runner_args, tmp_path, capsys):
    code = main(["clean", "--input", HTML, "--output", "gs://bucket/out", *runner_args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "cannot read this machine's disk" in err and HTML in err


def test_clean_refuses_a_local_output_for_dataflow(capsys):
    code = main(["clean", "--input", "https://data.example/a.warc.gz", "--output", "out-here", *DATAFLOW])
    assert code == 2 and "out-here" in capsys.readouterr().err


def test_tokenize_refuses_local_paths_for_dataflow(tmp_path, capsys):
    (tmp_path / "tok").mkdir()
    code = main(["tokenize", "--input", "gs://b/clean/cleaned", "--tokenizer", str(tmp_path / "tok"),
                 "--output", "gs://b/shards", *DATAFLOW])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(tmp_path / "tok") in err


@pytest.mark.parametrize("runner_args, remote", [
    ([], False),
    (["--runner=DirectRunner"], False),
    (DATAFLOW, True),
    (["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"], False),
    (["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=EXTERNAL",
      "--environment_config=127.0.0.1:50000"], False),
    (["--runner=FlinkRunner", "--flink_master=flink.example:8081"], True),
])
def test_remote_workers(runner_args, remote):
    assert (remote_workers(runner_args) is not None) == remote


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


def output_files(out_dir: Path) -> dict[str, bytes]:
    return {name: content for name, content in identical_outputs(out_dir).items() if name != "report.html"}


@pytest.fixture(scope="module")
def default_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("default") / "out"
    assert main(["clean", "--input", HTML, "--output", str(out), "--langs", "all"]) == 0
    return output_files(out)


def test_portable_runner_with_loopback_workers_matches_the_default(default_output, tmp_path):
    out = tmp_path / "out"
    assert main(["clean", "--input", HTML, "--output", str(out), "--langs", "all", "--runner=PortableRunner",
                 "--job_endpoint=embed", "--environment_type=LOOPBACK"]) == 0
    assert output_files(out) == default_output


@pytest.fixture
def worker_pool():
    """Beam's worker pool on 127.0.0.1, as a cluster node runs it; it starts workers as `python`."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    pool = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                             f"--service_port={port}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        pool.kill()
        pool.wait()


def test_portable_runner_with_an_external_worker_pool_matches_the_default(default_output, worker_pool, tmp_path):
    out = tmp_path / "out"
    assert main(["clean", "--input", HTML, "--output", str(out), "--langs", "all", "--runner=PortableRunner",
                 "--job_endpoint=embed", "--environment_type=EXTERNAL", f"--environment_config={worker_pool}"]) == 0
    assert output_files(out) == default_output


def test_the_second_pass_of_a_local_run_drops_only_the_flags_that_spread_it_over_workers():
    args = ["--direct_num_workers=2", "--direct_running_mode", "multi_processing", "--temp_location=/tmp/t",
            "--direct_num_workers", "3"]
    assert in_one_process(args) == ["--temp_location=/tmp/t"]
    assert in_one_process(["--runner=DirectRunner"]) == ["--runner=DirectRunner"]


EVENTS = []   # the in-process worker runs the DoFns in this process, so they can record here


class _Recorded(beam.DoFn):
    def __init__(self, name):
        self._name = name

    def process(self, element):
        EVENTS.append(("process", self._name))
        yield element

    def teardown(self):
        EVENTS.append(("teardown", self._name))


def test_the_local_runner_lets_go_of_a_stage_before_the_next_one_runs():
    """Beam's worker would keep every stage's processor (and the buffers it grew) until the end."""
    EVENTS.clear()
    with make_pipeline([]) as p:
        (p | beam.Create([("k", 1), ("k", 2)]) | "First" >> beam.ParDo(_Recorded("first"))
         | beam.GroupByKey() | "Second" >> beam.ParDo(_Recorded("second")))
    assert EVENTS.index(("teardown", "first")) < EVENTS.index(("process", "second"))
    assert EVENTS.count(("teardown", "first")) == 1 and ("teardown", "second") in EVENTS
