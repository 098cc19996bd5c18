"""Build a Beam pipeline from the user's Beam options, defaulting to the offline local runner."""
from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

# Beam's own default (Prism) downloads a binary at start-up, which fails offline; FnApiRunner is
# the in-process portable runner and needs nothing. Short names users may type for it:
_LOCAL_RUNNER_NAMES = {"fnapirunner", "fnapi", "local"}


def make_pipeline(beam_args: list[str]) -> beam.Pipeline:
    """A pipeline for `beam_args` (e.g. ["--runner=DataflowRunner", "--project=..."])."""
    options = PipelineOptions(beam_args)
    if is_local(beam_args):
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        options.view_as(StandardOptions).runner = None
        return beam.Pipeline(runner=FnApiRunner(provision_info=_quiet_workers()), options=options)
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
    """Arguments in `beam_args` that no Beam option understands (typos such as --runnr=...)."""
    options_logger = logging.getLogger("apache_beam.options.pipeline_options")
    level = options_logger.level
    options_logger.setLevel(logging.ERROR)  # we report unknown flags ourselves, in one line
    try:
        known = set(PipelineOptions(beam_args).get_all_options(retain_unknown_options=False))
    finally:
        options_logger.setLevel(level)
    unknown = []
    for arg in beam_args:
        if arg.startswith("--"):
            name = arg[2:].split("=", 1)[0].replace("-", "_")
            if name not in known:
                unknown.append(arg)
    return unknown
