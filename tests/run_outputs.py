"""The outputs of a `clean` run that must be byte-identical from run to run: every file but timing.json."""
from pathlib import Path

RUN_TIMING = "timing.json"   # how long this run took: the one output that differs between runs


def identical_outputs(out_dir: Path) -> dict[str, bytes]:
    """`{path under out_dir: bytes}` of every output file of a finished run except its timing."""
    assert (out_dir / RUN_TIMING).is_file()
    return {f.relative_to(out_dir).as_posix(): f.read_bytes() for f in sorted(out_dir.rglob("*"))
            if f.is_file() and f.relative_to(out_dir).as_posix() != RUN_TIMING}
