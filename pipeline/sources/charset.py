"""Bytes to text: declared charsets first (HTTP header, HTML meta), each only if it decodes cleanly.

A declaration is a claim, not a fact: pages that say UTF-8 and hold GB18030 bytes are common (see
tests/data/sources/README.md), so a charset that fails to decode is skipped and detection (uchardet,
through resiliparse) decides. Nor is every charset that decodes believed: UTF-16/32, UTF-7 and EBCDIC
read ASCII bytes as other characters and decode nearly anything, so a page declaring one but made of
ASCII or UTF-8 bytes (no NULs) would become CJK nonsense; such a declaration is ignored (resiliparse's
bytes_to_str believes it). Labels follow the WHATWG encoding standard, where "iso-8859-1" and
"ascii" mean windows-1252 and "gb2312" means GB18030.
"""
from __future__ import annotations

import codecs
import functools
import re

from resiliparse.parse.encoding import detect_encoding

_WHATWG_LABELS = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "l1": "cp1252",
    "ascii": "cp1252", "us-ascii": "cp1252", "windows-1252": "cp1252",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030",
    "iso-8859-9": "cp1254", "latin5": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874",
    "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "shift_jis": "cp932", "sjis": "cp932",
}
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_CHARSET_PARAM = re.compile(r"charset\s*=\s*[\"']?\s*([\w.:\-]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([\w.:\-]+)", re.IGNORECASE)
_META_SCAN_BYTES = 4096
_DETECT_SAMPLE_BYTES = 64 * 1024
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n\r"


class UndecodableError(ValueError):
    """The bytes are not text in any encoding we can establish."""


def codec_name(label: str | None) -> str | None:
    """Python codec for a charset label, or None when the label is unknown or absent."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _WHATWG_LABELS.get(label, label)
    try:
        name = codecs.lookup(label).name
    except (LookupError, ValueError):  # ValueError: a label with a NUL in it
        return None
    return name if _decodes_bytes(name) else None


@functools.lru_cache(maxsize=256)
def _decodes_bytes(codec: str) -> bool:
    """False for codecs Python knows that do not turn bytes into text: "base64", "zlib", "rot13"
    (LookupError from bytes.decode) and "undefined" (UnicodeError on any input)."""
    try:
        b"a".decode(codec)
    except UnicodeDecodeError:  # a real decoder: "a" alone is just not its text (UTF-16 needs two bytes)
        return True
    except (LookupError, UnicodeError):
        return False
    return True


def charset_from_content_type(content_type: str | None) -> str | None:
    match = _CHARSET_PARAM.search(content_type or "")
    return match.group(1) if match else None


def charset_from_meta(html: bytes) -> str | None:
    """The charset an HTML page declares in a <meta> tag near its start."""
    match = _META_CHARSET.search(html[:_META_SCAN_BYTES])
    return match.group(1).decode("ascii", "replace") if match else None


def decode_bytes(data: bytes, declared: tuple[str | None, ...] = (), max_replacement_ratio: float = 0.01,
                 detect: bool = True) -> str:
    """Decode `data` by BOM, then each declared charset, then UTF-8, then (if `detect`) detection.

    UTF-8 with a few bad bytes (at most `max_replacement_ratio` of the characters) is repaired with
    U+FFFD. Raises UndecodableError when nothing fits: only possible with `detect=False`, or when
    detection can do no better than broken UTF-8.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    candidates = [codec for codec in map(codec_name, declared) if codec and _believable(codec, data)]
    candidates.append("utf-8")
    for codec in dict.fromkeys(candidates):
        try:
            return data.decode(codec)
        except UnicodeError:  # UnicodeDecodeError, or the plain UnicodeError some codecs ("idna") raise
            continue
    repaired = data.decode("utf-8", errors="replace")
    if repaired.count("\ufffd") <= max_replacement_ratio * max(len(repaired), 1):
        return repaired
    detected = codec_name(detect_encoding(data, max_len=_DETECT_SAMPLE_BYTES)) if detect else None
    if detected and detected != "utf-8":
        return data.decode(detected, errors="replace")
    share = repaired.count("\ufffd") / max(len(repaired), 1)
    raise UndecodableError(f"invalid UTF-8 ({share:.1%} of characters undecodable) and no other encoding detected")


@functools.cache
def _reads_ascii_as_ascii(codec: str) -> bool:
    try:
        return _PRINTABLE_ASCII.decode(codec) == _PRINTABLE_ASCII.decode("ascii")
    except UnicodeError:
        return False


def _believable(codec: str, data: bytes) -> bool:
    """False for a declared codec that reads ASCII as something else when the bytes look like ASCII or
    UTF-8: valid UTF-8 with few NULs (ASCII characters in UTF-16/32 are half or three quarters NULs)."""
    if _reads_ascii_as_ascii(codec):
        return True
    sample = data[:_DETECT_SAMPLE_BYTES]
    if sample.count(0) * 8 >= len(sample):
        return True
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=len(sample) == len(data))
    except UnicodeDecodeError:
        return True
    return False
