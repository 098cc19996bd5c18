"""The after-pretraining commands of `python -m train`: eval, finetune-cls, classify, finetune-sft, import-hf."""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from common.cli import existing_path
from train.__main__ import UsageError, _Parser, existing_run, parse_overrides

FINETUNE_KEYS_NOTE = "Config keys (--KEY VALUE, hyphens or underscores alike, or a TOML --config file; defaults shown):"


def _keys_help(config_class) -> str:
    lines = [FINETUNE_KEYS_NOTE]
    for field in dataclasses.fields(config_class):
        lines.append(f"  --{field.name.replace('_', '-')} {'unset' if field.default is None else field.default}")
    return "\n".join(lines)


def _parser(prog: str, description: str, config_class=None) -> argparse.ArgumentParser:
    return _Parser(prog=f"python -m train {prog}", description=description, allow_abbrev=False,
                   epilog=_keys_help(config_class) if config_class else None)


def _load_finetune_config(config_class, args, extra: list[str]):
    from common.config_io import ConfigError, load
    from train.loop import CONFIG_FILE

    config_path = args.config
    if config_path is None and args.resume and (Path(args.out) / CONFIG_FILE).exists():
        config_path = Path(args.out) / CONFIG_FILE
    try:
        return load(config_class, config_path, parse_overrides(extra))
    except ConfigError as e:
        raise UsageError(str(e)) from None


def _finetune_parser(prog: str, description: str, config_class, with_test: bool) -> argparse.ArgumentParser:
    parser = _parser(prog, description, config_class)
    parser.add_argument("--checkpoint", required=True, type=existing_run,
                        help="run directory (its latest checkpoint), checkpoint .pt, or Hugging Face GPT-2 folder")
    parser.add_argument("--data", required=True, type=existing_path, help="training records (JSON lines, JSON list" +
                        (", or CSV)" if with_test else ")"))
    parser.add_argument("--out", required=True, help="run directory for checkpoints, metrics and eval.json")
    parser.add_argument("--val", type=existing_path, help="validation records (default: a seeded val_fraction of --data)")
    if with_test:
        parser.add_argument("--test", type=existing_path, help="test records, scored once at the end (default: none)")
    parser.add_argument("--tokenizer", type=existing_path, help="tokenizer directory (default: CHECKPOINT/tokenizer)")
    parser.add_argument("--config", type=existing_path,
                        help="TOML file of config keys (default: the defaults below; with --resume: OUT/config.toml)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in OUT")
    return parser


def _print_summary(result: dict, out: str) -> None:
    counts = f"{result['trainable_params']:,} of {result['total_params']:,} parameters trained"
    if "val" in result:
        scores = f"val accuracy {result['val']['accuracy']:.4f} (majority class {result['val']['majority_accuracy']:.4f})"
        if "test" in result:
            scores += f", test accuracy {result['test']['accuracy']:.4f}"
    else:
        scores = f"val loss {result['initial']['val_loss']:.4f} -> {result['val_loss']:.4f} on response tokens"
    print(f"fine-tuned {result['steps']} steps: {scores}; {counts}; peak memory {result['peak_memory_mb']:.0f} MB; "
          f"{Path(out) / 'eval.json'}")


def run_finetune_cls(argv: list[str]) -> int:
    from train.finetune_cls import ClassificationTask, ClassifierConfig

    return _run_finetune(argv, "finetune-cls", "Fine-tune a pretrained GPT to classify texts (a head on the last "
                         "token; labels from the data).", ClassifierConfig,
                         lambda config, start, args: ClassificationTask(config, start.tokenizer,
                                                                        start.model.config.block_size,
                                                                        args.data, args.val, args.test))


def run_finetune_sft(argv: list[str]) -> int:
    from train.finetune_sft import InstructionConfig, InstructionTask

    return _run_finetune(argv, "finetune-sft", "Instruction-tune a pretrained GPT on {instruction, input, output} "
                         "pairs (loss on the responses only).", InstructionConfig,
                         lambda config, start, args: InstructionTask(config, start.tokenizer,
                                                                     start.model.config.block_size,
                                                                     args.data, args.val))


def _run_finetune(argv: list[str], name: str, description: str, config_class, make_task) -> int:
    """Parse a fine-tuning command, build its task from the starting point, train, print the summary."""
    from train.finetune import finetune, load_starting_point

    parser = _finetune_parser(name, description, config_class, with_test=name == "finetune-cls")
    args, extra = parser.parse_known_args(argv)
    config = _load_finetune_config(config_class, args, extra)
    start = load_starting_point(args.checkpoint, args.tokenizer)
    task = make_task(config, start, args)
    _print_summary(finetune(task, config, start, args.out, resume=args.resume), args.out)
    return 0


def run_classify(argv: list[str]) -> int:
    parser = _parser("classify", "Label texts with a run of `finetune-cls`: one JSON line per record.")
    parser.add_argument("--checkpoint", required=True, type=existing_run, help="run directory of finetune-cls")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=existing_path, help="records to label (JSON lines, JSON list, or CSV) with the run's text field")
    source.add_argument("--text", help="one text to label")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs")
    args = parser.parse_args(argv)
    import torch

    from train import checkpoint as ckpt
    from train.finetune import FinetuneError, load_finetuned, read_records, require_fields, weights_file_of
    from train.finetune_cls import encode_texts, predict
    from train.sample import TOKENIZER_DIR, load_tokenizer, run_dir_of

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA device")
    state = ckpt.load_checkpoint(weights_file_of(args.checkpoint))
    info = state.get("finetune") or {}
    if info.get("task") != "classification":
        raise FinetuneError(f"{args.checkpoint} is not a run of `python -m train finetune-cls`")
    if args.text is not None:
        texts = [args.text]
    else:
        records = read_records(args.input)
        require_fields(records, [info["text_field"]], args.input, "column")
        texts = [r[info["text_field"]] for r in records]
    tokenizer = load_tokenizer(run_dir_of(args.checkpoint) / TOKENIZER_DIR)
    device = torch.device(args.device)
    model = load_finetuned(state).to(device)
    probs = predict(model, encode_texts(tokenizer, texts, info["max_length"]), tokenizer.eot_id, device)
    labels = info["labels"]
    for row in probs.tolist():
        best = max(range(len(labels)), key=row.__getitem__)
        print(json.dumps({"label": labels[best], "scores": dict(zip(labels, row))}, ensure_ascii=False))
    return 0


def run_eval(argv: list[str]) -> int:
    parser = _parser("eval", "Validation loss, perplexity and bits per byte of a model on the val shards of SHARDS.")
    parser.add_argument("--checkpoint", required=True, type=existing_run,
                        help="run directory (its latest checkpoint), checkpoint .pt, .safetensors, or GPT-2 folder")
    parser.add_argument("--data", required=True, type=existing_path, help="shard directory (with manifest.json and val shards)")
    parser.add_argument("--tokenizer", type=existing_path, help="tokenizer directory, for bits per byte (default: the run's, else the "
                                            "one the manifest names)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    parser.add_argument("--max-windows", type=int, help="evaluate only this many windows (default: all)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs")
    args = parser.parse_args(argv)
    import torch

    from model.hf_import import is_hf_folder, load_hf_gpt2
    from common.shard_format import load_manifest
    from train.evaluate import evaluate_shards
    from train.finetune import FinetuneError, find_tokenizer_dir, weights_file_of
    from train.loop import check_tokenizer
    from train.sample import load_model, load_tokenizer

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA device")
    if args.batch_size < 1 or (args.max_windows is not None and args.max_windows < 1):
        raise UsageError("--batch-size and --max-windows must be positive")
    if not (Path(args.data) / "manifest.json").is_file():
        raise UsageError(f"--data {args.data}: no manifest.json there")
    manifest = load_manifest(args.data)
    try:
        tokenizer_dir = find_tokenizer_dir(args.checkpoint, args.tokenizer)
    except FinetuneError:
        named = (manifest.get("tokenizer") or {}).get("path")
        tokenizer_dir = next((p for p in (Path(named), Path(args.data) / named) if p.is_dir()), None) if named else None
    tokenizer = load_tokenizer(tokenizer_dir) if tokenizer_dir is not None else None
    if tokenizer is not None:
        check_tokenizer(tokenizer, Path(args.data), manifest["vocab_size"])
    if is_hf_folder(args.checkpoint):
        model = load_hf_gpt2(args.checkpoint, manifest["vocab_size"])[0]
    else:
        model = load_model(weights_file_of(args.checkpoint))
    result = evaluate_shards(model.to(args.device), args.data, tokenizer, args.batch_size, args.max_windows)
    print(json.dumps(result))
    return 0


def run_import_hf(argv: list[str]) -> int:
    parser = _parser("import-hf", "Convert a Hugging Face GPT-2 folder on disk into a run directory that "
                                  "`train sample`, `eval` and the fine-tuning commands take.")
    parser.add_argument("folder", type=existing_path, help="directory with config.json and model.safetensors (or pytorch_model.bin)")
    parser.add_argument("--out", required=True, help="run directory to create")
    parser.add_argument("--tokenizer", type=existing_path, help="tokenizer directory to copy into OUT/tokenizer (default: FOLDER/tokenizer "
                                            "or FOLDER itself when it holds one)")
    args = parser.parse_args(argv)
    from model.gpt import save_safetensors
    from model.hf_import import hf_weights_file, is_hf_folder, load_hf_gpt2
    from train import checkpoint as ckpt
    from train.config import TrainConfig, to_toml
    from train.finetune import FinetuneError, copy_tokenizer_dir, file_sha256, find_tokenizer_dir
    from train.loop import CONFIG_FILE, MODEL_FILE
    from train.sample import load_tokenizer

    if not is_hf_folder(args.folder):
        raise UsageError(f"{args.folder}: not a GPT-2 folder (needs config.json and model.safetensors or "
                         f"pytorch_model.bin)")
    out = Path(args.out)
    if ckpt.latest_checkpoint(out) is not None:
        raise UsageError(f"{out} already holds checkpoints; choose another --out")
    try:
        tokenizer_dir = find_tokenizer_dir(args.folder, args.tokenizer)
    except FinetuneError:
        if args.tokenizer:
            raise
        tokenizer_dir = None
    vocab_size = load_tokenizer(tokenizer_dir).vocab_size if tokenizer_dir else None
    model, notes = load_hf_gpt2(args.folder, vocab_size)
    for note in notes:
        print(f"note: {note}")
    c = model.config
    config = TrainConfig(n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd, block_size=c.block_size,
                         dropout=c.dropout, bias=c.bias).resolved()
    weights = hf_weights_file(args.folder)
    ckpt.save_checkpoint(out, 0, {"model": model.state_dict(), "model_config": vars(c), "step": 0,
                                  "config": vars(config), "imported_from": {"path": str(weights),
                                                                            "sha256": file_sha256(weights)}},
                         keep_last=1)
    save_safetensors(model, out / MODEL_FILE)
    (out / CONFIG_FILE).write_text(to_toml(config), encoding="utf-8")
    if tokenizer_dir is not None:
        copy_tokenizer_dir(tokenizer_dir, out)
    else:
        print(f"note: no tokenizer of ours in {args.folder}; pass --tokenizer to fine-tune or sample from {out}")
    print(f"imported {args.folder} ({c.n_layer} layers, {c.n_embd} wide, vocab {c.vocab_size}) into {out}")
    return 0


COMMANDS = {"eval": run_eval, "finetune-cls": run_finetune_cls, "classify": run_classify,
            "finetune-sft": run_finetune_sft, "import-hf": run_import_hf}
