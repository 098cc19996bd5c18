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
    runner = options.view_as(StandardOptions).runner
    if runner is None or runner.lower() in _LOCAL_RUNNER_NAMES:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        options.view_as(StandardOptions).runner = None
        return beam.Pipeline(runner=FnApiRunner(), options=options)
    return beam.Pipeline(options=options)


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
