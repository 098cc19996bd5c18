"""Line-level deduplication across a corpus, as C4 does it: a line found in many documents
(navigation, cookie banners, "Jump to navigation Jump to search") is boilerplate, so it stays in
the first of those documents only: the one with the smallest key (the dedup stage uses id, then
content hash), so the choice does not depend on input order.

A line is identified by a 128-bit xxh3 hash of its text with outer whitespace stripped; blank
lines are never counted nor removed.
"""
from __future__ import annotations

import xxhash


def line_key(line: str) -> bytes | None:
    """Stable key of a line, or None for a blank one."""
    stripped = line.strip()
    return xxhash.xxh3_128_digest(stripped.encode("utf-8")) if stripped else None


def line_keys(text: str) -> set[bytes]:
    """Keys of the distinct non-blank lines of `text`."""
    return {key for key in map(line_key, text.splitlines()) if key is not None}


def remove_lines(text: str, removed: set[bytes]) -> str:
    """`text` without the lines whose key is in `removed`; the other lines stay byte for byte."""
    if not removed:
        return text
    return "".join(line for line in text.splitlines(keepends=True) if line_key(line) not in removed)


def strip_from(documents, min_docs: int):
    """For one line's documents (an iterable of sortable keys, read twice rather than held):
    the documents it is removed from, i.e. all but the smallest key, once it is in at least
    `min_docs` of them; none otherwise."""
    first, count = None, 0
    for document in documents:
        count += 1
        if first is None or document < first:
            first = document
    if count < min_docs:
        return
    for document in documents:
        if document != first:
            yield document
