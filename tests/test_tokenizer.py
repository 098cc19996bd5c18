"""`python -m tokenizer train`, the sampling behind it, `Tokenizer`, and the Hugging Face export."""
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cleaned_corpus import EDGE_CASES, corpus_documents, write_cleaned
from tokenizer import EOT_TOKEN, META_FILE, MODEL_FILE, Tokenizer, TokenizerError
from tokenizer.__main__ import main
from tokenizer.train import BottomKSample, TrainConfig, allocate_budget, collect_sample, split_sentences, train

REPO = Path(__file__).resolve().parents[1]
VOCAB = 2000


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory):
    return write_cleaned(tmp_path_factory.mktemp("tok") / "cleaned", corpus_documents())


@pytest.fixture(scope="module")
def tok_dir(cleaned):
    out = cleaned.parent / "tok"
    assert main(["train", "--input", str(cleaned), "--output", str(out), "--vocab-size", str(VOCAB),
                 "--character-coverage", "0.99", "--heldout-fraction", "0.1",
                 "--user-defined-symbols", "<|fim|>", "<|sep|>"]) == 0
    return out


@pytest.fixture(scope="module")
def tok(tok_dir):
    return Tokenizer.load(str(tok_dir))


def test_every_document_round_trips_exactly(tok):
    docs = corpus_documents()
    assert {d["lang"] for d in docs} >= {"ar", "de", "en", "es", "fr", "hi", "it", "ja", "pt", "ru", "sw", "zh"}
    encoded = tok.encode_batch([d["text"] for d in docs])
    for doc, ids in zip(docs, encoded):
        assert tok.decode(ids) == doc["text"], doc["id"]
        assert tok.processor.unk_id() not in ids, doc["id"]  # byte fallback: nothing is unknown
        assert ids == tok.encode(doc["text"])


def test_literal_whitespace_marker_is_kept_as_bytes(tok):
    text = EDGE_CASES["edge-marker"]
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    marker_bytes = [tok.processor.piece_to_id(f"<0x{b:02X}>") for b in "\u2581".encode()]
    assert ids[-3:] == marker_bytes
    assert tok.decode(tok.encode("a b")) == "a b" and tok.decode(tok.encode("a\u2581b")) == "a\u2581b"


def test_special_tokens_have_fixed_ids_and_text_cannot_forge_end_of_text(tok):
    assert tok.eot_id == 1 and tok.id_to_piece(1) == EOT_TOKEN
    assert tok.eot_id not in tok.encode(f"before {EOT_TOKEN} after")
    assert tok.decode([tok.eot_id]) == ""
    fim = tok.processor.piece_to_id("<|fim|>")
    assert tok.encode("x<|fim|>y").count(fim) == 1 and tok.decode(tok.encode("x<|fim|>y")) == "x<|fim|>y"


def test_digits_are_split_and_rare_characters_fall_back_to_bytes(tok):
    pieces = [tok.id_to_piece(i) for i in tok.encode("2024")]
    assert pieces == ["2", "0", "2", "4"]
    ids = tok.encode("\U00013000")  # an Egyptian hieroglyph: surely not in a 2000-piece vocabulary
    assert [tok.id_to_piece(i) for i in ids] == ["<0xF0>", "<0x93>", "<0x80>", "<0x80>"]


def test_metadata_describes_the_model_and_compression(tok_dir, tok):
    meta = json.loads((tok_dir / META_FILE).read_text())
    assert meta["vocab_size"] == tok.vocab_size == VOCAB
    assert meta["model_sha256"] == tok.model_sha256
    assert meta["special_tokens"][EOT_TOKEN] == 1 and meta["special_tokens"]["<|fim|>"] == 2
    assert meta["normalization"]["rule"] == "identity" and meta["normalization"]["byte_fallback"] is True
    assert meta["training"]["vocab_size"] == VOCAB and meta["training"]["seed"] == 0
    compression = meta["compression"]
    assert compression["all"]["docs"] > 0
    for lang, figures in compression.items():
        assert figures["bytes_per_token"] == pytest.approx(figures["bytes"] / figures["tokens"], rel=1e-3), lang
    assert 1.0 < compression["all"]["bytes_per_token"] < 8.0


def test_training_is_deterministic_and_independent_of_how_files_are_cut(tok, tmp_path):
    # The same documents spread over 3 files instead of 2, in another order: the same sample, the same model.
    recut = write_cleaned(tmp_path / "recut", corpus_documents()[::-1], num_files=3)
    again = train(str(recut), str(tmp_path / "again"), TrainConfig(
        vocab_size=VOCAB, character_coverage=0.99, heldout_fraction=0.1, user_defined_symbols=["<|fim|>", "<|sep|>"]))
    assert again["model_sha256"] == tok.model_sha256


def test_unigram_round_trips(cleaned, tmp_path):
    train(str(cleaned), str(tmp_path / "uni"), TrainConfig(vocab_size=1500, model_type="unigram",
                                                           character_coverage=0.99))
    uni = Tokenizer.load(str(tmp_path / "uni"))
    assert uni.meta["model_type"] == "unigram"
    for text in EDGE_CASES.values():
        assert uni.decode(uni.encode(text)) == text


def test_load_rejects_a_model_that_does_not_match_its_metadata(tok_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / META_FILE).write_bytes((tok_dir / META_FILE).read_bytes())
    model = bytearray((tok_dir / MODEL_FILE).read_bytes())
    model[-1] ^= 1
    (broken / MODEL_FILE).write_bytes(bytes(model))
    with pytest.raises(TokenizerError, match="sha256"):
        Tokenizer.load(str(broken))
    with pytest.raises(TokenizerError, match="cannot read"):
        Tokenizer.load(str(tmp_path / "missing"))


@pytest.mark.parametrize("key, value, message", [
    ("model_file", "../elsewhere/tokenizer.model", "model_file must be a file name inside the tokenizer directory"),
    ("model_sha256", 5, "model_sha256 must be a string"),
    ("eot_id", "1", "eot_id must be an integer"),
    ("eot_token", None, "eot_token must be a string"),
])
def test_load_rejects_metadata_of_the_wrong_type_or_pointing_outside(tok_dir, tmp_path, key, value, message):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / MODEL_FILE).write_bytes((tok_dir / MODEL_FILE).read_bytes())
    meta = json.loads((tok_dir / META_FILE).read_text())
    meta[key] = value
    (broken / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(TokenizerError, match=message):
        Tokenizer.load(str(broken))


def test_split_sentences_cuts_long_lines_at_character_boundaries():
    assert split_sentences("a\n\nb c\n", 100) == ["a", "b c"]
    pieces = split_sentences("日本語" * 5, 7)  # 3 bytes a character: two characters a piece
    assert "".join(pieces) == "日本語" * 5 and [len(p) for p in pieces] == [2] * 7 + [1]
    assert split_sentences("a😀b", 2) == ["a", "😀", "b"]  # a 4-byte character still gets through


def test_allocate_budget_favours_small_languages_but_never_exceeds_what_they_have():
    shares = allocate_budget({"en": 10_000, "sw": 100, "de": 2_500}, budget=3_000, alpha=0.5)
    assert shares["sw"] == 100  # capped at what it has
    assert shares["en"] > shares["de"] > shares["sw"]
    assert shares["de"] / shares["en"] == pytest.approx(0.5, rel=0.01)  # (2500/10000) ** 0.5
    assert sum(shares.values()) <= 3_000
    assert allocate_budget({"en": 10, "de": 20}, budget=1_000, alpha=0.5) == {"en": 10, "de": 20}


def test_bottom_k_sample_ignores_arrival_order():
    items = [(random.Random(i).getrandbits(64), f"k{i}", 1 + i % 7, f"v{i}") for i in range(500)]
    first, second = BottomKSample(max_size=300, max_count=80), BottomKSample(max_size=300, max_count=80)
    for item in items:
        first.add(*item)
    for item in random.Random(1).sample(items, len(items)):
        second.add(*item)
    assert first.items() == second.items()
    assert first.size <= 300 and len(first.items()) <= 80


def test_sample_respects_the_byte_budget_and_covers_every_language(cleaned):
    config = TrainConfig(vocab_size=VOCAB, max_bytes=20_000, heldout_fraction=0.1)
    sample = collect_sample(sorted(str(p) for p in cleaned.glob("part-*.jsonl.gz")), config)
    assert sum(len(s.encode()) for s in sample.sentences) <= 20_000
    sampled = {lang: s["sampled_bytes"] for lang, s in sample.stats.items()}
    assert all(sampled[lang] > 0 for lang in sampled), sampled
    assert max(sampled.values()) < 4 * min(v for lang, v in sampled.items() if lang != "und")


def test_cli_usage_errors_are_one_line_and_exit_2(cleaned, tmp_path):
    for args, needle in ((["train", "--input", str(cleaned), "--output", str(tmp_path / "t")], "--vocab-size"),
                         (["train", "--input", str(cleaned), "--output", str(tmp_path / "t"),
                           "--vocab-size", "10"], "too small")):
        result = subprocess.run([sys.executable, "-m", "tokenizer", *args], cwd=REPO, capture_output=True, text=True)
        lines = result.stderr.splitlines()
        assert result.returncode != 0 and len(lines) == 1 and needle in lines[0], result.stderr
    with pytest.raises(SystemExit) as stop:
        main(["train", "--input", str(tmp_path / "nothing"), "--output", str(tmp_path / "t"), "--vocab-size", "1000"])
    assert stop.value.code == 2
    assert not (tmp_path / "t").exists()


def test_hugging_face_export_gives_the_same_ids(tok_dir, tok, tmp_path):
    from tokenizers import Tokenizer as HFTokenizer

    assert main(["export-hf", str(tok_dir), "--output", str(tmp_path / "hf")]) == 0
    hf = HFTokenizer.from_file(str(tmp_path / "hf/tokenizer.json"))
    config = json.loads((tmp_path / "hf/tokenizer_config.json").read_text())
    assert config["eos_token"] == EOT_TOKEN and hf.token_to_id(EOT_TOKEN) == tok.eot_id
    for doc in corpus_documents():
        if "\u2581" in doc["text"]:
            continue  # the one character Hugging Face's Metaspace scheme cannot keep apart from a space
        assert hf.encode(doc["text"]).ids == tok.encode(doc["text"]), doc["id"]
        assert hf.decode(hf.encode(doc["text"]).ids) == doc["text"], doc["id"]


def test_small_vocabulary_with_many_scripts_lowers_character_coverage_instead_of_failing(cleaned, tmp_path):
    # 12 scripts need over 1200 distinct characters at coverage 0.9995: more than this vocabulary holds.
    meta = train(str(cleaned), str(tmp_path / "small"), TrainConfig(vocab_size=1200))
    used = meta["training"]["sentencepiece_options"]["character_coverage"]
    assert 0.98 <= used < 0.9995 and meta["vocab_size"] == 1200
    small = Tokenizer.load(str(tmp_path / "small"))
    for doc in corpus_documents():
        assert small.decode(small.encode(doc["text"])) == doc["text"], doc["id"]
