"""Declared charsets that would turn ASCII or UTF-8 pages into nonsense lose to the bytes themselves."""
from __future__ import annotations

import pytest

from pipeline.sources.charset import charset_from_meta, decode_bytes

ASCII_PAGE = '<html><head><meta charset="{}"></head><body><p>A plain page, in ASCII.</p></body></html>'


@pytest.mark.parametrize("declared", ["utf-16", "UTF-16LE", "utf-16be", "utf-32", "utf-7", "cp037"])
def test_ascii_page_declaring_a_charset_that_cannot_read_ascii_decodes_as_ascii(declared):
    page = ASCII_PAGE.format(declared)
    data = page.encode("ascii")
    assert charset_from_meta(data) == declared
    assert decode_bytes(data, (charset_from_meta(data),)) == page
    assert decode_bytes(data, (declared, None)) == page         # the same from an HTTP header


def test_utf8_page_declaring_utf16_decodes_as_utf8():
    page = ASCII_PAGE.format("utf-16").replace("ASCII", "UTF-8: café, 東京")
    assert decode_bytes(page.encode("utf-8"), ("utf-16",)) == page


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_real_utf16_without_bom_is_still_read_as_declared(codec):
    page = ASCII_PAGE.format(codec).replace("ASCII", "UTF-16: café, 東京")
    assert decode_bytes(page.encode(codec), (codec,)) == page


def test_real_utf16_cjk_text_without_markup_is_read_as_declared():
    text = "東京は日本の首都です。" * 20
    assert decode_bytes(text.encode("utf-16-le"), ("utf-16-le",)) == text


@pytest.mark.parametrize("label", ["undefined", "base64", "zlib", "rot13", "hex", "idna"])
def test_a_declared_codec_that_cannot_decode_bytes_is_ignored(label):
    """Found by tests/test_text_properties.py: <meta charset="undefined"> raised UnicodeError."""
    page = ASCII_PAGE.format(label)
    assert decode_bytes(page.encode("ascii"), (charset_from_meta(page.encode("ascii")),)) == page
    assert decode_bytes("café".encode("utf-8"), (label,)) == "café"
