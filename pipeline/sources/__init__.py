"""Readers that turn source files and URLs into documents.

`expand_sources` resolves the `--input` specs when the pipeline is built; `read_source` reads one
source, yielding `(KEPT, document)` and `(REJECTED, rejection record)` pairs (tags from
`pipeline.stages.routing`).
"""
from pipeline.sources.expand import SourceError, expand_sources
from pipeline.sources.read import read_source

__all__ = ["SourceError", "expand_sources", "read_source"]
