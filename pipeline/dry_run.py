"""`--dry-run` of `clean` and `tokenize`: what a run would do, printed; nothing runs.

Offline by design, so a Dataflow launch can be checked on a machine with no credentials or network:
remote inputs (gs://..., @gs://... lists, URLs) are shown as given, never listed or read; local ones
are listed. The graph is built exactly as a run builds it (so bad settings and model paths fail
here too), and its stages are printed. With DataflowRunner the job is translated as Dataflow would
receive it and, with `--dataflow_job_file=PATH`, written there, never submitted.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from typing import Callable

import apache_beam as beam
from apache_beam.options.pipeline_options import DebugOptions, DirectOptions, StandardOptions

from common.cli import USAGE_ERROR, fail
from common.config_io import ConfigError
from common.fileio import atomic_write, read_bytes
from pipeline.runner import is_local, make_pipeline, refuse_local_paths, with_local_workers

SHOWN_PER_INPUT = 3
# Beam's own dry-run option: DataflowRunner then builds the job without submitting it, and option
# validation skips its GCS bucket checks, which need credentials and network.
BEAM_DRY_RUN = "--dry_run=True"


def clean(prog: str, specs: list[str], config, out_dir: str, beam_args: list[str]) -> int:
    """`clean --dry-run`: resolve local inputs, build the clean graph, print it."""
    from pipeline.graph import build_clean
    from pipeline.sources import SourceError, expand_sources
    from pipeline.units import local_workers

    try:
        inputs = list_inputs(specs, lambda spec: expand_sources([spec], config.read, list_remote=False))
        if refused := refuse_local_paths(beam_args, [*sources_of(inputs), out_dir]):  # as the run would
            return fail(prog, refused, USAGE_ERROR)
        workers = local_workers(config.work, sources_of(inputs)) if is_local(beam_args) else 1
        pipeline = make_pipeline(with_local_workers([*beam_args, BEAM_DRY_RUN], workers))
        build_clean(pipeline, sources_of(inputs), config, out_dir, workers)
    except (SourceError, ConfigError, ValueError) as error:   # ValueError: Beam's option validation
        return fail(prog, " ".join(str(error).split()), USAGE_ERROR)
    return _report_or_fail(prog, pipeline, inputs, {"output": out_dir})


def tokenize(prog: str, input_path: str, tokenizer_path: str, out_dir: str, config, beam_args: list[str]) -> int:
    """`tokenize --dry-run`: list local cleaned files, load a local tokenizer, build the graph, print it.
    A remote tokenizer is not read, so its checksum and vocabulary stay unknown in the printed graph."""
    from pipeline.commands.tokenize import build_tokenize
    from pipeline.stages.tokenize import TokenizerIdentity
    from tokenizer import Tokenizer, TokenizerError
    from tokenizer.corpus import InputError, cleaned_files

    try:
        inputs = list_inputs([input_path], lambda spec: [spec] if is_remote(spec) else cleaned_files(spec))
        if is_remote(tokenizer_path):
            identity = TokenizerIdentity(tokenizer_path, "(not read in a dry run)", 0, 0)
        else:
            tokenizer = Tokenizer.load(tokenizer_path, read=read_bytes)
            identity = TokenizerIdentity(tokenizer_path, tokenizer.model_sha256, tokenizer.vocab_size,
                                         tokenizer.eot_id)
        pipeline = make_pipeline([*beam_args, BEAM_DRY_RUN])
        build_tokenize(pipeline, input_path, out_dir, identity, config)
    except (InputError, TokenizerError, ValueError) as error:   # ValueError: Beam's option validation
        return fail(prog, " ".join(str(error).split()), USAGE_ERROR)
    return _report_or_fail(prog, pipeline, inputs, {"tokenizer": tokenizer_path, "output": out_dir})


def _report_or_fail(prog: str, pipeline: beam.Pipeline, inputs: dict, outputs: dict) -> int:
    try:
        report(pipeline, inputs, outputs)
    except Exception as error:  # a Dataflow job that cannot be translated: one line, as every failure
        return fail(prog, f"{type(error).__name__}: {error}")
    finally:  # Beam deletes the temporary folder each pipeline makes only when the pipeline runs
        shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)
    return 0


def is_remote(spec: str) -> bool:
    """Whether an --input spec (a path, URL or @list) lives off this machine."""
    return "://" in spec.removeprefix("@")


def list_inputs(specs: list[str], expand: Callable[[str], list[str]]) -> dict[str, list[str]]:
    """Each spec with the sources it resolves to; `expand` lists local sources and gives remote ones as they are."""
    return {spec: expand(spec) for spec in specs}


def sources_of(inputs: dict[str, list[str]]) -> list[str]:
    """What the read step would be given: local sources as listed, remote ones as given."""
    return sorted({source for found in inputs.values() for source in found})


def report(pipeline: beam.Pipeline, inputs: dict[str, list[str]], outputs: dict[str, str]) -> None:
    """Print the runner, options, inputs, outputs and stages of `pipeline`; translate a Dataflow job."""
    options = pipeline.options
    runner = options.view_as(StandardOptions).runner
    if runner is None:
        workers = options.view_as(DirectOptions).direct_num_workers or 1
        runner = f"{type(pipeline.runner).__name__} (local, {workers} worker process{'es' if workers > 1 else ''})"
    print(f"runner: {runner}")
    chosen = {k: v for k, v in options.get_all_options(drop_default=True).items() if k not in ("runner", "dry_run")}
    print("options: " + (" ".join(f"--{k}={v}" for k, v in sorted(chosen.items())) or "(Beam defaults)"))
    sources = sources_of(inputs)
    remote = sum(map(is_remote, sources))
    print(f"inputs: {len(sources) - remote} local source(s), {remote} remote (read by the workers, not listed here)")
    for spec, found in inputs.items():
        if found == [spec] and is_remote(spec):
            print(f"  {spec}  (remote, as given)")
            continue
        local = [source for source in found if not is_remote(source)]
        remote_entries = [source for source in found if is_remote(source)]
        line = f"  {spec}: {len(local)} source(s): {_shown(local)}"
        if remote_entries:
            line += f"; {len(remote_entries)} remote, as given: {_shown(remote_entries)}"
        print(line)
    for name, path in outputs.items():
        print(f"{name}: {path}")
    print("stages: " + " -> ".join(stage_names(pipeline)))
    if runner is not None and "dataflow" in runner.lower():
        _report_dataflow_job(pipeline)
    print("dry run: nothing was read, written or submitted")


def _shown(sources: list[str]) -> str:
    return ", ".join(sources[:SHOWN_PER_INPUT]) + (", ..." if len(sources) > SHOWN_PER_INPUT else "")


def stage_names(pipeline: beam.Pipeline) -> list[str]:
    """The labels of the graph's top-level transforms, in the order they were applied."""
    return [part.full_label for part in pipeline.transforms_stack[0].parts]


def _report_dataflow_job(pipeline: beam.Pipeline) -> None:
    job = translate_dataflow_job(pipeline)
    print(f"dataflow job: {len(job['transforms'])} transforms translated (Runner v2); workers would install: "
          f"{', '.join(job['stagedPackages']) or '(nothing staged: give --setup_file=./setup.py or --sdk_container_image)'}")
    job_file = pipeline.options.view_as(DebugOptions).dataflow_job_file
    if job_file:
        atomic_write(job_file, json.dumps(job, indent=2, sort_keys=True).encode("utf-8"))
        print(f"dataflow job written to {job_file} (not submitted)")


def translate_dataflow_job(pipeline: beam.Pipeline) -> dict:
    """The Dataflow job `pipeline` would submit: Beam's job request (`job`), the unique names of the
    pipeline's transforms as Dataflow receives them, and the packages staged for its workers.

    The pipeline was built with Beam's `--dry_run` option, which stops DataflowRunner once the job
    is built, before any credential or network use; the packages are those its environments list,
    as Beam's stager made them (it builds the --setup_file sdist locally).
    """
    from apache_beam.portability import common_urns
    from apache_beam.portability.api import beam_runner_api_pb2

    with _without_build_probe_message():
        job = pipeline.run().job
    environments = job.proto_pipeline.components.environments.values()
    return {
        "job": json.loads(job.json()),
        "transforms": sorted(t.unique_name for t in job.proto_pipeline.components.transforms.values()),
        "stagedPackages": sorted({
            beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(artifact.role_payload).staged_name
            for environment in environments for artifact in environment.dependencies
            if artifact.role_urn == common_urns.artifact_roles.STAGING_TO.urn}),
    }


# What the child process prints when `build` is not installed: Beam's stager runs `python -m build`
# to find out, then builds the sdist with `setup.py sdist`, as it should.
_BUILD_PROBE_MESSAGE = ": No module named build"


@contextlib.contextmanager
def _without_build_probe_message():
    """Drop the one line Beam's sdist build prints on stderr when `build` is missing (see above):
    stderr is caught at the file-descriptor level, as child processes write there, and everything
    else caught is written on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode("utf-8", errors="replace").splitlines(keepends=True):
                if not line.rstrip().endswith(_BUILD_PROBE_MESSAGE):
                    sys.stderr.write(line)
