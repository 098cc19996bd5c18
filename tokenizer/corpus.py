"""Reading cleaned/ (the output of `pipeline clean`) through Beam FileSystems, one document at a time."""
from __future__ import annotations

import fnmatch
import json
from typing import Iterator

from apache_beam.io.filesystems import FileSystems

from common.cli import first_line
from common.compressed import ReadError, decompressed_lines
from common.fileio import COMPLETE_MARKER, SHARD_GLOB, is_complete, join



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
    files = sorted(m.path for m in found)
    check_complete(files)
    return files


def check_complete(files: list[str]) -> None:
    """Refuse files of a `pipeline clean` output whose run did not finish (its cleaned/ has no marker)."""
    for directory in sorted({FileSystems.split(path)[0] for path in files}):
        if not is_complete(directory):
            raise InputError(f"{directory} is an incomplete `pipeline clean` output (no {COMPLETE_MARKER}: the run "
                             f"that wrote it did not finish); run clean again")


def is_cleaned_part(path: str) -> bool:
    """Whether `path` names a part file in a cleaned/ directory written by `pipeline clean`."""
    directory, name = FileSystems.split(path)
    return fnmatch.fnmatch(name, SHARD_GLOB) and FileSystems.split(directory.rstrip("/"))[1] == "cleaned"


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
    """Stream the documents of one (optionally gzip- or zstd-compressed) JSON-lines file, holding one
    chunk of it at a time however large the shard."""
    try:
        for line_number, line in enumerate(decompressed_lines(path), start=1):
            if line.strip():
                yield parse_document(line, f"{path}:{line_number}")
    except (OSError, ReadError) as e:  # a missing file; a truncated or corrupt compressed one
        raise InputError(f"{path}: cannot read ({first_line(e)})") from None
