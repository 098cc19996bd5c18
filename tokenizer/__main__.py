"""`python -m tokenizer train ...` and `python -m tokenizer export-hf ...`."""
from __future__ import annotations

import argparse
import os
import sys
import time

from common.cli import USAGE_ERROR, OneLineParser, existing_path, exit_status, fail, hide_benign_beam_warnings

hide_benign_beam_warnings()  # before the imports below bring in Beam

from tokenizer.corpus import InputError
from tokenizer.model import TokenizerError
from tokenizer.train import MODEL_TYPES, TrainConfig, TrainError


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m tokenizer", description="Train and export the corpus tokenizer.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser, metavar="COMMAND",
                                     help="what to do; `python -m tokenizer COMMAND --help` tells more")
    defaults = TrainConfig()

    train = commands.add_parser("train", help="train a SentencePiece tokenizer on cleaned/ documents",
                                description="Train a lossless SentencePiece tokenizer (byte fallback, split "
                                            "digits, <|endoftext|> at a fixed id) on a seeded, language-balanced "
                                            "sample of cleaned/part-*.jsonl.gz, and report bytes per token on "
                                            "held-out documents.")
    train.add_argument("--input", required=True, type=existing_path, help="cleaned/ directory (or a glob of .jsonl.gz files); gs:// works")
    train.add_argument("--output", required=True, help="directory to write tokenizer.model and tokenizer_meta.json into")
    train.add_argument("--vocab-size", type=int, required=True, help="pieces in the vocabulary, special tokens included")
    train.add_argument("--model-type", choices=MODEL_TYPES, default=defaults.model_type, help="SentencePiece algorithm")
    train.add_argument("--max-sentences", type=int, default=defaults.max_sentences,
                       help="most lines to train on")
    train.add_argument("--max-bytes", type=int, default=defaults.max_bytes,
                       help="most UTF-8 bytes to train on")
    train.add_argument("--seed", type=int, default=defaults.seed, help="seed of the sample and the held-out split")
    train.add_argument("--user-defined-symbols", nargs="*", default=[], metavar="SYMBOL",
                       help="extra special tokens, each kept whole wherever it occurs in text (default: none)")
    train.add_argument("--character-coverage", type=float, default=defaults.character_coverage,
                       help="share of characters given pieces of their own; rarer ones fall back to bytes")
    train.add_argument("--language-alpha", type=float, default=defaults.language_alpha,
                       help="language budget share grows as bytes ** alpha")
    train.add_argument("--heldout-fraction", type=float, default=defaults.heldout_fraction,
                       help="documents kept out of training to measure compression")
    train.add_argument("--num-threads", type=int, default=defaults.num_threads, help="SentencePiece trainer threads")

    export = commands.add_parser("export-hf", help="export a trained tokenizer to Hugging Face format",
                                 description="Write tokenizer.json, tokenizer_config.json and "
                                             "special_tokens_map.json, loadable with "
                                             "transformers.PreTrainedTokenizerFast.from_pretrained(DIR). "
                                             "Needs the `tokenizers` package (pip install '.[hf]').")
    export.add_argument("tokenizer", type=existing_path, help="directory written by `python -m tokenizer train`")
    export.add_argument("--output", help="directory to write into (default: TOKENIZER-hf beside the tokenizer "
                                         "directory; the input directory itself is never written to)")
    return parser


def run_train(args: argparse.Namespace) -> int:
    from common.fileio import output_dir_problem
    from tokenizer.train import train

    config = TrainConfig(vocab_size=args.vocab_size, model_type=args.model_type, max_sentences=args.max_sentences,
                         max_bytes=args.max_bytes, seed=args.seed, user_defined_symbols=list(args.user_defined_symbols),
                         character_coverage=args.character_coverage, language_alpha=args.language_alpha,
                         heldout_fraction=args.heldout_fraction, num_threads=args.num_threads)
    try:
        config.validate()
    except TrainError as e:
        return fail("tokenizer train", str(e), USAGE_ERROR)
    problem = output_dir_problem(args.output, [args.input])
    if problem:
        return fail("tokenizer train", problem, USAGE_ERROR)
    started = time.monotonic()
    meta = train(args.input, args.output, config)
    compression = meta["compression"]
    for lang, figures in compression.items():
        if lang != "all":
            print(f"  {lang:>5}  {figures['docs']:6d} held-out docs  {figures['bytes_per_token']} bytes/token")
    used = meta["training"]["sentencepiece_options"]["character_coverage"]
    if used < config.character_coverage:
        print(f"  character coverage lowered from {config.character_coverage} to {used:.6f} so that single "
              f"characters leave half the vocabulary to longer pieces (the rest fall back to bytes)")
    overall = compression["all"]["bytes_per_token"]
    print(f"tokenizer train: {meta['model_type']} vocab {meta['vocab_size']} (eot id {meta['eot_id']}) trained on "
          f"{meta['training']['sampled_sentences']} lines / {meta['training']['sampled_bytes']} bytes in "
          f"{time.monotonic() - started:.1f}s; held-out {overall} bytes/token; wrote {args.output}")
    return 0


def default_hf_output(tokenizer_dir: str) -> str:
    """TOK -> TOK-hf beside it (`.` and `tok/` included: the name is taken from the absolute path)."""
    if "://" in tokenizer_dir:
        return tokenizer_dir.rstrip("/") + "-hf"
    return os.path.abspath(tokenizer_dir) + "-hf"


def run_export(args: argparse.Namespace) -> int:
    from common.fileio import output_dir_problem
    from tokenizer.hf_export import export_hf
    from tokenizer.model import Tokenizer

    output = args.output or default_hf_output(args.tokenizer)
    problem = output_dir_problem(output, [args.tokenizer])
    if problem:
        return fail("tokenizer export-hf", problem, USAGE_ERROR)
    export_hf(Tokenizer.load(args.tokenizer), output)
    print(f"tokenizer export-hf: wrote tokenizer.json, tokenizer_config.json, special_tokens_map.json to {output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_train(args) if args.command == "train" else run_export(args)
    except (InputError, TokenizerError, TrainError) as e:
        return fail(f"tokenizer {args.command}", str(e))


if __name__ == "__main__":
    sys.exit(exit_status(main))
