"""The `quality` stage: heuristic rule sets and, when configured, the classifier score."""
from __future__ import annotations

import functools

import apache_beam as beam

from pipeline.stages.routing import JudgeStage
from pipeline.text.quality import QualityConfig, QualityJudge


class QualityFilter(beam.PTransform):
    """Documents → (kept, rejected), the first failing rule naming the reason; kept documents carry
    every quality signal. Configuration errors (unknown rule, unreadable model or bad-words list)
    raise ConfigError when the stage is applied."""

    def __init__(self, config: QualityConfig):
        super().__init__()
        self._config = config

    def expand(self, docs):
        QualityJudge(self._config)  # fail while the pipeline is built, with one line, not later on a worker
        return docs | JudgeStage("quality", functools.partial(QualityJudge, self._config))
