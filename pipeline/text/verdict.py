"""The answer every filter gives: keep the document, or drop it with a reason and the decision behind it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Decision:
    """What decided a drop: `signal` measured `value`, which failed the rule `value op threshold`,
    e.g. word_count 31 < 50. Rules that test a property rather than a number name what they found:
    `Decision("text", "lorem ipsum", "contains")`."""

    signal: str
    value: Any
    op: str
    threshold: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def describe(decision: dict[str, Any]) -> str:
    """One line for a decision as written in a rejection record: "word_count 31 < 50"."""
    if "threshold" not in decision:
        return f"{decision['signal']} {decision['op']} {decision.get('value')!r}"
    value, threshold = format_value(decision.get("value")), format_value(decision["threshold"])
    return f"{decision['signal']} {value} {decision['op']} {threshold}"


def format_value(value: Any) -> str:
    """A value or threshold as a decision shows it: 0.41, 50, de,en."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Verdict:
    """Outcome of one filter on one document.

    `reason` is None to keep the document, otherwise a short snake_case reason such as
    "gopher_min_words" that becomes a key of `stats.json["rejected"]`. `signals` are the
    measurements the filter computed; they are written on kept documents so users can
    re-filter without re-running the pipeline. `decision` says which measurement failed which
    threshold; it is written on the rejection record.
    """

    reason: str | None = None
    signals: dict[str, Any] = field(default_factory=dict)
    decision: Decision | None = None

    @property
    def keep(self) -> bool:
        return self.reason is None

    def rejection_fields(self) -> dict[str, Any]:
        """What a rejection record carries beyond provenance: the signals and the decision."""
        return {**self.signals, **({"decision": self.decision.as_dict()} if self.decision else {})}


def keep(**signals: Any) -> Verdict:
    return Verdict(None, signals)


def drop(reason: str, decision: Decision | None = None, **signals: Any) -> Verdict:
    return Verdict(reason, signals, decision)


@dataclass(frozen=True)
class Check:
    """One rule applied to one document: drop as `reason` if `failed`, `decision` saying why."""

    reason: str
    failed: bool
    decision: Decision


def below(reason: str, signal: str, value: float, minimum: float, applies: bool = True) -> Check:
    """The rule "drop if `value` < `minimum`" (only where it `applies`)."""
    return Check(reason, applies and value < minimum, Decision(signal, value, "<", minimum))


def above(reason: str, signal: str, value: float, maximum: float, applies: bool = True) -> Check:
    """The rule "drop if `value` > `maximum`" (only where it `applies`)."""
    return Check(reason, applies and value > maximum, Decision(signal, value, ">", maximum))


def first_failure(checks: list[Check], signals: dict[str, Any], disabled: frozenset[str] = frozenset()) -> Verdict:
    """Drop by the first failed check that is not disabled, else keep; `signals` either way."""
    failed = next((check for check in checks if check.failed and check.reason not in disabled), None)
    return keep(**signals) if failed is None else drop(failed.reason, failed.decision, **signals)
