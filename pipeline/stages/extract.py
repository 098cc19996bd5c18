"""The extract stage: HTML becomes text, and every text is normalized before any filter sees it."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.config import ExtractConfig
from pipeline.document import rejection
from pipeline.stages.routing import KEPT, REJECTED
from pipeline.text.extract import document_text
from pipeline.text.verdict import Verdict

STAGE = "extract"


class _ExtractDocument(beam.DoFn):
    def __init__(self, config: ExtractConfig, filtering: bool):
        self._config = config
        self._filtering = filtering
        self._extracted = Metrics.counter(STAGE, "html_extracted")

    def setup(self):
        # The extractor's modules and settings load once per worker, not on the first document.
        document_text({"html": "<html><body><p>Warm-up page.</p></body></html>"}, self._config)

    def process(self, doc: dict):
        text, verdict = document_text(doc, self._config)
        if "html" in doc:
            self._extracted.inc()
        if self._filtering and not verdict.keep:
            yield beam.pvalue.TaggedOutput(REJECTED, _rejected_page(doc, text, verdict, self._config.max_html_chars))
            return
        yield {**{key: value for key, value in doc.items() if key != "html"}, "text": text}


def _rejected_page(doc: dict, text: str, verdict: Verdict, max_html_chars: int) -> dict:
    """The rejection of a page this stage drops. Its HTML is the only copy of the page, so it is kept:
    whole up to `max_html_chars` characters, else cut there and flagged `html_truncated`, so that
    rejected/ can be audited or mined (e.g. as negatives for `train-quality`) without the source."""
    record = rejection({**doc, "text": text}, STAGE, verdict.reason, **verdict.rejection_fields())
    if "html" in doc:
        record["html"] = doc["html"][:max_html_chars]
        if len(doc["html"]) > max_html_chars:
            record["html_truncated"] = True
    return record


class ExtractText(beam.PTransform):
    """`docs | ExtractText(config, filtering)` -> `(documents, rejected)`.

    Documents with `html` get its main text as `text` (and lose `html`); every text is normalized.
    Rejected pages keep their HTML (see `_rejected_page`) and any text extraction found.
    With `filtering=False` (the user left `extract` out of `--stages`) HTML is still converted,
    since nothing downstream reads HTML, but no document is dropped: an empty or failed
    extraction passes on with empty text.
    """

    def __init__(self, config: ExtractConfig, filtering: bool = True):
        super().__init__()
        self._config = config
        self._filtering = filtering

    def expand(self, docs):
        routed = docs | "ExtractText" >> beam.ParDo(_ExtractDocument(self._config, self._filtering)).with_outputs(
            REJECTED, main=KEPT)
        return routed[KEPT], routed[REJECTED]
