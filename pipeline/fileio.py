"""File output through Beam FileSystems (local disk, gs://, ...), always atomic.

Beam FileSystems is imported lazily-cheap (it does not start a pipeline), so Beam-free callers
should not use this module; it serves the pipeline commands and stages.
"""
from __future__ import annotations

import gzip
import io
import json
import uuid
from typing import Any, Iterable

from apache_beam.io.filesystems import FileSystems


def join(*parts: str) -> str:
    return FileSystems.join(*parts)


_TEMPORARY_NAME = ".{name}.tmp-{token}"


def atomic_write(path: str, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the whole file or none of it.

    The bytes go to a hidden temporary name beside the target, then one rename publishes them;
    a crash in between leaves only the temporary file, never a half-written `path`.
    """
    directory, name = FileSystems.split(path)
    temporary = FileSystems.join(directory, _TEMPORARY_NAME.format(name=name, token=uuid.uuid4().hex))
    ensure_dir(directory)
    with FileSystems.create(temporary) as f:
        f.write(data)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([temporary], [path])


def gzip_bytes(data: bytes) -> bytes:
    """Gzip with a zero timestamp and no file name, so equal input gives equal bytes."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as f:
        f.write(data)
    return buffer.getvalue()


def jsonl_bytes(records: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records).encode("utf-8")


def ensure_dir(path: str) -> None:
    """Create `path` if missing; parallel workers may race to create it, which is fine."""
    if FileSystems.exists(path):
        return
    try:
        FileSystems.mkdirs(path)
    except OSError:
        if not FileSystems.exists(path):
            raise


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type="uncompressed") as f:
        return f.read()


def remove_temporary_files(directories: list[str]) -> None:
    """Delete what `atomic_write` left in `directories` when a run died between write and rename.

    Best effort: it runs after the real outcome of a command is known and must not mask it.
    """
    try:
        patterns = [join(d, _TEMPORARY_NAME.format(name="*", token="*")) for d in directories]
        leftovers = [m.path for r in FileSystems.match(patterns) for m in r.metadata_list]
        if leftovers:
            FileSystems.delete(leftovers)
    except Exception:  # cleanup is best effort: the real error, if any, is already reported
        pass


def delete_unlisted(patterns: list[str], keep_names: set[str]) -> None:
    """Delete the files matching `patterns` whose base name is not in `keep_names`: the outputs an
    earlier run left that this run did not write again."""
    stale = [m.path for r in FileSystems.match(patterns) for m in r.metadata_list
             if FileSystems.split(m.path)[1] not in keep_names]
    if stale:
        FileSystems.delete(stale)
