"""HTML extraction on real pages (pure functions), and the ExtractText stage in a real Beam pipeline."""
from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from pipeline.config import ExtractConfig, ReadConfig
from pipeline.sources import read_source
from pipeline.stages.extract import ExtractText
from pipeline.text.extract import document_text, extract_text, is_navigation_line, strip_boilerplate_lines
from pipeline.text.verdict import keep

HTML = Path(__file__).resolve().parents[1] / "data" / "sample" / "html"
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "sources"


def page(path: Path) -> dict:
    [(_, doc)] = list(read_source(str(path), ReadConfig()))
    return doc


@pytest.fixture(scope="module")
def python_blog():
    return page(HTML / "en--blog.python.org.html")


@pytest.mark.parametrize("extractor", ["trafilatura", "resiliparse"])
def test_main_content_without_boilerplate(python_blog, extractor):
    text = extract_text(python_blog["html"], ExtractConfig(extractor=extractor))
    assert "Python 3.6.0 is the newest major release of the Python language" in text
    for boilerplate in ("Older Post", "Newer Post", "Blog Archive"):
        assert boilerplate in python_blog["html"] and boilerplate not in text
    assert "<" not in text and len(text) < len(python_blog["html"]) / 20


def test_charset_detected_page_extracts_to_chinese():
    text = extract_text(page(FIXTURES / "zh--archive.org.he.xinhuanet.com.25340717.html")["html"], ExtractConfig())
    assert "话剧《约定无期限》" in text and "\ufffd" not in text


@pytest.mark.parametrize("path", sorted(HTML.iterdir()), ids=lambda p: p.name)
def test_every_sample_page_gives_text(path):
    text, verdict = document_text(page(path), ExtractConfig())
    assert verdict.keep and len(text) > 200


def test_verdicts():
    config = ExtractConfig(min_chars=20, max_html_chars=10_000)
    assert document_text({"html": "<html><body><nav>Home</nav></body></html>"}, config)[1].reason == "extract_empty"
    too_large = document_text({"html": "<p>" + "x" * 10_000 + "</p>"}, config)[1]
    assert too_large.reason == "html_too_large" and too_large.signals == {"html_chars": 10_007}
    text, verdict = document_text({"text": "cafÃ© au lait\r\nis a drink.\x00"}, config)
    assert verdict.keep and text == "café au lait\nis a drink."
    assert document_text({"text": "  \n "}, config)[1].reason == "extract_empty"


def _summary(doc):
    return doc["id"], "html" in doc, len(doc.get("text", "")) >= 50


def test_extract_stage_filters(python_blog):
    docs = [python_blog, {"id": "empty", "source": "s", "html": "<html><body></body></html>"},
            {"id": "plain", "source": "s", "text": "Plain text documents are normalized, not extracted. " * 3}]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        kept, rejected = p | beam.Create(docs) | ExtractText(ExtractConfig(min_chars=50))
        assert_that(kept | "Kept" >> beam.Map(_summary),
                    equal_to([(python_blog["id"], False, True), ("plain", False, True)]), label="kept")
        assert_that(rejected | "Reasons" >> beam.Map(lambda r: (r["id"], r["stage"], r["reason"])),
                    equal_to([("empty", "extract", "extract_empty")]), label="rejected")


def test_extract_stage_without_filtering_converts_but_keeps_all(python_blog):
    docs = [python_blog, {"id": "empty", "source": "s", "html": "<html><body></body></html>"}]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        kept, rejected = p | beam.Create(docs) | ExtractText(ExtractConfig(min_chars=50), filtering=False)
        assert_that(kept | "Kept" >> beam.Map(_summary),
                    equal_to([(python_blog["id"], False, True), ("empty", False, False)]), label="kept")
        assert_that(rejected, equal_to([]), label="rejected")


def test_rejected_pages_keep_their_html_up_to_the_cap():
    """A page dropped at this stage is not lost: its rejection keeps the HTML (cut at max_html_chars,
    flagged), and whatever text extraction found."""
    empty_html = "<html><body><p>Not much here.</p></body></html>"
    huge_html = "<html><body><p>" + "word " * 3_000 + "</p></body></html>"
    docs = [{"id": "empty", "source": "s", "html": empty_html}, {"id": "huge", "source": "s", "html": huge_html},
            {"id": "short", "source": "s", "text": "Too short."}]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        _, rejected = p | beam.Create(docs) | ExtractText(ExtractConfig(min_chars=50, max_html_chars=10_000))
        kept_html = {"empty": empty_html, "huge": huge_html[:10_000], "short": None}
        assert_that(rejected | beam.Map(lambda r: (r["id"], r["reason"], r.get("html") == kept_html[r["id"]],
                                                   r.get("html_truncated"), r.get("text"))),
                    equal_to([("empty", "extract_empty", True, None, "Not much here."),
                              ("huge", "html_too_large", True, True, None),
                              ("short", "extract_empty", True, None, "Too short.")]))


def test_pages_with_more_tags_than_trafilatura_handles_quickly_go_to_resiliparse():
    """trafilatura's time grows with the tag count (a million <br> took a minute); beyond
    max_trafilatura_tags the page is extracted by resiliparse, whose output keeps its blank line."""
    html = "<html><body><p>Hello world text here.</p>" + "<br>" * 5_000 + "<p>End.</p></body></html>"
    few_tags = ExtractConfig(extractor="trafilatura", max_trafilatura_tags=1_000)
    assert extract_text(html, few_tags) == extract_text(html, ExtractConfig(extractor="resiliparse"))
    assert document_text({"html": html}, few_tags) == ("Hello world text here.\n\nEnd.", keep())
    assert extract_text(html, ExtractConfig(extractor="trafilatura")).strip() == "Hello world text here.\nEnd."


PAGE_WITH_TEMPLATE = """Home | News | Sport
About us

Bushfire threatens Hill Top

Hundreds of people have been forced to vacate their homes as strong winds pushed a bushfire towards the town.
Home | News | Sport
A new blaze near Goulburn has forced the closure of the Hume Highway.
This site uses cookies to improve your experience.
The fire service said the wind would ease overnight.
The fire service said the wind would ease overnight.

Home | News | Sport
Contact
Privacy"""


def test_strip_boilerplate_lines_removes_menus_and_repeated_navigation_but_keeps_content():
    assert strip_boilerplate_lines(PAGE_WITH_TEMPLATE) == (
        "Hundreds of people have been forced to vacate their homes as strong winds pushed a bushfire towards the town.\n"
        "A new blaze near Goulburn has forced the closure of the Hume Highway.\n"
        "This site uses cookies to improve your experience.\n"    # C4's notice rule judges these
        "The fire service said the wind would ease overnight.\n"
        "The fire service said the wind would ease overnight.")   # repeated sentences are the quality rules' call


def test_strip_boilerplate_lines_keeps_headings_between_paragraphs():
    text = "First paragraph ends here.\n\nA heading\n\nSecond paragraph ends here."
    assert strip_boilerplate_lines(text) == text


def test_a_page_of_navigation_only_strips_to_nothing():
    assert strip_boilerplate_lines("Home\nAbout\n\nContact | Imprint\n") == ""
    assert strip_boilerplate_lines("") == ""


def test_navigation_lines():
    assert is_navigation_line("Older posts", 10) and not is_navigation_line("It rained.", 10)
    assert not is_navigation_line("one two three four five six seven eight nine ten eleven", 10)


def test_resiliparse_strips_template_lines_unless_told_not_to(python_blog):
    raw = extract_text(python_blog["html"], ExtractConfig(extractor="resiliparse", strip_boilerplate=False))
    stripped = extract_text(python_blog["html"], ExtractConfig(extractor="resiliparse"))
    assert stripped == strip_boilerplate_lines(raw) and len(stripped) < len(raw)
    assert "Python 3.6.0 is the newest major release of the Python language" in stripped
