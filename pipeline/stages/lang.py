"""The `lang` stage: label every document with its language and keep the wanted ones."""
from __future__ import annotations

import functools

import apache_beam as beam

from pipeline.stages.routing import JudgeStage
from pipeline.text.lang import LangConfig, LanguageJudge


class LanguageFilter(beam.PTransform):
    """Documents → (kept, rejected). Kept documents carry `lang` and `lang_score`; rejected ones are
    "lang_not_wanted" or "lang_low_score". A bad model path or an unknown language code raises
    ConfigError when the stage is applied."""

    def __init__(self, config: LangConfig):
        super().__init__()
        self._config = config

    def expand(self, docs):
        LanguageJudge(self._config)  # fail while the pipeline is built, with one line, not later on a worker
        return docs | JudgeStage("lang", functools.partial(LanguageJudge, self._config))
