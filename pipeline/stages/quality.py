"""The `quality` stage: heuristic rule sets and, when configured, the classifier score."""
from __future__ import annotations

import functools

from pipeline.config import QualityConfig
from pipeline.stages.routing import JudgeStage
from pipeline.text.quality import QualityJudge


class QualityFilter(JudgeStage):
    """Documents → (kept, rejected), the first failing rule naming the reason; kept documents carry
    every quality signal. Configuration errors (unknown rule, unreadable model or bad-words list)
    raise ConfigError when the stage is applied."""

    def __init__(self, config: QualityConfig):
        super().__init__("quality", functools.partial(QualityJudge, config))
