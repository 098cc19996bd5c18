"""The `lang` stage: label every document with its language and keep the wanted ones."""
from __future__ import annotations

import functools

from pipeline.config import LangConfig
from pipeline.stages.routing import JudgeStage
from pipeline.text.lang import LanguageJudge


class LanguageFilter(JudgeStage):
    """Documents → (kept, rejected). Kept documents carry `lang` and `lang_score`; rejected ones are
    "lang_not_wanted" or "lang_low_score". A bad model path or an unknown language code raises
    ConfigError when the stage is applied."""

    def __init__(self, config: LangConfig):
        super().__init__("lang", functools.partial(LanguageJudge, config))
