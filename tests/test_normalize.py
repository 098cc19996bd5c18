"""Text normalization: NFC, mojibake repair, control characters, line breaks."""
from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from pipeline.text.normalize import normalize_text

UDHR = Path(__file__).resolve().parents[1] / "data" / "sample" / "text" / "udhr"


def test_nfc():
    assert normalize_text("Cafe\u0301") == "Caf\u00e9"
    assert normalize_text("\u1100\u1161") == "\uac00"          # Hangul jamo compose


def test_mojibake_is_repaired():
    assert normalize_text("The cafÃ© opened in SÃ£o Paulo") == "The café opened in São Paulo"
    assert normalize_text("â€œquotedâ€\x9d") == "\u201cquoted\u201d"


def test_controls_surrogates_and_boms_are_removed():
    assert normalize_text("a\x00b\x07c\x1bd\ufeffe\x7ff") == "abcdef"
    assert normalize_text("lone \ud800 surrogate") == "lone \ufffd surrogate"
    normalize_text("x\udfff").encode("utf-8")                   # always encodable


def test_line_breaks_and_blank_lines():
    assert normalize_text("  one\r\ntwo  \rthree\u2028four\n\n\n\n\nfive \t\n") == "one\ntwo\nthree\nfour\n\nfive"


def test_typography_is_kept():
    text = "\u201cQuote\u201d \ufb01ne \uff21 &amp; \u2014 dash"
    assert normalize_text(text) == text


@pytest.mark.parametrize("path", sorted(UDHR.iterdir()), ids=lambda p: p.name)
def test_real_text_is_stable(path):
    text = path.read_text()
    once = normalize_text(text)
    assert normalize_text(once) == once
    # Clean text only loses trailing spaces and extra blank lines; every other character stays.
    assert once.split() == unicodedata.normalize("NFC", text).split()


def test_terminal_escapes_and_c1_controls():
    assert normalize_text("\x1b[31mred\x1b[0m text") == "red text"
    assert normalize_text("it\x92s") == "it\u2019s"            # C1 byte that was a windows-1252 quote


def test_a_control_character_between_mojibake_halves_is_repaired_in_one_call():
    """Found by tests/test_text_properties.py: removing \\x9d joined "Â" and "\\x80", which only a
    second normalize_text call repaired, so normalization was not idempotent."""
    once = normalize_text("\x9dÂ\x80")
    assert normalize_text(once) == once
