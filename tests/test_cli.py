"""pipeline.cli: the exit plumbing every entry point (`python -m pipeline|tokenizer|train`) shares."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_a_writer_whose_reader_leaves_early_ends_quietly_with_status_0():
    # A megabyte to stdout through a real pipe that `head` closes after 10 bytes.
    writer = "import sys; from pipeline.cli import exit_status; sys.exit(exit_status(lambda: print('x' * 2**20) or 0))"
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
