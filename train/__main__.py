"""Command line: `python -m train`, `python -m train sample`, `python -m train export`, and the commands
after pretraining (train/finetune_cli.py)."""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import os
import shutil
import sys
from pathlib import Path

from common.cli import RUN_ERROR, USAGE_ERROR, OneLineParser, existing_path, fail, hide_benign_beam_warnings
from train.config import TrainConfig

hide_benign_beam_warnings()  # Beam comes in only when a tokenizer is read from a remote (gs://) path

# Run as `python -m train`, this file is the module `__main__`; registering it under its package name too
# lets train.finetune_cli import UsageError from here and have main() below catch it.
sys.modules.setdefault("train.__main__", sys.modules[__name__])

TRAIN_USAGE = """python -m train --data SHARDS --out RUN [--config FILE] [--resume] [--KEY VALUE ...]
       python -m train sample --checkpoint RUN [--which best|latest] [--prompt TEXT] [--max-new-tokens N]
       python -m train export --checkpoint RUN --output DIR
       python -m train eval --checkpoint RUN --data SHARDS
       python -m train finetune-cls --checkpoint RUN --data FILE --out RUN2 [--test FILE] [--KEY VALUE ...]
       python -m train classify --checkpoint RUN2 --input FILE | --text TEXT
       python -m train finetune-sft --checkpoint RUN --data FILE --out RUN3 [--KEY VALUE ...]
       python -m train import-hf DIR --out RUN [--tokenizer TOK]"""


class UsageError(Exception):
    """Bad command-line arguments: printed as one line, exit status 2."""


class _Parser(OneLineParser):
    """The shared parser, raising UsageError so that main() reports it under the sub-command's name."""

    def error(self, message: str):
        raise UsageError(f"{message} (see --help)")


def existing_run(text: str) -> str:
    """argparse type of --checkpoint: a run directory or a weights file that is there."""
    if Path(text).exists():
        return text
    raise argparse.ArgumentTypeError(f"no run at {text}")


def _config_keys_help() -> str:
    from model.gpt import PRESETS

    # One string per paragraph: the help formatter wraps each to the terminal's width.
    lines = ["config keys, given as --KEY VALUE (--max-steps 100, or --max_steps 100 as the key is spelled in a TOML "
             "--config file); defaults shown; unset n-* keys come from the preset, an unset decay-steps is max-steps:"]
    for field in dataclasses.fields(TrainConfig):
        lines.append(f"  --{field.name.replace('_', '-')} {'unset' if field.default is None else field.default}")
    lines += ["an unset decay-steps follows max-steps also on --resume: `--resume --max-steps 2N` stretches the cosine "
              "to end at 2N, as if 2N had been asked for from the start (the lr rises onto that curve at the resume "
              "step instead of staying at min-lr); set decay-steps to keep the end where it was.",
              "grad-accum is global: a step is batch-size * block-size * grad-accum tokens however many processes "
              "torchrun starts; each of W processes runs grad-accum / W micro-batches (W must divide it)."]
    lines.append("presets: " + ", ".join(f"{name} ({p['n_layer']} layers, {p['n_head']} heads, {p['n_embd']} wide)"
                                         for name, p in PRESETS.items()))
    return "\n".join(lines)


def parse_overrides(extra: list[str]) -> dict[str, str]:
    """`--key value` and `--key=value` pairs after the known options."""
    overrides: dict[str, str] = {}
    i = 0
    while i < len(extra):
        item = extra[i]
        if not item.startswith("--") or len(item) == 2:
            raise UsageError(f"unexpected argument {item!r}; config keys are given as --KEY VALUE")
        key, eq, value = item[2:].partition("=")
        if not eq:
            if i + 1 >= len(extra) or extra[i + 1].startswith("--"):
                raise UsageError(f"--{key} needs a value")
            value = extra[i + 1]
            i += 1
        overrides[key.replace("-", "_")] = value
        i += 1
    return overrides


def run_train(argv: list[str]) -> int:
    parser = _Parser(prog="python -m train", usage=TRAIN_USAGE, epilog=_config_keys_help(), allow_abbrev=False,
                     description="Train a GPT on token shards written by `python -m pipeline tokenize`.")
    parser.add_argument("--data", required=True, type=existing_path, help="shard directory (with manifest.json)")
    parser.add_argument("--out", required=True, help="run directory: checkpoints, metrics, config, samples")
    parser.add_argument("--config", type=existing_path,
                        help="TOML file of config keys (default: the defaults below; with --resume: RUN/config.toml)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in RUN")
    args, extra = parser.parse_known_args(argv)
    from common.config_io import ConfigError
    from train.config import load_config
    from train.loop import CONFIG_FILE

    try:
        config_path = args.config
        if config_path is None and args.resume and (Path(args.out) / CONFIG_FILE).exists():
            config_path = Path(args.out) / CONFIG_FILE
        config = load_config(config_path, parse_overrides(extra))
    except ConfigError as e:
        raise UsageError(str(e)) from None
    if not Path(args.data).is_dir():
        raise UsageError(f"--data {args.data}: not a directory")

    from train.loop import train

    result = train(config, args.data, args.out, resume=args.resume)
    val = (f", best val loss {result.best_val_loss:.4f} (evaluation {result.eval_seconds:.1f}s, "
           f"{result.eval_seconds / max(result.wall_seconds, 1e-9):.0%} of the wall time)"
           if result.best_val_loss is not None else "")
    print(f"trained {result.steps} steps: train loss {result.train_loss:.4f}{val}, "
          f"{result.tokens_per_s:,.0f} tokens/s; run in {result.run_dir}")
    return 0


def run_sample(argv: list[str]) -> int:
    from train.sample import (BEST, LATEST, TOKENIZER_DIR, generate_text, load_model_saying_which, load_tokenizer,
                              prompt_for, run_dir_of)

    parser = _Parser(prog="python -m train sample", description="Generate text from a trained run.")
    parser.add_argument("--checkpoint", required=True, type=existing_run,
                        help="run directory, checkpoint .pt, or .safetensors")
    parser.add_argument("--which", choices=[BEST, LATEST],
                        help=f"checkpoint of a run directory: {BEST} (lowest validation loss, checkpoints/best.pt) or "
                             f"{LATEST} (newest step-N.pt) (default: {BEST}, or {LATEST} for a run that never validated)")
    parser.add_argument("--prompt", default="", help="text to continue (default: start a new document)")
    parser.add_argument("--max-new-tokens", type=int, default=200, help="most tokens to add (fewer at end-of-text)")
    parser.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 picks the likeliest token")
    parser.add_argument("--top-k", type=int, default=200, help="sample among the K likeliest tokens")
    parser.add_argument("--num-samples", type=int, default=1, help="texts to write; the k-th uses seed SEED + k")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling")
    parser.add_argument("--tokenizer", type=existing_path, help="tokenizer directory (default: RUN/tokenizer)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs")
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA device")
    for option in ("max_new_tokens", "num_samples", "top_k"):
        if getattr(args, option) < 1:
            raise UsageError(f"--{option.replace('_', '-')} must be positive, got {getattr(args, option)}")
    if not (math.isfinite(args.temperature) and args.temperature >= 0):  # nan compares false both ways
        raise UsageError(f"--temperature must be a finite number >= 0 (0 picks the likeliest token), "
                         f"got {args.temperature}")
    if args.which and not Path(args.checkpoint).is_dir():
        raise UsageError(f"--which picks a checkpoint of a run directory; {args.checkpoint} is a file")
    tokenizer_dir = Path(args.tokenizer) if args.tokenizer else run_dir_of(args.checkpoint) / TOKENIZER_DIR
    if not tokenizer_dir.is_dir():
        raise UsageError(f"no tokenizer at {tokenizer_dir}; pass --tokenizer DIR")
    tokenizer = load_tokenizer(tokenizer_dir)
    model, source = load_model_saying_which(args.checkpoint, args.device, args.which)
    print(f"sampling from {source}", file=sys.stderr)
    prompt = prompt_for(args.checkpoint, args.prompt)
    for k in range(args.num_samples):
        text = generate_text(model, tokenizer, prompt, args.max_new_tokens, args.temperature,
                             args.top_k, args.seed + k)
        print(prompt + text)
        if args.num_samples > 1:
            print("-" * 40)
    return 0


def run_export(argv: list[str]) -> int:
    parser = _Parser(prog="python -m train export",
                     description="Export trained weights to Hugging Face GPT-2 format (needs the `hf` extra).")
    parser.add_argument("--checkpoint", required=True, type=existing_run,
                        help="run directory (its latest checkpoint), checkpoint .pt, or .safetensors")
    parser.add_argument("--output", required=True, help="directory for config.json and model.safetensors")
    args = parser.parse_args(argv)
    from model.hf_export import HFExportError, export_hf
    from train.checkpoint import durable_write, write_error
    from train.sample import TOKENIZER_DIR, load_model, load_tokenizer, run_dir_of

    tokenizer_dir = run_dir_of(args.checkpoint) / TOKENIZER_DIR
    tokenizer = load_tokenizer(tokenizer_dir) if tokenizer_dir.is_dir() else None
    model = load_model(args.checkpoint)
    out = Path(args.output)
    # Exported into a hidden directory beside the output, then each file published whole: a full disk
    # leaves no half model.safetensors behind.
    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:  # transformers' "Writing model shards" bar would make an error's stderr more than one line
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    except ImportError:  # export_hf says how to install it
        pass
    try:
        try:
            export_hf(model, staging, tokenizer=tokenizer)
            if tokenizer is not None:
                from tokenizer.hf_export import hf_tokenizer_files

                for name, content in hf_tokenizer_files(tokenizer).items():
                    (staging / name).write_bytes(content)
        except HFExportError:
            raise
        except Exception as e:  # transformers and safetensors wrap a full disk in their own error types
            raise write_error(out, e) from None
        for item in sorted(staging.iterdir()):
            durable_write(out / item.name, lambda tmp: os.replace(item, tmp))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"exported GPT-2 format model{' and tokenizer' if tokenizer else ''} to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from train.finetune_cli import COMMANDS as AFTER_PRETRAINING

    commands = {"sample": run_sample, "export": run_export, **AFTER_PRETRAINING}
    command = commands.get(argv[0]) if argv else None
    from model.hf_export import HFExportError
    from common.shard_format import ShardFormatError
    from train.checkpoint import CheckpointError
    from train.data import DataError
    from train.loop import TrainError

    name = f"train {argv[0]}" if command else "train"
    try:
        if argv and not command and not argv[0].startswith("-"):  # training itself takes options only
            close = difflib.get_close_matches(argv[0], commands, n=1)
            raise UsageError(f"unknown sub-command {argv[0]!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                             + f"; choose from {', '.join(commands)}, or give training options such as --data")
        return command(argv[1:]) if command else run_train(argv)
    except UsageError as e:
        return fail(name, str(e), USAGE_ERROR)
    except BrokenPipeError:  # the reader of stdout left, not a failure: exit_status ends quietly
        raise
    except (ShardFormatError, DataError, CheckpointError, TrainError, HFExportError, ValueError, OSError) as e:
        return fail(name, str(e), RUN_ERROR)
    except KeyboardInterrupt:
        print("interrupted; continue from the last checkpoint with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    from common.cli import exit_status

    sys.exit(exit_status(main))
