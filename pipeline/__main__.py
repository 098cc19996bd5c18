"""`python -m pipeline {clean,tokenize,verify,inspect,train-quality,report}`."""
from __future__ import annotations

import importlib
import sys

from common.cli import OneLineParser, exit_status, hide_benign_beam_warnings

hide_benign_beam_warnings()  # the commands below import Beam

COMMANDS = {
    "clean": ("pipeline.commands.clean", "clean raw web data into cleaned/ documents"),
    "tokenize": ("pipeline.commands.tokenize", "encode cleaned documents into token shards"),
    "verify": ("pipeline.commands.verify", "check every shard, index and checksum"),
    "inspect": ("pipeline.commands.inspect", "print a document or token range of the shards"),
    "train-quality": ("pipeline.commands.train_quality", "train a fastText quality classifier"),
    "report": ("pipeline.commands.report", "rebuild a clean run's report.html, or compare two runs"),
}
# Commands that run a Beam pipeline accept Beam's own options besides theirs.
BEAM_COMMANDS = {"clean", "tokenize"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = OneLineParser(prog="python -m pipeline", description="Corpus cleaning and tokenization pipeline.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                       help="what to do; `python -m pipeline COMMAND --help` tells more")
    # Only the chosen command's module is imported: importing Beam alone takes seconds, and verify
    # and inspect never need it.
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            command = importlib.import_module(module_name)
            command.add_arguments(sub)
    if chosen in BEAM_COMMANDS:
        args, beam_args = parser.parse_known_args(argv)
        return command.run(args, beam_args)
    args = parser.parse_args(argv)
    return command.run(args)


if __name__ == "__main__":
    sys.exit(exit_status(main))
