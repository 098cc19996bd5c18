"""File output through Beam FileSystems (local disk, gs://, ...), always atomic.

Beam FileSystems is imported lazily-cheap (it does not start a pipeline), so Beam-free callers
should not use this module; it serves the pipeline and the tokenizer (never the model or the trainer).
"""
from __future__ import annotations

import contextlib
import gzip
import json
import os
import uuid
from typing import Any, BinaryIO, Iterator

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


def join(*parts: str) -> str:
    return FileSystems.join(*parts)


_TEMPORARY_NAME = ".{name}.tmp-{token}"


@contextlib.contextmanager
def atomic_create(path: str) -> Iterator[BinaryIO]:
    """A file to stream `path`'s bytes into, so that readers see either the whole file or none of it.

    The bytes go to a hidden temporary name beside the target, then one rename publishes them;
    a crash in between leaves only the temporary file, never a half-written `path`. The rename
    replaces an existing `path` in place (os.rename locally; copy-then-delete on object stores), so
    an older version stays readable until the new one takes its place. If the writer fails, the
    temporary file is deleted and `path` is left as it was.
    """
    directory, name = FileSystems.split(path)
    temporary = FileSystems.join(directory, _TEMPORARY_NAME.format(name=name, token=uuid.uuid4().hex))
    ensure_dir(directory)
    try:
        # UNCOMPRESSED: the bytes are stored as given, whatever the target's extension says
        with FileSystems.create(temporary, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            yield f
    except BaseException:
        with contextlib.suppress(Exception):  # best effort: the writer's own error is the one to report
            delete_if_exists([temporary])
        raise
    FileSystems.rename([temporary], [path])


def atomic_write(path: str, data: bytes) -> None:
    """Write `data` to `path` through `atomic_create`."""
    with atomic_create(path) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_gzip_create(path: str) -> Iterator[BinaryIO]:
    """`atomic_create` for a gzip file: what is written to the handle is compressed as it comes.

    The header has a zero timestamp and no file name, so equal input gives equal bytes however it
    was split into writes.
    """
    with atomic_create(path) as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        yield f


def jsonl_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


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


def delete_if_exists(paths: list[str]) -> None:
    """Delete each of `paths` that exists, in the order given."""
    for path in paths:
        if FileSystems.exists(path):
            FileSystems.delete([path])


# The JSONL shards of cleaned/ and rejected/: written by pipeline.stages.write, read by the tokenizer.
SHARD_GLOB = "part-*.jsonl.gz"


def shard_name(index: int) -> str:
    return f"part-{index:05d}.jsonl.gz"


# Written last into a finished output directory, as Hadoop and Beam jobs do; a reader that finds
# files but no marker knows the run that wrote them stopped before the end.
COMPLETE_MARKER = "_SUCCESS"


def mark_complete(directory: str) -> None:
    atomic_write(join(directory, COMPLETE_MARKER), b"")


def is_complete(directory: str) -> bool:
    return FileSystems.exists(join(directory, COMPLETE_MARKER))


def output_dir_problem(output: str, inputs: list[str]) -> str | None:
    """Why `output` cannot be the output directory of a run that reads `inputs`, or None."""
    if _is_existing_file(output):
        return f"--output {output} is a file, not a directory"
    clash = _overlapping_input(output, inputs)
    if clash:
        return f"--output {output} overlaps the input {clash}; write the output elsewhere"
    return None


def _is_existing_file(path: str) -> bool:
    if "://" in path:  # object stores have no directories: an object at the exact name is a file
        return FileSystems.exists(path.rstrip("/"))
    return os.path.exists(path) and not os.path.isdir(path)


def _overlapping_input(output: str, inputs: list[str]) -> str | None:
    """The first of `inputs` that is `output`, lies inside it or holds it, or None: a run must never
    write over what it reads. An @list file counts by its own path; a glob by its fixed directory,
    which holds `output` only when the glob reaches into subdirectories (`**`)."""
    out = _comparable(output)
    for spec in inputs:
        path = _comparable(spec[1:] if spec.startswith("@") else spec)
        holds_output = out.startswith(path.rstrip("/") + "/") and (not _is_glob(spec) or "**" in spec)
        if out == path or holds_output or path.startswith(out.rstrip("/") + "/"):
            return spec
    return None


def _is_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def _comparable(path: str) -> str:
    path = str(path)
    if _is_glob(path):
        head = path[:min(path.index(c) for c in "*?[" if c in path)]
        path = head[:head.rfind("/") + 1] or "."
    if "://" in path:
        return path.rstrip("/")
    return os.path.realpath(path)


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
