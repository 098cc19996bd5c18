"""`memfs://`: an in-memory Beam FileSystem that behaves like an object store (gs://, s3://).

Importing this module registers the scheme (Beam finds every FileSystem subclass by its `scheme()`).
Like an object store it has no directories: a path is a key, `mkdirs` does nothing, `exists` is
true only for objects, listing is by key prefix, an object appears when its writer is closed, and
`rename` is copy-then-delete. Every process has its own store, so a pipeline that uses it must run
its workers in this process (`--workers 1`).
"""
from __future__ import annotations

import io
import posixpath
import threading
import time

from apache_beam.io.filesystem import BeamIOError, CompressedFile, CompressionTypes, FileMetadata, FileSystem

SCHEME = "memfs"
_objects: dict[str, tuple[bytes, float]] = {}   # path -> (content, time written)
_lock = threading.Lock()


def clear() -> None:
    with _lock:
        _objects.clear()


def put(path: str, content: bytes) -> None:
    with _lock:
        _objects[path] = (content, time.time())


def get(path: str) -> bytes:
    with _lock:
        return _objects[path][0]


def paths(prefix: str = f"{SCHEME}://") -> list[str]:
    with _lock:
        return sorted(p for p in _objects if p.startswith(prefix))


class _ObjectReader(io.BytesIO):
    mode = "rb"  # Beam's CompressedFile asks the file it wraps


class _ObjectWriter(io.BytesIO):
    """Buffers what is written; the object is stored, whole, when the writer is closed."""
    mode = "wb"

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def close(self) -> None:
        if not self.closed:
            put(self._path, self.getvalue())
        super().close()


class MemoryFileSystem(FileSystem):

    @classmethod
    def scheme(cls) -> str:
        return SCHEME

    def join(self, basepath: str, *paths: str) -> str:
        return posixpath.join(basepath, *paths)

    def split(self, path: str) -> tuple[str, str]:
        if not path.startswith(f"{SCHEME}://"):
            raise ValueError(f"{path} is not a {SCHEME}:// path")
        head, tail = posixpath.split(path[len(SCHEME) + 3:].rstrip("/"))
        return f"{SCHEME}://{head}", tail

    def mkdirs(self, path: str) -> None:
        pass  # keys need no folders

    def has_dirs(self) -> bool:
        return False

    def _list(self, dir_or_prefix: str):
        with _lock:
            listed = [(path, len(content), written) for path, (content, written) in _objects.items()
                      if path.startswith(dir_or_prefix)]
        for path, size, written in sorted(listed):
            yield FileMetadata(path, size, written)

    def create(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        return self._compressed(_ObjectWriter(path), path, compression_type)

    def open(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        try:
            raw = _ObjectReader(get(path))
        except KeyError:
            raise FileNotFoundError(f"{path}: no such object") from None
        return self._compressed(raw, path, compression_type)

    @staticmethod
    def _compressed(raw, path, compression_type):
        compression_type = FileSystem._get_compression_type(path, compression_type)
        if compression_type == CompressionTypes.UNCOMPRESSED:
            return raw
        return CompressedFile(raw, compression_type=compression_type)

    def copy(self, source_file_names, destination_file_names):
        self._transfer(source_file_names, destination_file_names, keep_source=True)

    def rename(self, source_file_names, destination_file_names):
        self._transfer(source_file_names, destination_file_names, keep_source=False)

    @staticmethod
    def _transfer(sources, destinations, keep_source: bool):
        failed = {}
        with _lock:
            for source, destination in zip(sources, destinations):
                if source not in _objects:
                    failed[(source, destination)] = FileNotFoundError(f"{source}: no such object")
                    continue
                _objects[destination] = (_objects[source][0], time.time())
                if not keep_source:
                    del _objects[source]
        if failed:
            raise BeamIOError("copy or rename failed", failed)

    def exists(self, path: str) -> bool:
        with _lock:
            return path in _objects

    def size(self, path: str) -> int:
        return self.metadata(path).size_in_bytes

    def last_updated(self, path: str) -> float:
        return self.metadata(path).last_updated_in_seconds

    def checksum(self, path: str) -> str:
        return str(self.size(path))

    def metadata(self, path: str) -> FileMetadata:
        with _lock:
            if path not in _objects:
                raise BeamIOError("metadata failed", {path: FileNotFoundError(path)})
            content, written = _objects[path]
        return FileMetadata(path, len(content), written)

    def delete(self, paths):
        """Delete objects; a path ending in "/" deletes every object under it, as object stores do."""
        failed = {}
        with _lock:
            for path in paths:
                if path.endswith("/"):
                    for key in [key for key in _objects if key.startswith(path)]:
                        del _objects[key]
                elif path in _objects:
                    del _objects[path]
                else:
                    failed[path] = FileNotFoundError(f"{path}: no such object")
        if failed:
            raise BeamIOError("delete failed", failed)
