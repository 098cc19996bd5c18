"""HTML to plain text: the main content of a page, with boilerplate (menus, footers, ads) left out.

Two extractors: resiliparse (the default) and trafilatura (the choice of FineWeb and datatrove).
resiliparse keeps more of a page's template than trafilatura: header and footer menus and
navigation repeated down the page. `strip_boilerplate_lines` removes those lines from its text, so
that they neither reach the corpus nor trip the quality rules that count duplicate and
unpunctuated lines. On the labelled bench (bench/labelled.py, BENCHMARKS.md) resiliparse with
that step kept 88% of the known article text against trafilatura's 77%, extracting about 8 times
as many pages a second, with as few duplicates and junk pages kept; it keeps more template text
(48% of kept characters against 39%). Pages with a very large number of tags go to resiliparse
whatever the choice, so one page cannot stall a worker. Both are called with caches and
cross-document deduplication off, so a page's text never depends on which pages came before it on
the same worker.
"""
from __future__ import annotations

import functools
import logging
from typing import Any

from pipeline.config import ExtractConfig
from pipeline.text.normalize import normalize_text
from pipeline.text.quality import TERMINAL_PUNCTUATION
from pipeline.text.verdict import Decision, Verdict, drop, keep
from pipeline.text.words import split_words


def document_text(doc: dict[str, Any], config: ExtractConfig) -> tuple[str, Verdict]:
    """A document's normalized text (extracted from its `html` when it has one), and the verdict:
    keep, or drop as "html_too_large", "extract_error" or "extract_empty". The text is returned
    even for a drop, for callers that keep everything."""
    html = doc.get("html")
    if html is None:
        text = normalize_text(doc.get("text") or "")
    elif len(html) > config.max_html_chars:
        return "", drop("html_too_large", Decision("html_chars", len(html), ">", config.max_html_chars),
                        html_chars=len(html))
    else:
        try:
            text = normalize_text(extract_text(html, config, doc.get("url")))
        except ImportError:
            raise  # a missing module fails every page alike: the environment is broken, not the page
        except Exception as error:  # noqa: BLE001 -- parsers fail on odd markup; the page is reported
            return "", drop("extract_error", error=f"{type(error).__name__}: {error}")
    if len(text) < config.min_chars:
        return text, drop("extract_empty", Decision("chars", len(text), "<", config.min_chars), chars=len(text))
    return text, keep()


def extract_text(html: str, config: ExtractConfig, url: str | None = None) -> str:
    """The main text of an HTML page ("" when there is none)."""
    if config.extractor == "resiliparse" or html.count("<") > config.max_trafilatura_tags:
        text = _resiliparse_text(html, config)
        return strip_boilerplate_lines(text, config.nav_line_max_words) if config.strip_boilerplate else text
    return _trafilatura_text(html, config, url)


def is_navigation_line(line: str, max_words: int) -> bool:
    """A short line without terminal punctuation: a menu entry, breadcrumb or link label, not a sentence."""
    stripped = line.strip()
    return not stripped.endswith(TERMINAL_PUNCTUATION) and len(split_words(stripped)) < max_words


def strip_boilerplate_lines(text: str, nav_max_words: int = 10) -> str:
    """`text` without the template lines an extractor left in it: the runs of navigation lines that
    open and close the page (menus, breadcrumbs, footer links) and navigation lines met earlier in
    the page (a menu repeated in the footer). Headings between paragraphs stay, and so do repeated
    sentences and cookie or javascript notices: those are for the quality rules to judge (C4's
    notice rule drops cookie walls; with the notices stripped here, bench/labelled.py kept 3 of 4).
    Blank lines are kept where they separate kept lines."""
    lines = text.split("\n")
    navigation = [bool(line.strip()) and is_navigation_line(line, nav_max_words) for line in lines]
    content = [i for i, line in enumerate(lines) if line.strip() and not navigation[i]]
    if not content:
        return ""
    seen = {line.strip() for line in lines[:content[0]]}   # the opening menu, repeated further down
    kept = []
    for i in range(content[0], content[-1] + 1):
        stripped = lines[i].strip()
        if navigation[i]:
            if stripped in seen:
                continue
            seen.add(stripped)
        kept.append(lines[i])
    return "\n".join(kept)


def _trafilatura_text(html: str, config: ExtractConfig, url: str | None) -> str:
    import trafilatura

    text = trafilatura.extract(
        html,
        url=url,
        fast=config.fast,
        favor_precision=config.favor == "precision",
        favor_recall=config.favor == "recall",
        include_comments=config.include_comments,
        include_tables=config.include_tables,
        include_images=False,
        include_links=False,
        deduplicate=False,
        with_metadata=False,
        output_format="txt",
        config=_trafilatura_settings(),
    )
    return text or ""


@functools.cache
def _trafilatura_settings():
    from trafilatura.settings import use_config

    # trafilatura logs an ERROR line for every page it cannot parse; those pages are counted as
    # "extract_empty" instead of flooding worker logs.
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    return use_config()


def _resiliparse_text(html: str, config: ExtractConfig) -> str:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(html)
    return extract_plain_text(
        tree,
        preserve_formatting=True,
        main_content=config.main_content,
        list_bullets=True,
        alt_texts=False,
        links=False,
        form_fields=False,
        noscript=False,
        comments=config.include_comments,
        skip_elements=None if config.include_tables else ["table"],
    )
