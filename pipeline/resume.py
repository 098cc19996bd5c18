"""What decides whether a killed local run can pick up where it stopped (pure; no Beam).

A run keeps, per work unit, a journal of every record the unit's chain let go of (kept or rejected)
and, once the unit is read to its end, a marker with the number of records it read. A rerun with
the same plan fingerprint takes a unit as done when its marker and its journal agree; everything
else is read again. The Beam side (writing, checking and replaying journals) is
`pipeline.stages.journal`.
"""
from __future__ import annotations

import hashlib
import json
import re
import struct
from typing import Any, BinaryIO, Iterator

from pipeline.units import Unit

_UNSAFE_IN_NAMES = re.compile(r"[^A-Za-z0-9._-]+")
_NAME_CHARS = 48


def unit_key(unit: Unit) -> str:
    """A folder name for `unit`, the same on every run: the source's file name (for the eye), a digest
    of its whole path (two `part-0000.jsonl` in different folders stay apart) and the part."""
    name = _UNSAFE_IN_NAMES.sub("_", unit.source.rstrip("/").rsplit("/", 1)[-1])[:_NAME_CHARS] or "source"
    digest = hashlib.sha256(unit.source.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{name}-{digest}-{unit.part}of{unit.parts}"


def plan_fingerprint(config: dict[str, Any], inputs: list[tuple[str, int | None, float | None]],
                     versions: dict[str, str]) -> str:
    """A digest of what determines a run's output: the resolved configuration without the settings that
    only say how it executes, the inputs in order with their (size, modification time) where known,
    and the versions of the code and models. Journals are reused only under the same fingerprint."""
    described = json.dumps({"config": config, "inputs": inputs, "versions": versions},
                           sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(described.encode("utf-8", "surrogatepass")).hexdigest()


def unit_is_done(marked_records: int | None, journaled_records: int) -> bool:
    """Every record a unit reads ends kept or rejected, and is journaled either way: a unit is done
    when its reader marked it finished and its journal holds exactly that many records. A journal
    short of the mark (a run killed before its writes reached the disk) or past it means reading again."""
    return marked_records is not None and marked_records == journaled_records


_FRAME_LENGTH = struct.Struct(">Q")


def frame(payload: bytes) -> bytes:
    """`payload` as one journal entry: its length, then itself."""
    return _FRAME_LENGTH.pack(len(payload)) + payload


def frames(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(offset, payload) of the complete entries in `stream`, the offset being where the payload
    starts; an entry cut short (a write the kill interrupted) ends it, as nothing after it can
    have been written."""
    offset = 0
    while True:
        header = stream.read(_FRAME_LENGTH.size)
        if len(header) < _FRAME_LENGTH.size:
            return
        (length,) = _FRAME_LENGTH.unpack(header)
        payload = stream.read(length)
        if len(payload) < length:
            return
        offset += _FRAME_LENGTH.size
        yield offset, payload
        offset += length
