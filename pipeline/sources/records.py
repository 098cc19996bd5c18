"""Readers of record formats (JSONL/JSON, parquet, `datasets.save_to_disk`) and whole-file formats
(HTML, plain text). Each yields (KEPT, document) and (REJECTED, rejection) pairs.
"""
from __future__ import annotations

import json
from typing import Any, BinaryIO, Iterable, Iterator

from common.compressed import ReadError
from pipeline.config import ReadConfig
from pipeline.document import rejection
from pipeline.sources.charset import UndecodableError, charset_from_meta, decode_bytes
from pipeline.sources.formats import JSON_LEAD, is_url
from pipeline.stages.routing import KEPT, REJECTED
from pipeline.text.normalize import replace_surrogates

STAGE = "read"
_PARQUET_BATCH_ROWS = 1024


def record_document(record: Any, source: str, label: str, position: int | str,
                    config: ReadConfig) -> tuple[str, dict]:
    """A JSON-like record (dict) to a document; one without usable text becomes a rejection."""
    if not isinstance(record, dict):
        return REJECTED, rejection({"id": f"{label}:{position}", "source": source}, STAGE, "read_error",
                                   error=f"record is a {type(record).__name__}, not an object")
    doc = _provenance(record, source, label, position, config)
    text = record.get(config.text_field)
    if not isinstance(text, str):
        problem = "missing" if text is None else f"a {type(text).__name__}, not a string"
        return REJECTED, rejection(doc, STAGE, "read_error", error=f"field {config.text_field!r} is {problem}")
    return KEPT, {**doc, "text": replace_surrogates(text)}


def _provenance(record: dict, source: str, label: str, position: int | str, config: ReadConfig) -> dict:
    """A document's fields other than its text."""
    metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    own_id = record.get(config.id_field)
    return {
        "id": replace_surrogates(str(own_id)) if own_id not in (None, "") else f"{label}:{position}",
        "source": source,
        "url": _as_text(record.get("url") or metadata.get("warc_url") or metadata.get("url")),
        "date": _as_text(record.get("date") or record.get("created") or metadata.get("warc_date")),
    }


def _as_text(value: Any) -> str | None:
    """Parquet and `datasets` hold typed values (timestamps); documents hold JSON-safe strings."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return replace_surrogates(value)


def jsonl_documents(stream: BinaryIO, source: str, label: str, config: ReadConfig) -> Iterator[tuple[str, dict]]:
    """One document per JSON line. A line that is not a JSON object with a text field is one counted
    rejection, whatever it holds (an array, invalid JSON, nesting too deep to parse, more than
    `max_record_bytes`), and reading goes on."""
    for line_number, (line, size) in enumerate(_lines(stream, config.max_record_bytes, config.chunk_bytes)):
        if line is None:
            yield REJECTED, rejection({"id": f"{label}:{line_number}", "source": source}, STAGE, "record_too_large",
                                      error=f"line {line_number + 1} of {size} bytes exceeds max_record_bytes")
            continue
        if not line.strip():
            continue
        try:
            record = _parse_json(line, config)
        except ReadError as error:
            yield REJECTED, rejection({"id": f"{label}:{line_number}", "source": source}, STAGE, "read_error",
                                      error=f"line {line_number + 1}: {error}")
            continue
        yield record_document(record, source, label, line_number, config)


def json_documents(stream: BinaryIO, source: str, label: str, config: ReadConfig) -> Iterator[tuple[str, dict]]:
    """A `.json` file: one JSON array of records where it starts with "[", else JSON Lines, as many
    `.json` files are. Only the `.json` name allows a whole-file array: a `.jsonl` file, or one named
    neither, is always read line by line, so a first line that is an array costs that line only."""
    first = stream.peek(64).lstrip(JSON_LEAD)[:1]
    if first != b"[":
        yield from jsonl_documents(stream, source, label, config)
        return
    data = stream.read(config.max_record_bytes + 1)
    if len(data) > config.max_record_bytes:
        yield REJECTED, rejection({"id": f"{label}:0", "source": source}, STAGE, "record_too_large",
                                  error=f"JSON array file exceeds max_record_bytes ({config.max_record_bytes}); "
                                        "write it as JSON Lines")
        return
    records = _parse_json(data, config)
    for position, record in enumerate(records if isinstance(records, list) else [records]):
        yield record_document(record, source, label, position, config)


def _lines(stream: BinaryIO, limit: int, chunk_bytes: int) -> Iterator[tuple[bytes | None, int]]:
    """Each line of `stream` with its size in bytes. A line longer than `limit` comes as None: it is
    passed over in chunks, never held whole (a few KB of zstd can inflate to one line of gigabytes)."""
    while line := stream.readline(limit + 1):
        if len(line) <= limit or line.endswith(b"\n"):
            yield line, len(line)
            continue
        size = len(line)
        while (piece := stream.readline(chunk_bytes)) and not piece.endswith(b"\n"):
            size += len(piece)
        yield None, size + len(piece)


def _parse_json(data: bytes, config: ReadConfig) -> Any:
    """The JSON value in `data`; ReadError for bytes that are not one (Python's parser raises
    RecursionError on deep nesting and ValueError on integers of over 4300 digits)."""
    try:
        return json.loads(decode_bytes(data, max_replacement_ratio=config.max_replacement_ratio, detect=False))
    except (ValueError, RecursionError) as error:      # UndecodableError and JSONDecodeError included
        raise ReadError(f"invalid JSON: {error}") from None


def parquet_documents(stream: BinaryIO, source: str, label: str, config: ReadConfig) -> Iterator[tuple[str, dict]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged footer
        raise ReadError(f"not a readable parquet file: {error}") from None
    columns = _wanted_columns(parquet.schema_arrow.names, config)
    yield from _arrow_documents(parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=columns),
                                source, label, config)


def dataset_documents(path: str, source: str, label: str, config: ReadConfig) -> Iterator[tuple[str, dict]]:
    """A directory written by `datasets.save_to_disk` (a Dataset, or a DatasetDict read split by split)."""
    import datasets

    loaded = datasets.load_from_disk(path)
    splits = sorted(loaded.items()) if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    for split, dataset in splits:
        dataset = dataset.select_columns(_wanted_columns(dataset.column_names, config))
        prefix = f"{label}/{split}" if split else label
        batches = dataset.with_format("arrow").iter(batch_size=_PARQUET_BATCH_ROWS)
        yield from _arrow_documents(batches, source, prefix, config)


def _arrow_documents(batches: Iterable, source: str, label: str, config: ReadConfig) -> Iterator[tuple[str, dict]]:
    """Documents of Arrow record batches or tables. A text over `max_record_bytes` is counted as
    "record_too_large" without ever being copied into a Python string."""
    import pyarrow as pa
    import pyarrow.compute as pc

    position = 0
    for batch in batches:
        oversized = [False] * batch.num_rows
        index = batch.schema.get_field_index(config.text_field)
        column = batch.column(index) if index >= 0 else None
        if column is not None and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            too_large = pc.greater(pc.binary_length(column), config.max_record_bytes)
            oversized = too_large.fill_null(False).to_pylist()
            if any(oversized):
                batch = batch.set_column(index, config.text_field,
                                         pc.if_else(too_large, pa.scalar(None, column.type), column))
        for row, is_oversized in zip(batch.to_pylist(), oversized):
            if is_oversized:
                yield REJECTED, rejection(_provenance(row, source, label, position, config), STAGE, "record_too_large",
                                          error=f"field {config.text_field!r} exceeds max_record_bytes")
            else:
                yield record_document(row, source, label, position, config)
            position += 1


def _wanted_columns(available: list[str], config: ReadConfig) -> list[str]:
    """Only the columns a document uses are decoded (parquet files often carry heavy extras)."""
    wanted = (config.text_field, config.id_field, "url", "date", "created", "metadata")
    return [column for column in available if column in wanted]


def whole_file_document(stream: BinaryIO, source: str, label: str, config: ReadConfig, *,
                        field: str) -> Iterator[tuple[str, dict]]:
    """One document from a whole HTML (`field="html"`) or text (`field="text"`) file."""
    doc = {"id": f"{label}:0", "source": source, "url": source if is_url(source) else None}
    data = stream.read(config.max_record_bytes + 1)
    if len(data) > config.max_record_bytes:
        yield REJECTED, rejection(doc, STAGE, "record_too_large", error=f"file exceeds {config.max_record_bytes} bytes")
        return
    declared = (charset_from_meta(data),) if field == "html" else ()
    try:
        text = decode_bytes(data, declared, config.max_replacement_ratio, detect=True)
    except UndecodableError as error:
        yield REJECTED, rejection(doc, STAGE, "read_error", error=str(error))
        return
    yield KEPT, {**doc, field: text}

