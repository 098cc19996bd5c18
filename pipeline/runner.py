"""Build a Beam pipeline from the user's Beam options, defaulting to the offline local runner."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions, StandardOptions
from apache_beam.portability import python_urns
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.runners.runner import create_runner
from apache_beam.runners.worker.sdk_worker import BundleProcessorCache

# Beam's own default (Prism) downloads a binary at start-up, which fails offline; FnApiRunner is
# the in-process portable runner and needs nothing. DirectRunner runs batch pipelines on it too,
# so it gets the same fix below. Names users may type for it:
_LOCAL_RUNNER_NAMES = {"fnapirunner", "fnapi", "local", "directrunner", "direct"}
# Beam's embedded worker (direct_running_mode=multi_threading) flushes each output buffer every
# second from a timer thread, while the DoFn's thread may be writing to that same buffer: elements
# written between the timer's read and its clear are lost, and a concurrent resize can crash the
# process. With this period the timer never fires in practice; buffers are flushed when full or
# closed, by the thread that writes them, as Dataflow's workers do by default.
_NO_TIMED_FLUSH_MS = 7 * 24 * 3600 * 1000


class LocalRunner(FnApiRunner):
    """FnApiRunner whose multi-threaded workers are safe to write output from several threads, and
    whose in-process worker lets go of each stage once it has run."""

    def run_via_runner_api(self, pipeline_proto, options):
        return super().run_via_runner_api(self.executed_proto(pipeline_proto), options)

    def _execute_bundle(self, runner_execution_context, bundle_context_manager, bundle_input):
        release_finished_stages(bundle_context_manager.worker_handlers,
                                running=bundle_context_manager.process_bundle_descriptor.id)
        return super()._execute_bundle(runner_execution_context, bundle_context_manager, bundle_input)

    @staticmethod
    def executed_proto(pipeline_proto):
        """`pipeline_proto` with every embedded worker's timed flush switched off, and the raw stderr of
        worker processes discarded (changed in place). A worker's log records reach the runner through
        Beam's logging channel and its errors through the control channel, so its stderr holds only
        second copies of tracebacks that the command reports once, in one line."""
        for environment in pipeline_proto.components.environments.values():
            if environment.urn == python_urns.EMBEDDED_PYTHON_GRPC:
                config = json.loads(environment.payload or b"{}")
                environment.payload = json.dumps({**config, "data_buffer_time_limit_ms": _NO_TIMED_FLUSH_MS}).encode()
            elif environment.urn == python_urns.SUBPROCESS_SDK and b"2>" not in environment.payload:
                environment.payload += b" 2>" + os.devnull.encode()
        return pipeline_proto


def release_finished_stages(worker_handlers, running: str) -> None:
    """Shut down the cached bundle processors of every stage but `running` in the in-process workers.

    Beam's SDK harness keeps each stage's processor for the next bundle of that stage, and frees
    an idle one only after a minute. FnApiRunner runs a stage's bundles back to back, so a kept
    processor is never used again, yet it holds its stage's encoding buffers, grown to the size
    of what the stage wrote (up to 10 MB per output): over the ~90 stages of a second pass, that
    memory grew with the corpus. Handlers of worker processes have no such cache here; their
    processes end with the pass.
    """
    for handler in worker_handlers:
        cache = getattr(handler, "bundle_processor_cache", None)
        if cache is None:
            continue
        for descriptor_id, processors in list(cache.cached_bundle_processors.items()):
            if descriptor_id != running:
                BundleProcessorCache._shutdown_cached_bundle_processors(processors)


class _BeamWarnings(logging.Handler):
    """Writes Beam's warnings to stderr (whatever sys.stderr is at the time) and drops its errors:
    every error Beam logs while a pipeline fails is also raised to the command, which reports it in
    one line, and a traceback logged before that line would bury it."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.ERROR:
            sys.stderr.write(self.format(record) + "\n")


def _route_beam_logs() -> None:
    beam_logger = logging.getLogger("apache_beam")
    if not any(isinstance(h, _BeamWarnings) for h in beam_logger.handlers):
        handler = _BeamWarnings(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        beam_logger.addHandler(handler)
    beam_logger.setLevel(logging.WARNING)
    beam_logger.propagate = False


def make_pipeline(beam_args: list[str]) -> beam.Pipeline:
    """A pipeline for `beam_args` (e.g. ["--runner=DataflowRunner", "--project=..."])."""
    _route_beam_logs()
    options = PipelineOptions(beam_args)
    if is_local(beam_args):
        options.view_as(StandardOptions).runner = None
        return beam.Pipeline(runner=LocalRunner(provision_info=_quiet_workers()), options=options)
    return beam.Pipeline(options=options)


def is_local(beam_args: list[str]) -> bool:
    """Whether `beam_args` run on the local runner `make_pipeline` picks by default."""
    runner = PipelineOptions(beam_args).view_as(StandardOptions).runner
    return runner is None or runner.lower() in _LOCAL_RUNNER_NAMES


def with_local_workers(beam_args: list[str], workers: int) -> list[str]:
    """`beam_args` that run a local pipeline in `workers` processes, unless the user chose how.

    Processes, not threads: extraction is CPU-bound Python. Each reads its own work units, so
    pages never cross between them; only compact records come back to the runner.
    """
    chosen = PipelineOptions(beam_args).get_all_options(drop_default=True)
    if workers <= 1 or not is_local(beam_args) or {"direct_num_workers", "direct_running_mode"} & chosen.keys():
        return beam_args
    return [*beam_args, f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]


_PARALLEL_FLAGS = ("--direct_num_workers", "--direct_running_mode")


def in_one_process(beam_args: list[str]) -> list[str]:
    """`beam_args` without the flags that spread a local run over several workers."""
    kept, skip = [], False
    for arg in beam_args:
        name = arg.split("=", 1)[0]
        if skip or name in _PARALLEL_FLAGS:
            skip = not skip and name in _PARALLEL_FLAGS and "=" not in arg   # "--flag value": drop both
            continue
        kept.append(arg)
    return kept


def _quiet_workers():
    """What FnApiRunner tells its worker processes: log real warnings only, not their start-up chatter."""
    from google.protobuf import struct_pb2
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner.fn_runner import ExtendedProvisionInfo

    options = struct_pb2.Struct()
    options.update({"default_sdk_harness_log_level": "WARNING",
                    # the harness's own module warns that it has no semi-persistent directory
                    "sdk_harness_log_level_overrides": {"__main__": "ERROR"}})
    return ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(
        retrieval_token="unused-retrieval-token", pipeline_options=options))


def unknown_beam_flags(beam_args: list[str]) -> list[str]:
    """Arguments in `beam_args` that no Beam option understands (typos such as --runnr=...).

    The chosen runner's module is imported first, so that options it declares itself count as
    known (the Dask runner's --dask_client_address, ...). A runner given by module path that
    cannot be imported here is left to report itself when the pipeline starts: only it knows its
    options. A runner name Beam does not know is reported as the unknown flag.
    """
    runner = _options(beam_args).view_as(StandardOptions).runner
    if runner is not None and runner.lower() not in _LOCAL_RUNNER_NAMES:
        try:
            create_runner(runner)
        except ValueError:                      # not a runner Beam knows, nor a module path
            return [arg for arg in beam_args if arg.startswith("--runner")]
        except ImportError:
            return []
    with quiet_option_parsing():
        known = set(PipelineOptions(beam_args).get_all_options(retain_unknown_options=False))
    unknown = []
    for arg in beam_args:
        if arg.startswith("--"):
            name = arg[2:].split("=", 1)[0].replace("-", "_")
            if name not in known:
                unknown.append(arg)
    return unknown


@contextlib.contextmanager
def quiet_option_parsing():
    """Beam logs a warning for every flag it does not know; callers that expect ours among them say so."""
    options_logger = logging.getLogger("apache_beam.options.pipeline_options")
    level = options_logger.level
    options_logger.setLevel(logging.ERROR)  # we report unknown flags ourselves, in one line
    try:
        yield
    finally:
        options_logger.setLevel(level)


def _options(beam_args: list[str]) -> PipelineOptions:
    with quiet_option_parsing():
        options = PipelineOptions(beam_args)
        options.get_all_options()           # Beam parses (and warns) on first use: here, while quiet
    return options


# Environments whose workers run on this machine (and so can read its files): LOOPBACK runs them
# in this process; EXTERNAL and PROCESS do where their address or job server is this machine.
_THIS_MACHINE = {"localhost", "127.0.0.1", "::1", "[::1]", "embed"}


def remote_workers(beam_args: list[str]) -> str | None:
    """The runner, when its workers run elsewhere and cannot read this machine's disk; else None."""
    options = _options(beam_args)
    runner = options.view_as(StandardOptions).runner
    if runner is None or runner.lower() in _LOCAL_RUNNER_NAMES:
        return None
    if "dataflow" in runner.lower():
        return runner
    portable = options.view_as(PortableOptions)
    environment = (portable.environment_type or "DOCKER").upper()
    if environment == "LOOPBACK":
        return None
    if environment == "EXTERNAL":
        address = (portable.environment_config or "").rsplit(":", 1)[0]
        return None if address in _THIS_MACHINE else runner
    if environment == "PROCESS":
        endpoint = (portable.job_endpoint or "embed").rsplit(":", 1)[0]
        return None if endpoint in _THIS_MACHINE else runner
    return runner


def refuse_local_paths(beam_args: list[str], paths: list[str]) -> str | None:
    """Why `paths` cannot be used with the chosen runner (one line), or None when they can:
    a remote runner's workers would find nothing at a path on this machine's disk."""
    runner = remote_workers(beam_args)
    local = [path for path in paths if "://" not in path]
    if runner is None or not local:
        return None
    return (f"{local[0]} is on this machine, but {runner} runs its workers elsewhere and they cannot read "
            f"this machine's disk; put it on storage the workers reach (gs://..., https://...)")
