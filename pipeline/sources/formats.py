"""Which reader a source needs: its format, from its name or its first bytes.

The format follows the file name where it says one (`.warc.gz`, `.jsonl.zst`, ...) and the content
otherwise; compression always follows the content (gzip/zstd magic bytes), so a misnamed file such
as `x.warc.gz.bad` is still read correctly.
"""
from __future__ import annotations

import hashlib
import posixpath

from apache_beam.io.filesystems import FileSystems

from common.compressed import ReadError

WARC, JSONL, JSON, PARQUET, HTML, TXT, DATASET = "warc", "jsonl", "json", "parquet", "html", "txt", "dataset"

_EXTENSIONS = {
    ".warc": WARC, ".wet": WARC, ".arc": WARC,
    ".jsonl": JSONL, ".ndjson": JSONL, ".json": JSON,
    ".parquet": PARQUET,
    ".html": HTML, ".htm": HTML, ".xhtml": HTML,
    ".txt": TXT,
}
_COMPRESSION_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd")
_OTHER_COMPRESSIONS = (b"BZh", b"\xfd7zXZ\x00", b"PK\x03\x04", b"\x04\x22\x4d\x18")   # bzip2, xz, zip, lz4

JSON_LEAD = b"\xef\xbb\xbf \t\r\n"        # what may precede a JSON value: a UTF-8 byte order mark, whitespace

# Files that `datasets.save_to_disk` writes at the top of a saved Dataset / DatasetDict.
DATASET_MARKERS = ("state.json", "dataset_dict.json")


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def base_name(source: str) -> str:
    """The file name of a path or URL."""
    path = source.split("#", 1)[0].split("?", 1)[0] if is_url(source) else source   # urlsplit raises on "http://[x"
    return posixpath.basename(path.rstrip("/")) or source


def source_label(source: str) -> str:
    """What derived ids start with ("<label>:<position>"): the file name, readable, and a digest of the
    whole source as given, so `a/part-0.jsonl` and `b/part-0.jsonl` never share an id. The digest is
    of the text alone (not Python's salted `hash`), so every run and every runner derives the same ids.
    """
    digest = hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
    return f"{base_name(source)}@{digest}"


def format_from_name(source: str) -> str | None:
    """The format a name announces, or None when only the content can tell."""
    name = base_name(source).lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return _EXTENSIONS.get(posixpath.splitext(name)[1])


def format_from_content(head: bytes) -> str:
    """The format of (decompressed) bytes that start with `head`; ReadError for binary data."""
    if head.startswith(b"WARC/"):
        return WARC
    if head.startswith(b"PAR1"):
        return PARQUET
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):         # UTF-16 text, whose BOM the decoder reads
        return TXT
    if b"\x00" in head or head.startswith(_OTHER_COMPRESSIONS):
        raise ReadError(f"unsupported binary format (starts with {head[:8]!r}); supported: WARC, WET, JSONL, "
                        "JSON, parquet, HTML, text, gzip/zstd of these, datasets folders")
    stripped = head.lstrip(JSON_LEAD)
    if stripped[:1] in (b"{", b"["):
        return JSONL
    if stripped[:1] == b"<":
        return HTML
    return TXT


def is_dataset_dir(path: str) -> bool:
    """Whether `path` is a folder written by `datasets.save_to_disk`."""
    return any(FileSystems.exists(FileSystems.join(path, marker)) for marker in DATASET_MARKERS)
