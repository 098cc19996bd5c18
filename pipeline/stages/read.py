"""The read stage: sources to documents, spread across workers."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.sources.config import ReadConfig
from pipeline.sources.read import read_source
from pipeline.stages.routing import KEPT, REJECTED


class _ReadSource(beam.DoFn):
    def __init__(self, config: ReadConfig):
        self._config = config
        self._documents = Metrics.counter("read", "documents")
        self._rejected = Metrics.counter("read", "rejected")

    def process(self, source: str):
        for tag, record in read_source(source, self._config):
            if tag == REJECTED:
                self._rejected.inc()
                yield beam.pvalue.TaggedOutput(REJECTED, record)
            else:
                self._documents.inc()
                yield record


class ReadSources(beam.PTransform):
    """`p | ReadSources(sources, config)` -> `(documents, rejected)`.

    `sources` come from `expand_sources` (resolved when the pipeline is built). They are shuffled
    across workers before reading, so each worker reads whole files; with `config.redistribute`
    the documents are shuffled again, so the pages of one large WARC file are extracted in parallel.
    """

    def __init__(self, sources: list[str], config: ReadConfig):
        super().__init__()
        self._sources = list(sources)
        self._config = config

    def expand(self, root):
        sources = (root
                   | "ListSources" >> beam.Create(self._sources)
                   | "SpreadSources" >> beam.Reshuffle())
        routed = sources | "ReadSource" >> beam.ParDo(_ReadSource(self._config)).with_outputs(REJECTED, main=KEPT)
        documents = routed[KEPT]
        if self._config.redistribute:
            documents = documents | "SpreadDocuments" >> beam.Reshuffle()
        return documents, routed[REJECTED]
