"""ReadSources in a real Beam pipeline (FnApiRunner) on real files, chained into ExtractText."""
from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from pipeline.config import ExtractConfig, ReadConfig
from pipeline.sources import expand_sources, read_source
from pipeline.stages.extract import ExtractText
from pipeline.stages.read import ReadSources
from pipeline.stages.routing import KEPT
from pipeline.stages.sorted_rows import sort_rows
from pipeline.stages.unique_ids import later_occurrences

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
FIXTURES = ROOT / "tests" / "data" / "sources"
SPECS = [str(SAMPLE / "web"), str(SAMPLE / "jsonl" / "dolma-cc_en_head-*.jsonl.gz"),
         str(FIXTURES / "clipped.warc.gz"), str(FIXTURES / "example-bad.warc.gz.bad"),
         str(SAMPLE / "html" / "en--blog.python.org.html")]


def _expected(sources, config):
    """What reading each source directly gives: (document ids, rejection (id, reason) pairs)."""
    docs, rejected = [], []
    for source in sources:
        for tag, record in read_source(source, config):
            if tag == KEPT:
                docs.append(record["id"])
            else:
                rejected.append((record["id"], record["reason"]))
    return docs, rejected


def test_read_sources_matches_direct_reading(tmp_path):
    config = ReadConfig()
    sources = expand_sources(SPECS, config)
    assert len(sources) == 8
    doc_ids, rejections = _expected(sources, config)
    assert len(doc_ids) == 16 + 3 + 22 + 20 + 1 + 1 and len(set(doc_ids)) == len(doc_ids)
    assert sorted(reason for _, reason in rejections) == ["http_status", "read_error", "read_error"]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        docs, rejected = p | ReadSources(sources, config, str(tmp_path))
        assert_that(docs | "DocIds" >> beam.Map(lambda d: d["id"]), equal_to(doc_ids), label="docs")
        assert_that(rejected | "Reasons" >> beam.Map(lambda r: (r["id"], r["reason"])), equal_to(rejections),
                    label="rejected")


def test_read_then_extract_without_redistribution(tmp_path):
    config = ReadConfig(redistribute=False)
    sources = expand_sources([str(SAMPLE / "web" / "cc_net-sample.warc.wet.gz"),
                              str(SAMPLE / "html" / "en--blog.python.org.html")], config)
    with beam.Pipeline(runner=FnApiRunner()) as p:
        docs, _ = p | ReadSources(sources, config, str(tmp_path))
        texts, rejected = docs | ExtractText(ExtractConfig())
        assert_that(texts | beam.Map(lambda d: (d["id"].split("@")[0].split(":")[0], "html" in d, d["text"][:24])), equal_to([
            ("urn", False, "Famous Mark Twain Quotes"),
            ("cc_net-sample.warc.wet.gz", False, "馬克·吐溫名言\n不要放棄你的幻想。 當它們消失後"[:24]),
            ("urn", False, "Цитаты знаменитого Марка Твена"[:24]),
            ("en--blog.python.org.html", False, "Python 3.6.0 is now avai"),
        ]), label="texts")
        assert_that(rejected, equal_to([]), label="rejected")


def test_later_occurrences_of_an_id_are_all_but_the_first_in_content_order():
    # rows: id digest (2), source rank, record digest (2), position
    rows = np.array([[0, 7, 1, 0, 9, 4],    # id 7 in source 1
                     [0, 7, 0, 5, 0, 2],    # id 7 in source 0: first by source
                     [0, 7, 0, 5, 0, 1],    # the same record again, earlier: first of all
                     [0, 8, 1, 0, 0, 3],    # id 8 alone
                     [1, 7, 0, 0, 0, 0]],   # another id (the high half differs)
                    dtype=np.uint64)
    assert sorted(later_occurrences([sort_rows(rows)])) == [(0, 2), (1, 4)]
    # Blocks never split an id (`sorted_ranges` cuts on the first number), and each is read alone.
    assert sorted(later_occurrences([sort_rows(rows[:3]), sort_rows(rows[3:])])) == [(0, 2), (1, 4)]
    assert later_occurrences([]) == []
