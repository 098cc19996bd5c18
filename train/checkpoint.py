"""Checkpoints that resume a run exactly, written atomically and durably, loaded with `weights_only=True`.

A checkpoint is one `torch.save` file, RUN/checkpoints/step-XXXXXXXX.pt, holding only tensors and plain
Python values (so the safe `weights_only` unpickler reads it): model and optimizer state dicts, the lr
scheduler's state, the step, the RNG states of Python, NumPy, torch and CUDA, the loader's position,
the resolved config and the best validation loss so far. Under DDP, "rng" holds one state per rank.
Retention keeps the newest `keep_last` checkpoints. The weights with the best validation loss are kept
apart, without optimizer state, in RUN/checkpoints/best.pt (`train sample` reads it unless told `--which latest`).

Writes happen on a background thread from a CPU snapshot of the state, so training goes on while the disk
works; one write at a time, and a failed write stops the run at the next save or at the end.
"""
from __future__ import annotations

import os
import random
import re
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from common.cli import first_line

CHECKPOINT_DIR = "checkpoints"
BEST_FILE = "best.pt"
# What a file must hold to be read as a model (sample, export) or to resume a run from.
MODEL_KEYS = ("model", "model_config")
RESUME_KEYS = (*MODEL_KEYS, "optimizer", "scheduler", "step", "loader", "rng", "best_val_loss", "best_step")
_NAME = re.compile(r"^step-(\d{8})\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not match this run; one line for the user."""


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step-{step:08d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint in the run, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), folder / m.group(0)) for m in map(_NAME.match, os.listdir(folder)) if m]
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def load_latest_readable(run_dir: str | Path, required: tuple[str, ...],
                         warn: Callable[[str], None]) -> tuple[Path, dict[str, Any]] | None:
    """(path, contents) of the newest checkpoint of the run that reads whole with the `required` keys.

    A newer one that does not (cut short by a crash or a full disk) is skipped with one warning, since the
    previous one is still sound; CheckpointError when the run has checkpoints and none is readable, None
    when it has none."""
    errors = []
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            state = load_checkpoint(path, required=required)
        except CheckpointError as e:
            errors.append(str(e))
            continue
        if errors:
            warn(f"warning: skipped {len(errors)} unreadable checkpoint(s) ({errors[0]}); using {path.name}")
        return path, state
    if errors:
        raise CheckpointError(f"no readable checkpoint in {run_dir}: {errors[0]}")
    return None


def remove_leftovers(run_dir: str | Path) -> None:
    """Delete the temporary files `durable_write` left when a process died between write and rename."""
    for folder in (Path(run_dir), Path(run_dir) / CHECKPOINT_DIR):
        for leftover in folder.glob(".*.tmp-*"):
            if leftover.is_file():
                leftover.unlink(missing_ok=True)


def rng_state() -> dict[str, Any]:
    """Every RNG the trainer touches, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached_gauss = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gauss": float(cached_gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # of the current device: one per process
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"].tolist()), python["gauss"]))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def write_error(path: Path, error: BaseException) -> CheckpointError:
    """One line for a failed write, naming the OS's reason (torch wraps "No space left" in its own error)."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    reason = f"{cause.strerror} [Errno {cause.errno}]" if cause is not None and cause.strerror else first_line(error)
    return CheckpointError(f"cannot write {path}: {reason}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Publish the file `write(temporary_path)` makes as `path`: whole or not at all, on disk before its name.

    The temporary name sits beside `path` (hidden, `.NAME.tmp-PID`) and is removed if anything fails, so a
    full disk leaves no half file and whatever `path` held before stays as it was. CheckpointError on failure."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)  # the rename itself survives a power cut only once the directory is synced
    except Exception as e:
        raise write_error(path, e) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _torch_save(state: dict[str, Any], path: Path) -> None:
    # Through a Python file object, so a failed write keeps its OSError (errno) in the exception chain.
    with open(path, "wb") as f:
        torch.save(state, f)


def save_checkpoint(run_dir: str | Path, step: int, state: dict[str, Any], keep_last: int) -> Path:
    """Write `state` as the checkpoint of `step` durably, then prune old ones (only once the new one is safe)."""
    path = durable_write(checkpoint_path(run_dir, step), lambda tmp: _torch_save(state, tmp))
    found = list_checkpoints(run_dir)
    for _, old_path in found[:-keep_last]:
        old_path.unlink(missing_ok=True)
    return path


def save_best(run_dir: str | Path, state: dict[str, Any]) -> Path:
    """Write the best weights so far (model, model_config, step, val_loss) over the previous best."""
    return durable_write(Path(run_dir) / CHECKPOINT_DIR / BEST_FILE, lambda tmp: _torch_save(state, tmp))


def to_cpu_snapshot(value: Any) -> Any:
    """A copy of `value` (nested dicts, lists and tuples of tensors and plain values) that training cannot
    change any more: every tensor detached and copied to CPU memory."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: to_cpu_snapshot(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu_snapshot(item) for item in value)
    return value


class BackgroundWriter:
    """Runs one write at a time on a thread. `wait()` blocks until the running write is done and returns
    its error message (None if it succeeded), so the caller decides how to stop, on every rank alike."""

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._error: str | None = None

    def _run(self, write: Callable[[], Any]) -> None:
        try:
            write()
        except Exception as e:  # reported by wait(), on the training thread
            self._error = first_line(e)

    def submit(self, write: Callable[[], Any]) -> None:
        """Start `write` once the previous one is done; raises CheckpointError if the previous one failed."""
        error = self.wait()
        if error is not None:
            raise CheckpointError(error)
        # Not a daemon: an interpreter that exits (error, Ctrl-C) still finishes the checkpoint in flight.
        self._thread = threading.Thread(target=self._run, args=(write,), name="checkpoint-writer")
        self._thread.start()

    def wait(self) -> str | None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        return error


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The checkpoint's contents, which must include the `required` keys; CheckpointError otherwise."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {first_line(e)}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a checkpoint: it holds a {type(state).__name__}, not a dict")
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}: not a complete checkpoint of this trainer")
    return state
