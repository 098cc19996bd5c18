"""common.cli: the exit plumbing every entry point (`python -m pipeline|tokenizer|train`) shares."""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_a_writer_whose_reader_leaves_early_ends_quietly_with_status_0():
    # A megabyte to stdout through a real pipe that `head` closes after 10 bytes.
    writer = "import sys; from common.cli import exit_status; sys.exit(exit_status(lambda: print('x' * 2**20) or 0))"
    command = f"set -o pipefail; '{sys.executable}' -c \"{writer}\" | head -c 10"
    result = subprocess.run(["bash", "-c", command], capture_output=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (result.returncode, result.stdout, result.stderr) == (0, b"x" * 10, b"")


def test_a_mistyped_train_sub_command_is_named_not_parsed_as_training(capsys):
    from train.__main__ import main as train_main

    assert train_main(["sampel", "--checkpoint", "run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown sub-command 'sampel'" in err and "did you mean 'sample'" in err


def test_clean_help_states_the_language_default(capsys):
    from pipeline.__main__ import main as pipeline_main

    with pytest.raises(SystemExit):
        pipeline_main(["clean", "--help"])
    assert "(default: en" in " ".join(capsys.readouterr().out.split())


# Every command: (entry point, sub-command words). Their parsers are built only when the command is chosen.
COMMANDS = [("pipeline", [c]) for c in ("clean", "tokenize", "verify", "inspect", "train-quality", "report")] + \
           [("tokenizer", [c]) for c in ("train", "export-hf")] + [("train", [])] + \
           [("train", [c]) for c in ("sample", "export", "eval", "finetune-cls", "classify", "finetune-sft", "import-hf")]


def entry_point(package: str):
    from importlib import import_module

    return import_module(f"{package}.__main__").main


def exit_code(main, argv) -> int:
    """What the process would exit with: main's return value, or the status argparse exits with."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("package, words", COMMANDS, ids=lambda x: " ".join(x) if isinstance(x, list) else x)
def test_every_option_has_help_and_shows_its_default(package, words, monkeypatch, capsys):
    from common.cli import HelpFormatter, OneLineParser

    shown = []
    format_help = OneLineParser.format_help
    monkeypatch.setattr(OneLineParser, "format_help", lambda parser: shown.append(parser) or format_help(parser))
    assert exit_code(entry_point(package), [*words, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    parser = shown[-1]
    assert parser.formatter_class is HelpFormatter
    for action in parser._actions:
        assert action.help, f"{action.option_strings or action.dest} has no help text"
        unset = action.default is None or action.default is False or action.default == []
        if not unset and action.default is not argparse.SUPPRESS:
            stated = " ".join(action.help.split())
            assert f"(default: {action.default})" in text or ("default" in stated and stated in text), action.dest
        for option in action.option_strings:
            assert "_" not in option  # hyphens only; the underscore spelling is accepted, not listed


BAD_ARGUMENTS = {
    "pipeline clean": ["--input", "x", "--output", "y", "--num-shards", "many"],
    "pipeline tokenize": ["--input", ".", "--tokenizer", ".", "--output", "y", "--val-fraction", "half"],
    "pipeline verify": [],
    "pipeline inspect": ["."],
    "pipeline train-quality": ["--positive", ".", "--negative", ".", "--output", "m.bin", "--epochs", "0"],
    "pipeline report": [".", "--colour"],
    "tokenizer train": ["--input", ".", "--output", "t", "--vocab-size", "many"],
    "tokenizer export-hf": [],
    "train": ["--data", ".", "--out", "r", "--lr"],
    "train sample": ["--checkpoint", ".", "--top_k", "0"],
    "train export": ["--checkpoint", "."],
    "train eval": ["--checkpoint", ".", "--data", ".", "--device", "tpu"],
    "train finetune-cls": ["--checkpoint", ".", "--data", "."],
    "train classify": ["--checkpoint", ".", "--text", "a", "--input", "."],
    "train finetune-sft": ["--checkpoint", "."],
    "train import-hf": ["."],
}


@pytest.mark.parametrize("package, words", COMMANDS, ids=lambda x: " ".join(x) if isinstance(x, list) else x)
def test_a_bad_argument_is_one_line_naming_the_command_and_exit_2(package, words, capsys):
    name = " ".join([package, *words])
    assert exit_code(entry_point(package), [*words, *BAD_ARGUMENTS[name]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{name}: error: "), err


MISSING_INPUTS = {
    "pipeline clean": ["--input", "{missing}", "--output", "{tmp}/out"],
    "pipeline tokenize": ["--input", "{missing}", "--tokenizer", ".", "--output", "{tmp}/out"],
    "pipeline verify": ["{missing}"],
    "pipeline inspect": ["{missing}", "--doc", "0"],
    "pipeline train-quality": ["--positive", ".", "--negative", "{missing}", "--output", "{tmp}/m.bin"],
    "pipeline report": ["{missing}"],
    "tokenizer train": ["--input", "{missing}", "--output", "{tmp}/tok", "--vocab-size", "1000"],
    "tokenizer export-hf": ["{missing}"],
    "train": ["--data", "{missing}", "--out", "{tmp}/run"],
    "train sample": ["--checkpoint", "{missing}"],
    "train export": ["--checkpoint", "{missing}", "--output", "{tmp}/hf"],
    "train eval": ["--checkpoint", ".", "--data", "{missing}"],
    "train finetune-cls": ["--checkpoint", ".", "--data", "{missing}", "--out", "{tmp}/run"],
    "train classify": ["--checkpoint", ".", "--input", "{missing}"],
    "train finetune-sft": ["--checkpoint", "{missing}", "--data", ".", "--out", "{tmp}/run"],
    "train import-hf": ["{missing}", "--out", "{tmp}/run"],
}


@pytest.mark.parametrize("package, words", COMMANDS, ids=lambda x: " ".join(x) if isinstance(x, list) else x)
def test_a_missing_input_is_a_usage_error_naming_it(package, words, tmp_path, capsys):
    name = " ".join([package, *words])
    missing = tmp_path / "no-such-input"
    argv = [a.format(missing=missing, tmp=tmp_path) for a in MISSING_INPUTS[name]]
    assert exit_code(entry_point(package), [*words, *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{name}: error: ") and str(missing) in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()


def test_a_missing_run_is_named_as_such(tmp_path, capsys):
    assert exit_code(entry_point("train"), ["sample", "--checkpoint", tmp_path / "run"]) == 2
    assert f"no run at {tmp_path / 'run'}" in capsys.readouterr().err


def test_the_underscore_spelling_of_an_option_is_the_hyphenated_option(capsys):
    from common.cli import OneLineParser

    parser = OneLineParser(prog="python -m demo")
    parser.add_argument("--max-new-tokens", type=int, default=5, help="tokens")
    assert parser.parse_args(["--max_new_tokens", "7"]).max_new_tokens == 7
    assert parser.parse_args(["--max_new_tokens=8"]).max_new_tokens == 8
    _, unknown = parser.parse_known_args(["--max_steps", "9"])  # not an option here: left for the caller
    assert unknown == ["--max_steps", "9"]
    assert "--max_new_tokens" not in parser.format_help() and "(default: 5)" in parser.format_help()
