"""Command-line plumbing shared by `python -m pipeline`, `python -m tokenizer` and `python -m train`.

Beam-free. Errors a user can cause end as one line on stderr and a non-zero exit: 2 for bad
arguments (as argparse does), 1 for everything that went wrong while working.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from typing import Callable

USAGE_ERROR = 2
RUN_ERROR = 1


def command_name(prog: str) -> str:
    """The name errors are prefixed with: `python -m pipeline clean` -> `pipeline clean`."""
    return prog.removeprefix("python -m ")


class HelpFormatter(argparse.HelpFormatter):
    """Help that states each option's default (unless its text already speaks of one) and keeps the line
    breaks written into descriptions and epilogs, so that lists of keys stay lists."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == []  # not 0, which == False
        if unset or action.default is argparse.SUPPRESS or "default" in text.lower():
            return text
        return f"{text} (default: %(default)s)"

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)
                         for line in text.splitlines())


class OneLineParser(argparse.ArgumentParser):
    """The parser of every command: errors are one line (`<command>: error: ...`) and exit 2, help shows
    defaults, and an option spelled with underscores (`--max_new_tokens`, as train's config keys are)
    is read as its hyphenated name, without listing the second spelling in the help."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(USAGE_ERROR, f"{command_name(self.prog)}: error: {message} (see --help)\n")

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:  # named by the sub-command they were given to, not by the entry point
            self._chosen_command(namespace).error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace

    def _chosen_command(self, namespace: argparse.Namespace) -> argparse.ArgumentParser:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(namespace, action.dest, None))
                if isinstance(chosen, OneLineParser):
                    return chosen._chosen_command(namespace)
        return self

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else args
        return super().parse_known_args([self._hyphenated(arg) for arg in args], namespace)

    def _hyphenated(self, arg: str) -> str:
        name, eq, value = arg.partition("=")
        if name.startswith("--") and "_" in name:
            spelled = "--" + name[2:].replace("_", "-")
            if spelled in self._option_string_actions:
                return spelled + eq + value
        return arg


def existing_path(text: str) -> str:
    """argparse type of an input: a local path must exist (else a usage error naming it); remote paths
    and glob patterns pass as given and are checked when read."""
    if "://" in text or any(char in text for char in "*?[") or os.path.exists(text):
        return text
    raise argparse.ArgumentTypeError(f"{text}: no such file or directory")


def first_line(error: BaseException | str) -> str:
    """The first line of an error's message (for one-line reports), or its type when it has none."""
    text = str(error).strip()
    if text:
        return text.splitlines()[0].strip()
    return type(error).__name__ if isinstance(error, BaseException) else "unknown error"


def fail(prog: str, message: str, code: int = RUN_ERROR) -> int:
    """Print a one-line error for the command `prog` and return the exit code to use."""
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()] or ["unknown error"]
    # Errors re-raised by Beam workers carry the remote traceback; its last line names the error.
    summary = lines[-1] if lines[0].startswith("Traceback") or lines[0].endswith("Traceback (most recent call last):") else lines[0]
    print(f"{command_name(prog)}: error: {summary}", file=sys.stderr)
    return code


class _DropBenignBeamImportWarning(logging.Filter):
    # Beam logs "apitools not found ..." on the root logger whenever its GCP extra is absent, which
    # is the normal local set-up; it would otherwise precede every one-line error our commands print.
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("apitools not found")


def hide_benign_beam_warnings() -> None:
    """Called by each command's `__main__` module as it starts, before anything there imports Beam (never
    by a package's `__init__`, so importing a package changes no logging): keeps Beam's import-time noise
    off the stderr that our one-line errors go to."""
    root = logging.getLogger()
    if not any(isinstance(existing, _DropBenignBeamImportWarning) for existing in root.filters):
        root.addFilter(_DropBenignBeamImportWarning())


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
