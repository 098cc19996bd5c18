"""Command-line plumbing shared by `python -m pipeline`, `python -m tokenizer` and `python -m train`.

Beam-free. Errors a user can cause end as one line on stderr and a non-zero exit: 2 for bad
arguments (as argparse does), 1 for everything that went wrong while working.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

USAGE_ERROR = 2
RUN_ERROR = 1


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (`prog: error: ...`) and exit 2."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def first_line(error: BaseException | str) -> str:
    """The first line of an error's message (for one-line reports), or its type when it has none."""
    text = str(error).strip()
    if text:
        return text.splitlines()[0].strip()
    return type(error).__name__ if isinstance(error, BaseException) else "unknown error"


def fail(prog: str, message: str, code: int = RUN_ERROR) -> int:
    """Print a one-line error for `prog` and return the exit code to use."""
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()] or ["unknown error"]
    # Errors re-raised by Beam workers carry the remote traceback; its last line names the error.
    summary = lines[-1] if lines[0].startswith("Traceback") or lines[0].endswith("Traceback (most recent call last):") else lines[0]
    print(f"{prog}: error: {summary}", file=sys.stderr)
    return code


def exit_status(main: Callable[[], int]) -> int:
    """Run an entry point's `main` and return its exit status, ending quietly with 0 when the reader
    of stdout goes away (`python -m pipeline inspect ... | head -c 300`).

    0 rather than the shell's 141 for SIGPIPE: under `set -o pipefail` the writer's status decides
    the pipeline's, and a reader that stops early on purpose is not a failure of the writer.
    """
    try:
        status = main()
        sys.stdout.flush()  # a broken pipe found only by the flush at exit would escape this guard
        return status
    except BrokenPipeError:
        # Python flushes stdout again at exit; pointing it at devnull keeps that flush from failing too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def parse_key_values(pairs: list[str], prog: str) -> dict[str, str]:
    """Parse `key=value` strings (from `--set`) into a dict; a malformed one is a usage error."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(fail(prog, f"--set expects key=value, got {pair!r}", USAGE_ERROR))
        overrides[key.strip()] = value.strip()
    return overrides
