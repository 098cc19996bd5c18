"""Every local running mode gives the same bytes, on an archive of a few hundred real WARC records.

Beam's multi-threaded direct mode used to lose documents (and once crashed): its embedded worker
flushes output buffers from a timer thread while the DoFn's thread is still writing to them.
"""
import hashlib
import json
import threading

import apache_beam as beam
import pytest
from apache_beam.portability import python_urns
from apache_beam.transforms.environments import EmbeddedPythonGrpcEnvironment

from pipeline.__main__ import main
from pipeline.runner import make_pipeline
from pipeline.text.fasttext_model import load_fasttext_model
from pipeline.text.lang import BUNDLED_MODEL
from tests.many_records_warc import write_many_records_warc

MODES = {
    "fnapi": [],
    "in_memory": ["--runner=DirectRunner", "--direct_running_mode=in_memory"],
    "multi_threading": ["--runner=DirectRunner", "--direct_running_mode=multi_threading", "--direct_num_workers=4"],
    "multi_processing": ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
}


def output_digest(out_dir):
    digest = hashlib.sha256()
    for path in sorted(out_dir.rglob("part-*")) + [out_dir / "stats.json"]:
        digest.update(path.relative_to(out_dir).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def many_records(tmp_path_factory):
    return write_many_records_warc(tmp_path_factory.mktemp("warc") / "many.warc.gz", pages=200)


@pytest.fixture(scope="module")
def fnapi_output(many_records, tmp_path_factory):
    out = tmp_path_factory.mktemp("fnapi") / "out"
    assert main(["clean", "--input", str(many_records), "--output", str(out), "--langs", "all"]) == 0
    return out


def test_archive_has_hundreds_of_documents(fnapi_output):
    assert json.loads((fnapi_output / "stats.json").read_text())["input_docs"] >= 250


@pytest.mark.parametrize("mode", ["in_memory", "multi_threading", "multi_processing"])
def test_direct_modes_match_fnapi_byte_for_byte(mode, many_records, fnapi_output, tmp_path):
    out = tmp_path / "out"
    assert main(["clean", "--input", str(many_records), "--output", str(out), "--langs", "all", *MODES[mode]]) == 0
    assert output_digest(out) == output_digest(fnapi_output)


def test_threaded_workers_flush_output_only_from_the_writing_thread():
    """The pipeline the local runner executes gives its embedded workers no timed flush."""
    pipeline = make_pipeline(MODES["multi_threading"])
    _ = pipeline | beam.Create([1]) | beam.Map(str)
    proto = pipeline.to_runner_api(default_environment=EmbeddedPythonGrpcEnvironment.default())
    executed = pipeline.runner.executed_proto(proto)
    embedded = [env for env in executed.components.environments.values() if env.urn == python_urns.EMBEDDED_PYTHON_GRPC]
    assert embedded
    for environment in embedded:
        assert json.loads(environment.payload)["data_buffer_time_limit_ms"] >= 24 * 3600 * 1000


def test_fasttext_model_loads_once_per_process_from_any_thread():
    models = []
    threads = [threading.Thread(target=lambda: models.append(load_fasttext_model(str(BUNDLED_MODEL))))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(models) == 8 and all(model is models[0] for model in models)
