"""Loading fastText models from any Beam filesystem, and the one-line text form fastText reads.

Shared by language identification (`pipeline.text.lang`) and the quality classifier
(`pipeline.text.quality_model`).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import fasttext

from pipeline.config_io import ConfigError


class ModelLoadError(ConfigError):
    """A fastText model file is missing or unreadable; the message is one line."""


def fasttext_line(text: str) -> str:
    """`text` as one line: fastText treats a newline as the end of its input, so the whole
    document is scored only when its line breaks become spaces."""
    return " ".join(text.split())


def _is_local(path: str) -> bool:
    return "://" not in path


def load_fasttext_model(path: str):
    """Load a fastText model from a local path or any Beam FileSystems URL (gs://, ...).

    fastText's C++ loader reads only local files, so a remote model is copied to a temporary
    file first.
    """
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
