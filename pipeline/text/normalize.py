"""Text normalization applied to every document before any filter sees it.

Unicode NFC, cheap mojibake repair, one kind of line break, no control characters or terminal
escapes, lone surrogates replaced (UTF-8 cannot encode them), no trailing spaces on lines, at most
one blank line in a row. Typography is left alone: curly quotes, ligatures and full-width forms are
real text in many languages, and HTML entities in plain text may be meant literally.

Mojibake repair is ftfy, which is thorough but slow (it took two thirds of read+extract time on
data/sample), so it only runs on text showing a trace of UTF-8 decoded as windows-1252/latin-1:
a lead byte of a two-byte UTF-8 sequence (Â..ô) followed by what a continuation byte becomes in
those code pages, or a C1 control character. Text without such a pair cannot hold that mojibake.
"""
from __future__ import annotations

import re
import unicodedata

import ftfy

_FTFY = ftfy.TextFixerConfig(
    unescape_html=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    normalization="NFC",
    explain=False,
)
_CP1252_CONTINUATIONS = ("\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
                         "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122")
_MOJIBAKE_TRACE = re.compile(f"[\u00c2-\u00f4][{_CP1252_CONTINUATIONS}]|[\u0080-\u009f]")
_LINE_BREAKS = re.compile("\r\n?|[\u2028\u2029]")
_TERMINAL_ESCAPES = re.compile("\x1b\\[[0-9;?]*[A-Za-z]")
_SURROGATES = re.compile("[\ud800-\udfff]")
# C0 controls except tab and newline, DEL, C1 controls, BOM and noncharacters.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffe\uffff]")
_TRAILING_SPACE = re.compile(r"[ \t\u00a0\u3000]+(?=\n)")
_BLANK_RUNS = re.compile(r"\n{3,}")


def replace_surrogates(text: str) -> str:
    """Lone UTF-16 surrogates (JSON's "\\ud800" decodes to one) with U+FFFD: nothing can encode them."""
    return _SURROGATES.sub("\ufffd", text)


_MAX_PASSES = 3


def normalize_text(text: str) -> str:
    """The normalized text; normalizing it again changes nothing."""
    text = _normalize_once(text)
    # Removing a control character can bring the two halves of a mojibake pair together ("Â\x9d\x80"
    # becomes "Â\x80"), which only a further pass repairs.
    for _ in range(_MAX_PASSES - 1):
        if not _MOJIBAKE_TRACE.search(text):
            break
        text, previous = _normalize_once(text), text
        if text == previous:
            break
    return text


def _normalize_once(text: str) -> str:
    if _MOJIBAKE_TRACE.search(text):
        text = ftfy.fix_text(text, _FTFY)
    text = _LINE_BREAKS.sub("\n", text)
    text = _TERMINAL_ESCAPES.sub("", text)
    text = replace_surrogates(text)
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    text = _TRAILING_SPACE.sub("", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()
