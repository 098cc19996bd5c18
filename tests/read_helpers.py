"""Reading a source to lists, for the reader tests."""
from __future__ import annotations

import collections

from pipeline.config import ReadConfig
from pipeline.sources import read_source
from pipeline.stages.routing import KEPT, REJECTED

CONFIG = ReadConfig()


def read_all(source, config=CONFIG):
    """(documents, rejections) of `source`; every item must carry one of the two tags."""
    docs, rejected = [], []
    for tag, record in read_source(str(source), config):
        assert tag in (KEPT, REJECTED)
        (docs if tag == KEPT else rejected).append(record)
    return docs, rejected


def reasons(rejected):
    return collections.Counter(record["reason"] for record in rejected)
