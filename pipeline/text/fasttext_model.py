"""Loading fastText models from any Beam filesystem, and the one-line text form fastText reads.

Shared by language identification (`pipeline.text.lang`) and the quality classifier
(`pipeline.text.quality_model`).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import fasttext

from common.config_io import ConfigError


class ModelLoadError(ConfigError):
    """A fastText model file is missing or unreadable; the message is one line."""


def fasttext_line(text: str) -> str:
    """`text` as one line: fastText treats a newline as the end of its input, so the whole
    document is scored only when its line breaks become spaces."""
    return " ".join(text.split())


def _is_local(path: str) -> bool:
    return "://" not in path


# Models loaded in this process, by (path, and for local files their size and mtime). Beam runs
# many DoFn instances per process (one per worker thread); they share one model each, as
# fastText's predict keeps no state between calls.
_LOADED: dict[tuple, object] = {}
_LOADING = threading.Lock()


def load_fasttext_model(path: str):
    """The fastText model at a local path or any Beam FileSystems URL (gs://, ...), loaded once
    per process (a changed local file is loaded again) and shared by all threads.

    fastText's C++ loader reads only local files, so a remote model is copied to a temporary
    file first.
    """
    key = (path, *_local_version(path)) if _is_local(path) else (path,)
    with _LOADING:
        if key not in _LOADED:
            _LOADED[key] = _load(path)
        return _LOADED[key]


def _local_version(path: str) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)               # _load reports the missing file and caches nothing
    return (stat.st_size, stat.st_mtime_ns)


def _load(path: str):
    if _is_local(path):
        if not Path(path).is_file():
            raise ModelLoadError(f"fastText model not found: {path}")
        return _load_local(path)
    from apache_beam.io.filesystems import FileSystems

    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "model.bin")
        try:
            with FileSystems.open(path) as src, open(local, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except Exception as error:
            raise ModelLoadError(f"cannot read fastText model {path}: {error}") from None
        return _load_local(local, shown_as=path)


def _load_local(path: str, shown_as: str | None = None):
    try:
        return fasttext.load_model(path)
    except (ValueError, MemoryError) as error:
        raise ModelLoadError(f"not a fastText model: {shown_as or path} ({error})") from None
