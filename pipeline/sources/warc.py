"""WARC / WET records to documents: fastwarc reads the records, a tolerant scanner takes over where it stops.

fastwarc (strict mode) raises on most malformed archives, but not all: measured on fastwarc 2.0.1,
records whose header lines end in LF only (hand-made WET files such as the cc_net sample) make it
stop without an error, or read a whole LF-only record as one header value of the record after it.
So a record fastwarc returns is held back until fastwarc has parsed the next one after it; where
fastwarc stops (error, misread header, or end of stream), the scanner below reads on from the held
record. On a well-formed file the scanner reads just the last record; on archives whose
Content-Length is wrong (WET files that count characters, not bytes), whose header lines end in LF
only, or that are cut short, it re-finds record boundaries at version lines ("WARC/1.0",
"WARC/0.18") and reports stretches that belong to no record, so the caller can count them.

HTTP heads and payload encodings are undone here rather than by fastwarc, whose HTTP parser returns
an empty payload, or drops part of the page, for heads with LF line ends (ClueWeb), and whose gzip
decoder silently truncates a corrupt payload and fails on payloads that are already decoded but
still labelled gzip (as crawlers store them).

Only `response` (HTTP responses: HTML becomes `html`, text/plain becomes `text`) and `conversion`
(WET extracted text) records are documents; request, metadata, warcinfo, revisit and resource
records describe a crawl rather than hold a page, and are skipped.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Iterator

import brotli
from fastwarc.warc import ArchiveIterator

from pipeline.config import ReadConfig
from pipeline.document import rejection
from pipeline.sources.charset import (UndecodableError, charset_from_content_type, charset_from_meta,
                                      decode_bytes)
from pipeline.stages.routing import KEPT, REJECTED

STAGE = "read"
DOCUMENT_TYPES = ("response", "conversion")
HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xml", "text/xml")


@dataclass
class WarcRecord:
    headers: dict[str, str]       # names lower-cased
    block: bytes
    offset: int                   # of the record's first byte in the decompressed stream
    problem: str | None = None    # why the record is unusable (cut short, too large, unparseable)
    reason: str = "read_error"    # the rejection reason a problem is counted under


def iter_warc_records(stream: BinaryIO, config: ReadConfig) -> Iterator[WarcRecord]:
    """Every record of a (decompressed) WARC stream, in order; unusable stretches come with a `problem`."""
    tape = _Tape(stream)
    held = None
    for record in _fastwarc_records(tape, config):
        if held is not None:
            yield held          # fastwarc has parsed the record after it, so its end was right
        held = record
    reader = _PushbackReader(stream, config.chunk_bytes, offset=tape.tell())
    reader.unread(tape.copy_from(held.offset if held is not None else 0))
    yield from _scan_records(reader, config)


def _fastwarc_records(tape: _Tape, config: ReadConfig) -> Iterator[WarcRecord]:
    """Records as fastwarc reads them, up to the first it cannot vouch for."""
    try:
        for record in ArchiveIterator(tape, parse_http=False, stream_detect=False):
            fields = record.headers.items()
            if any("\n" in value for _, value in fields):
                return              # LF-only header lines, read as one value: the scanner reads them
            if record.content_length > config.max_record_bytes:
                return              # the scanner skips it, watching for a false Content-Length
            headers = {name.lower(): value for name, value in fields}
            tape.forget_before(record.stream_pos)
            wanted = headers.get("warc-type", "").lower() in DOCUMENT_TYPES
            yield WarcRecord(headers, record.reader.read() if wanted else b"", record.stream_pos)
    except OSError:
        return                      # fastwarc cannot parse on; the scanner reads from the held record


def _too_large(headers: dict[str, str], offset: int, length: int) -> WarcRecord:
    return WarcRecord(headers, b"", offset, f"record of {length} bytes exceeds max_record_bytes",
                      reason="record_too_large")


class _Tape:
    """The stream as fastwarc reads it, keeping a copy of what it read since the record held back
    (see `iter_warc_records`), so the scanner can read those bytes again. fastwarc stops before a
    record too large to read, so the copy is at most about one record and fastwarc's read-ahead.
    """

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._position = 0            # offset of the next byte fastwarc reads
        self._kept = bytearray()      # the bytes [_kept_from, _position), if _kept_from < _position
        self._kept_from = 0

    def tell(self) -> int:            # fastwarc's record offsets (stream_pos) count from here
        return self._position

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        start, self._position = self._position, self._position + len(data)
        if self._position > self._kept_from:
            self._kept += data[max(self._kept_from - start, 0):]
        return data

    def forget_before(self, offset: int) -> None:
        del self._kept[: offset - self._kept_from]
        self._kept_from = offset

    def copy_from(self, offset: int) -> bytes:
        return bytes(self._kept[offset - self._kept_from:])


class _PushbackReader:
    """Line and block reads over a buffered stream, with bytes that can be put back.

    A line longer than `line_limit` comes in pieces of at most that size, so no line of a damaged
    or hostile archive is ever held whole.
    """

    def __init__(self, stream: BinaryIO, line_limit: int, offset: int = 0):
        self._stream = stream
        self._line_limit = line_limit
        self._back = b""
        self._back_at = 0             # how much of _back has been read again (slicing it per line is quadratic)
        self.offset = offset          # in the stream, of the next byte read

    def readline(self) -> bytes:
        if self._back_at < len(self._back):
            stop = min(len(self._back), self._back_at + self._line_limit)
            end = self._back.find(b"\n", self._back_at, stop)
            stop = end + 1 if end >= 0 else stop
            line, self._back_at = self._back[self._back_at:stop], stop
            if end < 0 and len(line) < self._line_limit:      # the line goes on in the stream
                line += self._stream.readline(self._line_limit - len(line))
        else:
            line = self._stream.readline(self._line_limit)
        self.offset += len(line)
        return line

    def read(self, size: int) -> bytes:
        head = self._back[self._back_at:self._back_at + size]
        self._back_at += len(head)
        data = head + (self._stream.read(size - len(head)) if size > len(head) else b"")
        self.offset += len(data)
        return data

    def unread(self, data: bytes) -> None:
        if self._back_at >= len(data) and self._back.startswith(data, self._back_at - len(data)):
            self._back_at -= len(data)        # the bytes just read again from _back: step back, copy nothing
        else:
            self._back, self._back_at = data + self._back[self._back_at:], 0
        self.offset -= len(data)


def _is_blank(line: bytes) -> bool:
    return line in (b"\r\n", b"\n")


def _is_record_start(line: bytes) -> bool:
    """A version line such as "WARC/1.0" or ClueWeb's "WARC/0.18", and nothing else on it."""
    version = line.rstrip(b"\r\n")[5:]
    return line.startswith(b"WARC/") and version.replace(b".", b"", 1).isdigit()


def _record_start_in(block: bytes) -> int:
    """Offset of the first line of `block` (after its first) that starts a record, or -1."""
    index = block.find(b"\nWARC/")
    while index >= 0:
        line_end = block.find(b"\n", index + 1)
        if _is_record_start(block[index + 1: line_end + 1 if line_end >= 0 else len(block)]):
            return index + 1
        index = block.find(b"\nWARC/", index + 1)
    return -1


def _strip_separator(block: bytes) -> bytes:
    for separator in (b"\r\n\r\n", b"\n\n"):
        if block.endswith(separator):
            return block[: -len(separator)]
    return block


def _scan_records(reader: _PushbackReader, config: ReadConfig) -> Iterator[WarcRecord]:
    """The records from the reader's position on, found by Content-Length and checked by `_realign`."""
    while True:
        start = reader.offset
        line = reader.readline()
        if not line:
            return
        if _is_blank(line):
            continue
        if not _is_record_start(line):
            skipped = len(line) + _skip_to_record_start(reader)
            yield WarcRecord({}, b"", start, f"{skipped} bytes that are no WARC record at byte {start}")
            continue
        try:
            headers = _read_headers(reader, config.max_record_bytes)
        except _HeaderTooLarge:
            _skip_to_record_start(reader)
            yield WarcRecord({}, b"", start, f"record header at byte {start} exceeds max_record_bytes",
                             reason="record_too_large")
            continue
        if headers is None:
            yield WarcRecord({}, b"", start, f"record header cut short at byte {start}")
            return
        try:
            length = int(headers.get("content-length", ""))
        except ValueError:
            length = -1
        if length < 0:
            yield WarcRecord(headers, b"", start, f"record at byte {start} has no valid Content-Length")
            continue
        block = reader.read(min(length, config.max_record_bytes))
        if len(block) == length:
            yield WarcRecord(headers, _realign(reader, block, config.max_record_bytes), start)
            continue
        # The block is cut short or too large to hold. A record that starts inside it shows that its
        # Content-Length was false: the block ends there, and the records after it are read.
        boundary = _record_start_in(block)
        if boundary >= 0:
            reader.unread(block[boundary:])
            yield WarcRecord(headers, _strip_separator(block[:boundary]), start)
        elif length > config.max_record_bytes:
            _skip_block(reader, length - len(block), block[-_START_LINE_BYTES:], config)
            yield _too_large(headers, start, length)
        else:
            yield WarcRecord(headers, block, start, f"record cut short: {len(block)} of {length} bytes")
            return


_START_LINE_BYTES = 32      # more than "\nWARC/1.0\r\n": what a record start split between reads may span


def _skip_block(reader: _PushbackReader, size: int, before: bytes, config: ReadConfig) -> None:
    """Skip `size` bytes of a block too large to hold, or up to the first record start among them (a
    false Content-Length must not hide the records after it). `before`: the bytes just before them."""
    tail = before or b"\n"          # the block follows a blank line, so a record may start at once
    while size > 0 and (data := reader.read(min(config.chunk_bytes, size))):
        size -= len(data)
        window = tail + data
        start = _record_start_in(window)
        if start >= 0:
            reader.unread(window[start:])
            return
        tail = window[-_START_LINE_BYTES:]


def _skip_to_record_start(reader: _PushbackReader) -> int:
    """Skip to the next line that starts a record (or the end); returns the bytes skipped."""
    skipped = 0
    while (line := reader.readline()) and not _is_record_start(line):
        skipped += len(line)
    reader.unread(line)
    return skipped


class _HeaderTooLarge(Exception):
    pass


def _read_headers(reader: _PushbackReader, limit: int) -> dict[str, str] | None:
    """The header fields up to the blank line that ends them; None where the stream ends first."""
    headers: dict[str, str] = {}
    name = None
    size = 0
    while True:
        line = reader.readline()
        if not line:
            return None
        size += len(line)
        if size > limit:
            raise _HeaderTooLarge
        if _is_blank(line):
            return headers
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        if text[:1] in (" ", "\t") and name:      # folded continuation line
            headers[name] += " " + text.strip()
            continue
        name, _, value = text.partition(":")
        name = name.strip().lower()
        headers[name] = value.strip()


def _realign(reader: _PushbackReader, block: bytes, limit: int) -> bytes:
    """Check that the next record starts right after `block`; if not, re-find the boundary.

    Returns the record's true block (at most `limit` bytes) and leaves the reader at the next record
    (or its garbage).
    """
    trailer = []
    while (line := reader.readline()) and _is_blank(line):
        if len(trailer) < 2:          # separators; a flood of blank lines is passed over, not held
            trailer.append(line)
    if not line or _is_record_start(line):
        reader.unread(line)
        return block
    # The Content-Length was wrong. Too long: the block swallowed the next record's start.
    boundary = _record_start_in(block)
    if boundary >= 0:
        reader.unread(block[boundary:] + b"".join(trailer) + line)
        return _strip_separator(block[:boundary])
    # Too short: the record goes on up to the next line that starts a record.
    rest, size = [*trailer, line], len(block) + len(line)
    while (line := reader.readline()) and not _is_record_start(line):
        rest.append(line)
        size += len(line)
        if size > limit:              # no record is that long: the bytes after the block are no part of it
            reader.unread(b"".join([*rest, line]))
            return block
    reader.unread(line)
    return _strip_separator(block + b"".join(rest))


def _unbracket(value: str | None) -> str | None:
    """wget writes WARC-Target-URI and WARC-Record-ID wrapped in <...> (the WARC 1.0 draft syntax)."""
    if value and value.startswith("<") and value.endswith(">"):
        return value[1:-1]
    return value or None


def _iso_date(value: str | None) -> str | None:
    if not value:
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None            # ClueWeb writes dates such as 2008-10-294T...; drop rather than mislead
    return value


def warc_documents(stream: BinaryIO, source: str, label: str, config: ReadConfig) -> Iterator[tuple[str, dict]]:
    """(KEPT, document) and (REJECTED, rejection) pairs for the records of one WARC/WET stream."""
    seen_ids: set[str] = set()
    for position, record in enumerate(iter_warc_records(stream, config)):
        record_type = record.headers.get("warc-type", "").lower()
        if record_type not in DOCUMENT_TYPES and record.problem is None:
            continue
        record_id = _unbracket(record.headers.get("warc-record-id"))
        if record_id in seen_ids:      # hand-made archives repeat ids; an id must name one document
            record_id = None
        seen_ids.add(record_id)
        doc = {
            "id": record_id or f"{label}:{position}",
            "source": source,
            "url": _unbracket(record.headers.get("warc-target-uri")),
            "date": _iso_date(record.headers.get("warc-date")),
        }
        if record.problem is not None:
            yield REJECTED, rejection(doc, STAGE, record.reason, error=record.problem)
            continue
        try:
            if record_type == "conversion":
                charset = charset_from_content_type(record.headers.get("content-type"))
                text = decode_bytes(record.block, (charset,), config.max_replacement_ratio, detect=True)
                yield KEPT, {**doc, "text": text}
            else:
                yield _response_document(doc, record, config)
        except (UndecodableError, _PayloadError) as error:
            yield REJECTED, rejection(doc, STAGE, getattr(error, "reason", "read_error"), error=str(error))


class _PayloadError(ValueError):
    reason = "read_error"


class _PayloadTooLarge(_PayloadError):
    reason = "record_too_large"


def _response_document(doc: dict, record: WarcRecord, config: ReadConfig) -> tuple[str, dict]:
    warc_content_type = record.headers.get("content-type", "application/http").lower()
    if not warc_content_type.startswith("application/http"):
        return REJECTED, rejection(doc, STAGE, "unsupported_content_type", content_type=warc_content_type)
    status, headers, body = parse_http_response(record.block)
    if not 200 <= status < 300:
        return REJECTED, rejection(doc, STAGE, "http_status", status=status)
    content_type = headers.get("content-type", "")
    mime = content_type.split(";")[0].strip().lower()
    if mime and mime not in HTML_TYPES and mime != "text/plain":
        return REJECTED, rejection(doc, STAGE, "unsupported_content_type", content_type=mime)
    body = _decode_content_encoding(body, headers.get("content-encoding", ""), config.max_record_bytes)
    declared = (charset_from_content_type(content_type), None if mime == "text/plain" else charset_from_meta(body))
    text = decode_bytes(body, declared, config.max_replacement_ratio, detect=True)
    return KEPT, {**doc, ("text" if mime == "text/plain" else "html"): text}


def parse_http_response(block: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status code, lower-cased headers and body (transfer encoding undone) of a raw HTTP response."""
    ends = [(block.find(mark), mark) for mark in (b"\r\n\r\n", b"\n\n")]
    found = [(index, mark) for index, mark in ends if index >= 0]
    if not found:
        raise _PayloadError("HTTP response without a header end")
    index, mark = min(found)
    head, body = block[:index], block[index + len(mark):]
    lines = head.decode("iso-8859-1").splitlines()
    parts = lines[0].split() if lines else []
    if len(parts) < 2 or not parts[0].upper().startswith("HTTP/") or not (parts[1].isascii() and parts[1].isdigit()):
        raise _PayloadError(f"bad HTTP status line {lines[0][:80] if lines else ''!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    return int(parts[1]), headers, body


def _dechunk(body: bytes) -> bytes:
    """Undo chunked transfer encoding; a body that is not really chunked is returned as it is."""
    chunks, position = [], 0
    while True:
        line_end = body.find(b"\n", position)
        if line_end < 0:
            return b"".join(chunks) if chunks else body
        size_text = body[position:line_end].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return b"".join(chunks) if chunks else body
        if size == 0:
            return b"".join(chunks)
        chunks.append(body[line_end + 1: line_end + 1 + size])
        position = line_end + 1 + size
        position += 2 if body[position:position + 2] == b"\r\n" else 1


def _decode_content_encoding(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo gzip/deflate/br, inflating at most `limit` bytes. Crawlers such as Common Crawl store
    payloads already decoded but keep the header, so a body that does not look encoded is taken as it is."""
    encoding = encoding.strip().lower()
    try:
        if encoding in ("gzip", "x-gzip") and body[:2] == b"\x1f\x8b":
            return _inflate(zlib.decompressobj(16 + zlib.MAX_WBITS), body, limit)
        if encoding == "deflate":
            try:
                return _inflate(zlib.decompressobj(), body, limit)
            except zlib.error:
                return _inflate(zlib.decompressobj(-zlib.MAX_WBITS), body, limit)
        if encoding == "br":
            decompressor = brotli.Decompressor()
            out = decompressor.process(body, output_buffer_limit=limit + 1)
            if len(out) > limit:
                raise _PayloadTooLarge(f"br payload inflates beyond max_record_bytes ({limit})")
            return out if decompressor.is_finished() else body
    except (zlib.error, brotli.error) as error:
        if encoding in ("gzip", "x-gzip"):
            raise _PayloadError(f"corrupt {encoding} payload: {error}") from None
        return body
    return body


def _inflate(decompressor, data: bytes, limit: int) -> bytes:
    """`data` decompressed whole by a zlib `decompressor`, or _PayloadTooLarge beyond `limit` bytes."""
    out = decompressor.decompress(data, limit + 1)
    if len(out) > limit:
        raise _PayloadTooLarge(f"payload inflates beyond max_record_bytes ({limit})")
    if not decompressor.eof:
        raise zlib.error("incomplete or truncated stream")
    return out
