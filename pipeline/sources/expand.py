"""`expand_sources`: the `--input` specs resolved, at pipeline-construction time, into single sources.

A spec is a file, a directory (read recursively), a glob, a path of any Beam FileSystems scheme,
an http(s) URL, or `@list` (a file, local or remote, naming one spec a line; blank lines and lines
starting with # are ignored). URLs are not touched here: they are fetched, with retries, by the
worker that reads them. Every spec must match something, or `SourceError` says which did not.

Local folders are walked following symlinked folders (datasets are often linked into place); a
folder reached twice, as through a link back up the tree, is walked once. Entries that are not
regular files (FIFOs, sockets, devices, broken links) would block or fail the read: inside a folder
or glob they are skipped with a warning that counts them, and one given directly is an error. An
@list that includes itself, directly or through other lists, is an error naming the chain.
"""
from __future__ import annotations

import logging
import os
import posixpath
import stat
import tempfile

from apache_beam.io.filesystems import FileSystems

from common.cli import first_line
from common.compressed import decompressed, open_raw
from pipeline.config import ReadConfig
from pipeline.sources.download import DownloadError, download
from pipeline.sources.formats import DATASET_MARKERS, format_from_name, is_dataset_dir, is_url

_GLOB_CHARS = "*?["
_log = logging.getLogger(__name__)


class SourceError(ValueError):
    """An input spec the user gave resolves to nothing; the message is one line."""


def expand_sources(specs: list[str], config: ReadConfig, list_remote: bool = True) -> list[str]:
    """Sorted, de-duplicated sources, each one file, URL or `datasets` directory. With `list_remote`
    False, remote specs (other schemes, @lists of them), also those named in local @lists, are
    returned as given, untouched: what a dry run, which works offline, does."""
    sources: set[str] = set()
    for spec in specs:
        sources.update(_expand(spec.strip(), config, (), list_remote))
    return sorted(sources)


def _expand(spec: str, config: ReadConfig, lists: tuple[str, ...], list_remote: bool) -> list[str]:
    """`lists`: the @list specs being expanded around this one, outermost first."""
    if not spec:
        raise SourceError("empty input source")
    if is_url(spec) or not (list_remote or _is_local(spec.removeprefix("@"))):
        return [spec]
    if spec.startswith("@"):
        if _list_identity(spec) in map(_list_identity, lists):
            raise SourceError(f"list file {spec[1:]} includes itself: {' -> '.join((*lists, spec))}")
        return [source for entry in _list_entries(spec[1:], config)
                for source in _expand(entry, config, (*lists, spec), list_remote)]
    if any(char in spec for char in _GLOB_CHARS):
        found = _readable(_match(spec))
        if not found:
            raise SourceError(f"no readable files match {spec}")
        return found
    if _is_dataset_dir(spec):
        return [spec]
    inside = _local_tree(spec) if _is_local(spec) and os.path.isdir(spec) else _match(spec.rstrip("/") + "/**")
    if inside:
        found = _readable(inside)
        if not found:
            raise SourceError(f"directory {spec} holds no file of a known format")
        return found
    if _is_local(spec) and os.path.lexists(spec) and not os.path.isfile(spec):
        raise SourceError(f"{spec} is not a regular file ({_file_kind(spec)}); reading it would block or fail")
    if _match(spec):
        return [spec]
    raise SourceError(f"input not found: {spec}")


def _list_identity(list_spec: str) -> str:
    path = list_spec[1:]
    return os.path.realpath(path) if _is_local(path) else path


def _is_local(path: str) -> bool:
    return "://" not in path


def _local_tree(folder: str) -> list[str]:
    """Every entry under a local folder that is not a folder, following symlinked folders, each
    real folder once (Beam's listing does not follow links)."""
    entries, walked = [], set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in walked:
            dirnames.clear()
            continue
        walked.add(real)
        dirnames.sort()
        entries.extend(os.path.join(dirpath, name) for name in filenames)
    return entries


def _file_kind(path: str) -> str:
    if not os.path.exists(path):
        return "a broken link"
    mode = os.stat(path).st_mode
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def _match(pattern: str) -> list[str]:
    try:
        return [metadata.path for metadata in FileSystems.match([pattern])[0].metadata_list]
    except Exception as error:  # Beam raises BeamIOError, or ValueError for an unknown scheme
        raise SourceError(f"cannot list {pattern}: {first_line(error)}") from None


def _is_dataset_dir(path: str) -> bool:
    try:
        return is_dataset_dir(path)
    except ValueError as error:  # unknown scheme
        raise SourceError(f"cannot open {path}: {first_line(error)}") from None


def _readable(paths: list[str]) -> list[str]:
    """The files of a listing that are sources: `datasets` directories collapse to one source each,
    files of unknown formats (READMEs, licenses, .DS_Store) are left out, with a warning."""
    dataset_dirs = sorted({posixpath.dirname(path) for path in paths if posixpath.basename(path) in DATASET_MARKERS})
    # A DatasetDict's split folders hold their own state.json; the top folder stands for them all.
    dataset_dirs = [d for d in dataset_dirs if not any(d.startswith(top + "/") for top in dataset_dirs)]
    sources, skipped, irregular = list(dataset_dirs), [], []
    for path in paths:
        if any(path.startswith(top + "/") for top in dataset_dirs):
            continue
        if _is_local(path) and not os.path.isfile(path):
            irregular.append(f"{path} ({_file_kind(path)})")
        else:
            (sources if format_from_name(path) else skipped).append(path)
    if skipped:
        _log.warning("skipping %d file(s) of unknown format, e.g. %s", len(skipped), ", ".join(sorted(skipped)[:3]))
    if irregular:
        _log.warning("skipping %d entries that are not regular files, e.g. %s", len(irregular),
                     ", ".join(sorted(irregular)[:3]))
    return sources


def _list_entries(list_path: str, config: ReadConfig) -> list[str]:
    """The entries of an @list file (gzip/zstd allowed, as Common Crawl's warc.paths.gz is)."""
    folder = posixpath.dirname(list_path)
    try:
        if is_url(list_path):
            with tempfile.TemporaryFile() as body:
                download(list_path, body, config)
                body.seek(0)
                lines = decompressed(body, config.chunk_bytes).read().decode("utf-8").splitlines()
        else:
            with open_raw(list_path) as raw:
                lines = decompressed(raw, config.chunk_bytes).read().decode("utf-8").splitlines()
    except (DownloadError, OSError, UnicodeDecodeError, ValueError) as error:
        raise SourceError(f"cannot read list file {list_path}: {first_line(error)}") from None
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        raise SourceError(f"list file {list_path} names no sources")
    return [_resolve(entry, folder, config.base_url) for entry in entries]


def _resolve(entry: str, list_folder: str, base_url: str) -> str:
    if entry.startswith("@"):  # a nested list, placed like any other entry
        return "@" + _resolve(entry[1:], list_folder, base_url)
    if is_url(entry) or "://" in entry or entry.startswith("/"):
        return entry
    if base_url:
        return base_url.rstrip("/") + "/" + entry.lstrip("/")
    return posixpath.join(list_folder, entry) if list_folder else entry
