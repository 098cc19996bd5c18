"""How every stage routes documents: kept ones flow on, dropped ones become rejection records.

A document is a plain dict (see `pipeline.document`). A stage returns `(kept, rejected)`, two
PCollections; `graph.py` gathers every stage's rejections into `rejected/` and `stats.json`.
"""
from __future__ import annotations

from typing import Any, Callable

import apache_beam as beam

from pipeline.document import rejection
from pipeline.text.verdict import Verdict

KEPT = "kept"
REJECTED = "rejected"

Judge = Callable[[dict[str, Any]], Verdict]


class _ApplyJudge(beam.DoFn):
    def __init__(self, stage: str, make_judge: Callable[[], Judge]):
        self._stage = stage
        self._make_judge = make_judge

    def setup(self):
        # Models (fastText, classifiers) load here, once per worker, not once per element.
        self._judge = self._make_judge()

    def process(self, doc):
        try:
            verdict = self._judge(doc)
        except ImportError:
            raise  # a missing module fails every document alike: the run stops with it
        except Exception as error:  # a document that crashes a filter is reported, never lost
            yield beam.pvalue.TaggedOutput(
                REJECTED, rejection(doc, self._stage, f"{self._stage}_error", error=f"{type(error).__name__}: {error}"))
            return
        if verdict.keep:
            yield {**doc, **verdict.signals}
        else:
            yield beam.pvalue.TaggedOutput(
                REJECTED, rejection(doc, self._stage, verdict.reason, **verdict.rejection_fields()))


class JudgeStage(beam.PTransform):
    """Apply a per-document judge: keep (with its signals merged into the document) or reject (the
    rejection record carrying the signals and the decision: which signal failed which threshold).

    `make_judge` is a picklable zero-argument factory (a class or `functools.partial`) whose result
    maps a document to a `Verdict`; it is called once per worker in `DoFn.setup()`, and once while
    the graph is built, so that a bad setting or model path fails there, in one line, rather than
    later on every worker.
    """

    def __init__(self, stage: str, make_judge: Callable[[], Judge]):
        super().__init__()
        self._stage = stage
        self._make_judge = make_judge

    def expand(self, docs):
        self._make_judge()
        routed = docs | beam.ParDo(_ApplyJudge(self._stage, self._make_judge)).with_outputs(REJECTED, main=KEPT)
        return routed[KEPT], routed[REJECTED]
