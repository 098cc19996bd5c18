"""The document record that flows between stages, and the rejection record that leaves them.

A document is a plain, JSON-serialisable dict (Beam pickles it cheaply and it is written as is):

    id        str   the input record's own `id` where it has one, else derived stably from the source
                    (the WARC-Record-ID, or "<file name>@<digest of the whole source path>:<record position>"); never random
    source    str   the file or URL it was read from
    url       str   the page URL, when known (WARC-Target-URI, a `url` field); else absent or None
    date      str   crawl or publication date when known (ISO 8601); else absent or None
    text      str   plain text, once there is some (readers of text formats set it directly)
    html      str   decoded HTML still to be extracted (set by HTML and WARC response readers; the
                    extract stage replaces it with `text`)
    text_ref  tuple where the text waits on disk instead, (spill file, offset, length), once a record
                    has left the filter stages (`pipeline.stages.spill`); the writer puts `text` back
    journal_ref tuple where the rest of a replayed record waits, (journal file, offset, length): a
                    record replayed from its unit's journal crosses the shuffles with only the fields
                    later steps read (`REPLAYED_FIELDS` below); the writer puts the
                    rest back (`pipeline.stages.spill.SpillReader.restore`)
    lang, lang_score          set by the language stage
    trail     tuple (unit key, ((stage, bytes), ...)) while a record is inside its work unit's chain: the
                    unit it was read from and its size as it left each stage it passed (`pipeline.stats`
                    counts the funnel from these); set by the read stage, copied onto rejections, and
                    removed where the chain ends (`pipeline.stages.journal`), so never written
    <signal>  number          each quality signal a stage computed, as a top-level key

Kept documents are written with `html` removed. Stages never mutate their input dict; they yield
a new one (`{**doc, ...}`).
"""
from __future__ import annotations

from typing import Any

# Fields that describe where a document came from; copied onto its rejection record.
PROVENANCE_FIELDS = ("id", "source", "url")
TEXT_REF = "text_ref"
HTML_REF = "html_ref"   # where a rejected page's HTML waits on disk (pipeline.stages.spill)
JOURNAL_REF = "journal_ref"
TRAIL = "trail"
# Added by the dedup stage's `Fingerprint` while the text is at hand, removed again by `Deduplicate`:
# (content hash, LSH band keys, rank in a duplicate cluster).
FINGERPRINT = "dedup_fingerprint"
# The fields read after a unit's journal: by the counts (`pipeline.stages.summarize`), rejection
# records, dedup and the writers. A replayed record carries only these (and JOURNAL_REF).
REPLAYED_FIELDS = frozenset({*PROVENANCE_FIELDS, "stage", "reason", "lang", "error", "text", "html",
                             TEXT_REF, HTML_REF, FINGERPRINT})


def rejection(doc: dict[str, Any], stage: str, reason: str, **extra: Any) -> dict[str, Any]:
    """The record written to `rejected/` for a dropped document.

    It carries the document's text too (when it has any), so nothing dropped is lost: users can
    audit a rule or recover what it removed. `extra` holds the signals that decided it, and
    `duplicate_of` for duplicates.
    """
    record = {key: doc.get(key) for key in PROVENANCE_FIELDS}
    record.update(stage=stage, reason=reason, **extra)
    if TRAIL in doc:
        record[TRAIL] = doc[TRAIL]
    if doc.get("text"):
        record["text"] = doc["text"]
    elif doc.get(TEXT_REF):
        record[TEXT_REF] = doc[TEXT_REF]
    return record
