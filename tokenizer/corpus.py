"""Reading cleaned/ (the output of `pipeline clean`) through Beam FileSystems, one document at a time."""
from __future__ import annotations

import json
from typing import Iterator

from apache_beam.io.filesystems import FileSystems

from pipeline.cli import first_line
from pipeline.fileio import join
from pipeline.stages.write import SHARD_GLOB



class InputError(ValueError):
    """A path the user gave cannot be used; the message is one line."""


def cleaned_pattern(input_path: str) -> str:
    """The glob of a cleaned/ directory's files; a path that already is a glob is kept as it is."""
    input_path = str(input_path)
    return input_path if any(c in input_path for c in "*?[") else join(input_path, SHARD_GLOB)


def cleaned_files(input_path: str) -> list[str]:
    """The files of a cleaned/ directory (or of a glob), sorted; an error if there are none."""
    pattern = cleaned_pattern(input_path)
    try:
        found = FileSystems.match([pattern])[0].metadata_list
    except Exception as e:  # a missing local directory or an unreachable bucket
        raise InputError(f"cannot list {pattern}: {first_line(e)}") from None
    if not found:
        raise InputError(f"no input files match {pattern}")
    return sorted(m.path for m in found)


def parse_document(line: bytes | str, where: str) -> dict:
    """One JSON line of cleaned/ as a document with an `id` and a string `text`."""
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON ({e.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("text"), str) or "id" not in doc:
        raise InputError(f"{where}: a cleaned document needs an `id` and a string `text`")
    return doc


def iter_documents(path: str) -> Iterator[dict]:
    """Stream the documents of one (optionally compressed) JSON-lines file."""
    try:
        with FileSystems.open(path) as f:
            for line_number, line in enumerate(iter(f.readline, b""), start=1):
                if line.strip():
                    yield parse_document(line, f"{path}:{line_number}")
    except (OSError, EOFError) as e:  # gzip raises these for a truncated or corrupt file
        raise InputError(f"{path}: cannot read ({first_line(e)})") from None
