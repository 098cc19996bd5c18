"""pipeline.cli: the exit plumbing every entry point (`python -m pipeline|tokenizer|train`) shares."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_writer_whose_reader_leaves_early_ends_quietly_with_status_0():
    # A megabyte to stdout through a real pipe that `head` closes after 10 bytes.
    writer = "import sys; from pipeline.cli import exit_status; sys.exit(exit_status(lambda: print('x' * 2**20) or 0))"
    command = f"set -o pipefail; '{sys.executable}' -c \"{writer}\" | head -c 10"
    result = subprocess.run(["bash", "-c", command], capture_output=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (result.returncode, result.stdout, result.stderr) == (0, b"x" * 10, b"")
