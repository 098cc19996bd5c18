"""Export a trained tokenizer to Hugging Face format (`tokenizers`' tokenizer.json + transformers' configs).

The result loads with `tokenizers.Tokenizer.from_file(DIR/tokenizer.json)` or
`transformers.PreTrainedTokenizerFast.from_pretrained(DIR)`. It rebuilds the SentencePiece model's
behaviour from its parts: the same vocabulary and ids, BPE merges recovered from the piece order (or
the unigram scores), spaces as U+2581, words split where SentencePiece splits them, single digits,
byte fallback. Unlike our `Tokenizer`, it cannot tell a literal U+2581 from a space.
"""
from __future__ import annotations

import json

from tokenizer.model import Tokenizer, TokenizerError, WHITESPACE_MARKER

HF_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
# SentencePiece starts a new word at a whitespace marker that follows a non-marker character
# (runs of markers stay together, since training allowed whitespace-only pieces).
WORD_PATTERN = f"{WHITESPACE_MARKER}+[^{WHITESPACE_MARKER}]*|[^{WHITESPACE_MARKER}]+"


def bpe_merges(pieces: list[str], ids: dict[str, int]) -> list[tuple[str, str]]:
    """Every (left, right) pair of pieces that joins into a piece, ranked by the joined piece's id.

    SentencePiece BPE numbers its pieces in the order it learned them, so a piece's id is its merge rank.
    """
    merges = []
    for piece in pieces:
        rank = ids[piece]
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in ids and right in ids:
                merges.append((rank, ids[left], ids[right], left, right))
    return [(left, right) for *_, left, right in sorted(merges)]


def build_hf_tokenizer(tokenizer: Tokenizer):
    try:
        from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers
        from tokenizers import Tokenizer as HFTokenizer
    except ImportError:
        raise TokenizerError("exporting to Hugging Face format needs the `tokenizers` package: "
                             "pip install 'webcorpus-gpt[hf]' (or pip install tokenizers)") from None
    sp = tokenizer.processor
    size = sp.get_piece_size()
    pieces = [sp.id_to_piece(i) for i in range(size)]
    unk_id = sp.unk_id()
    special = [i for i in range(size) if sp.is_control(i) or sp.is_unknown(i)]
    user_defined = [pieces[i] for i in tokenizer.meta.get("user_defined_symbols", {}).values()]
    if tokenizer.meta.get("model_type", "bpe") == "bpe":
        ids = {piece: i for i, piece in enumerate(pieces)}
        mergeable = [p for i, p in enumerate(pieces) if i not in special and not sp.is_byte(i) and p not in user_defined]
        model = models.BPE(vocab=ids, merges=bpe_merges(mergeable, ids), unk_token=pieces[unk_id],
                           byte_fallback=True, fuse_unk=True)
    else:
        model = models.Unigram([(p, sp.get_score(i)) for i, p in enumerate(pieces)], unk_id=unk_id, byte_fallback=True)
    hf = HFTokenizer(model)
    hf.normalizer = normalizers.Replace(" ", WHITESPACE_MARKER)
    hf.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="isolated"),
        # SentencePiece's split_digits splits ASCII digits only (Digits() would split every \p{N}).
        pre_tokenizers.Split(Regex("[0-9]"), behavior="isolated"),
    ])
    hf.decoder = decoders.Sequence([decoders.Replace(WHITESPACE_MARKER, " "), decoders.ByteFallback(), decoders.Fuse()])
    hf.add_special_tokens([AddedToken(pieces[i], special=True, normalized=False) for i in special])
    hf.add_tokens([AddedToken(symbol, special=False, normalized=False) for symbol in user_defined])
    return hf


def hf_tokenizer_files(tokenizer: Tokenizer) -> dict[str, bytes]:
    """The contents of tokenizer.json, tokenizer_config.json and special_tokens_map.json (Beam-free, so
    that `train export` can put them beside the model where Beam is not installed)."""
    hf = build_hf_tokenizer(tokenizer)
    sp = tokenizer.processor
    unk = sp.id_to_piece(sp.unk_id())
    extra = list(tokenizer.meta.get("user_defined_symbols", {}))
    special_map = {"eos_token": tokenizer.eot_token, "unk_token": unk, "additional_special_tokens": extra}
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": tokenizer.eot_token, "unk_token": unk,
              "additional_special_tokens": extra, "clean_up_tokenization_spaces": False,
              "model_max_length": 1 << 30, "sentencepiece_model_sha256": tokenizer.model_sha256}
    files = {"tokenizer.json": hf.to_str(pretty=True).encode("utf-8")}
    for name, content in (("tokenizer_config.json", config), ("special_tokens_map.json", special_map)):
        files[name] = (json.dumps(content, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return files


def export_hf(tokenizer: Tokenizer, output_dir: str) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json into `output_dir`
    (any Beam FileSystems path)."""
    from common.fileio import atomic_write, join

    for name, content in hf_tokenizer_files(tokenizer).items():
        atomic_write(join(output_dir, name), content)
