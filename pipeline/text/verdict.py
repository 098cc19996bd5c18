"""The answer every filter gives: keep the document, or drop it with a reason."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """Outcome of one filter on one document.

    `reason` is None to keep the document, otherwise a short snake_case reason such as
    "gopher_min_words" that becomes a key of `stats.json["rejected"]`. `signals` are the
    measurements the filter computed; they are written on kept documents so users can
    re-filter without re-running the pipeline.
    """

    reason: str | None = None
    signals: dict[str, Any] = field(default_factory=dict)

    @property
    def keep(self) -> bool:
        return self.reason is None


def keep(**signals: Any) -> Verdict:
    return Verdict(None, signals)


def drop(reason: str, **signals: Any) -> Verdict:
    return Verdict(reason, signals)
