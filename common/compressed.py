"""Byte streams of stored files with their gzip or zstd compression undone, read a chunk at a time.

Beam's own decompressing reader (`FileSystems.open` with automatic compression) keeps ever more of
a large file in its buffer as lines are read from it; these readers hold one chunk, however large
the file, and deliver every good byte of a truncated or corrupt one before they say why it ended.
"""
from __future__ import annotations

import io
import zlib
from typing import BinaryIO, Iterator

import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ReadError(Exception):
    """A source's bytes cannot be read further (corrupt or truncated stream); the message says why."""


def open_raw(path: str) -> BinaryIO:
    """The bytes of `path` exactly as stored, through Beam FileSystems (local, gs://, ...)."""
    return FileSystems.open(path, mime_type="application/octet-stream",
                            compression_type=CompressionTypes.UNCOMPRESSED)


def decompressed(raw: BinaryIO, chunk_bytes: int) -> io.BufferedReader:
    """A buffered stream of `raw` with gzip or zstd compression (detected by magic bytes) undone."""
    stream = raw if hasattr(raw, "peek") else io.BufferedReader(raw, chunk_bytes)
    magic = stream.peek(4)[:4]
    if magic.startswith(_GZIP_MAGIC):
        return io.BufferedReader(_GzipMembers(stream, chunk_bytes), chunk_bytes)
    if magic == _ZSTD_MAGIC:
        reader = zstandard.ZstdDecompressor().stream_reader(stream, read_size=chunk_bytes, read_across_frames=True)
        return io.BufferedReader(_ZstdErrors(reader), chunk_bytes)
    return stream


def decompressed_lines(path: str, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """The lines of `path` (gzip, zstd or plain), decompressed `chunk_bytes` at a time: memory stays
    flat however large the file (Beam's own decompressing reader buffers ever more of a large one).
    A truncated or corrupt file raises ReadError where its good bytes end."""
    with open_raw(path) as raw:
        stream = decompressed(raw, chunk_bytes)
        yield from iter(stream.readline, b"")
        problem = stream_problem(stream)
        if problem is not None:
            raise problem


def stream_problem(stream: io.BufferedReader) -> ReadError | None:
    """After a stream from `decompressed` ends: why it ended early (truncated/corrupt), if it did."""
    return getattr(getattr(stream, "raw", None), "problem", None)


class _GzipMembers(io.RawIOBase):
    """Decompresses concatenated gzip members (WARC files hold one per record).

    Unlike `gzip.GzipFile`, every byte decompressed before a truncation or corruption is
    delivered; the stream then ends and `problem` says why, so readers keep the records before it.
    """

    def __init__(self, raw: BinaryIO, chunk_bytes: int):
        self._raw = raw
        self._chunk_bytes = chunk_bytes
        self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""            # compressed bytes not yet given to the decompressor
        self._member_started = False
        self._consumed = 0             # compressed bytes read so far, for error messages
        self.problem: ReadError | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self.problem is None:
            if self._decompressor.eof:
                self._pending = self._decompressor.unused_data + self._pending
                self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._member_started = False
            data = self._pending or self._read_raw()
            if not data:
                if self._member_started:
                    self.problem = ReadError(f"gzip stream truncated at compressed byte {self._consumed}")
                return 0
            self._member_started = True
            try:
                out = self._decompressor.decompress(data, len(buffer))
            except zlib.error as error:
                self.problem = ReadError(f"corrupt gzip data near compressed byte {self._consumed}: {error}")
                return 0
            # At a member's end the rest of the input is in unused_data; CPython may leave a copy of it
            # in unconsumed_tail too, which would be decompressed twice.
            self._pending = b"" if self._decompressor.eof else self._decompressor.unconsumed_tail
            if out:
                buffer[: len(out)] = out
                return len(out)
        return 0

    def _read_raw(self) -> bytes:
        data = self._raw.read(self._chunk_bytes)
        self._consumed += len(data)
        return data


class _ZstdErrors(io.RawIOBase):
    """A zstd stream reader whose errors surface as `ReadError`."""

    def __init__(self, reader):
        self._reader = reader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._reader.read(len(buffer))
        except zstandard.ZstdError as error:
            raise ReadError(f"corrupt zstd data: {error}") from None
        buffer[: len(data)] = data
        return len(data)
