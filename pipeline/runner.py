"""Build a Beam pipeline from the user's Beam options, defaulting to the offline local runner."""
from __future__ import annotations

import logging
import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

# Beam's own default (Prism) downloads a binary at start-up, which fails offline; FnApiRunner is
# the in-process portable runner and needs nothing. Short names users may type for it:
_LOCAL_RUNNER_NAMES = {"fnapirunner", "fnapi", "local"}


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
