"""Language identification with fastText's lid.176 model, and the keep/drop rule built on it.

Defaults follow datatrove's `LanguageFilter` and TFDS C4: keep English, and only where the model's
top label scores at least 0.65. `langs = ["all"]` (`--langs all`) keeps every document, whatever its
language or score, and labels it; the threshold then only matters to readers of `lang_score`.
Otherwise a document is dropped as "lang_not_wanted" (another top language), "lang_low_score" (a
wanted language below the threshold) or "lang_no_text" (nothing to identify).
"""
from __future__ import annotations

from pathlib import Path

from common.config_io import ConfigError
from pipeline.config import LangConfig
from pipeline.text.fasttext_model import fasttext_line, load_fasttext_model
from pipeline.text.verdict import Decision, Verdict, drop, keep

ALL_LANGS = "all"
BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "resources" / "lid.176.ftz"
# Label of a document with no text at all: ISO 639-2 "undetermined".
UNDETERMINED = "und"
_LABEL_PREFIX = "__label__"


def wanted_languages(config: LangConfig) -> frozenset[str] | None:
    """The codes to keep, or None when every language is kept."""
    codes = {code.strip().lower() for code in config.langs if code.strip()}
    if not codes:
        raise ConfigError("lang.langs is empty; give language codes such as en,de or 'all'")
    if ALL_LANGS in codes:
        if len(codes) > 1:
            raise ConfigError(f"lang.langs mixes 'all' with language codes: {','.join(sorted(codes))}")
        return None
    return frozenset(codes)


def model_languages(model) -> frozenset[str]:
    return frozenset(label.removeprefix(_LABEL_PREFIX) for label in model.get_labels())


def check_languages(wanted: frozenset[str] | None, known: frozenset[str]) -> None:
    """Raise a one-line ConfigError for a wanted code the model can never predict."""
    unknown = sorted((wanted or frozenset()) - known)
    if unknown:
        raise ConfigError(
            f"unknown language code(s) for the language-ID model: {', '.join(unknown)} "
            f"(use ISO 639-1 codes such as en, de, zh, or 'all')"
        )


def identify(model, text: str) -> tuple[str, float]:
    """Top language of the whole `text` (all of it, line breaks as spaces) and its score in [0, 1]."""
    line = fasttext_line(text)
    if not line:
        return UNDETERMINED, 0.0
    labels, scores = model.predict(line, k=1)
    # lid.176 can give a score a hair above 1.0 from float rounding.
    return labels[0].removeprefix(_LABEL_PREFIX), round(min(float(scores[0]), 1.0), 4)


def judge_language(lang: str, score: float, wanted: frozenset[str] | None, threshold: float) -> Verdict:
    signals = {"lang": lang, "lang_score": score}
    if wanted is None:
        return keep(**signals)
    if lang == UNDETERMINED:
        return drop("lang_no_text", Decision("lang", lang, "=", UNDETERMINED), **signals)
    if lang not in wanted:
        return drop("lang_not_wanted", Decision("lang", lang, "not in", sorted(wanted)), **signals)
    if score <= threshold:  # strict, as CCNet and FineWeb keep only scores above the threshold
        return drop("lang_low_score", Decision("lang_score", score, "<=", threshold), **signals)
    return keep(**signals)


class LanguageJudge:
    """Document → Verdict carrying `lang` and `lang_score`; loads the model once when built."""

    def __init__(self, config: LangConfig):
        if not 0.0 <= config.threshold <= 1.0:
            raise ConfigError(f"lang.threshold must be between 0 and 1, got {config.threshold}")
        self._wanted = wanted_languages(config)
        self._threshold = config.threshold
        self._model = load_fasttext_model(config.model or str(BUNDLED_MODEL))
        check_languages(self._wanted, model_languages(self._model))

    def __call__(self, doc: dict) -> Verdict:
        lang, score = identify(self._model, doc.get("text") or "")
        return judge_language(lang, score, self._wanted, self._threshold)
