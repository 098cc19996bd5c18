"""The token shard format: encoding, reading back, dtype choice, manifest helpers and verification."""
import hashlib
import io
import json
import struct

import numpy as np
import pytest

from common.shard_format import (HEADER_BYTES, MANIFEST_NAME, Shard, ShardFormatError, load_manifest, locate_document,
                                 open_shards, token_dtype, verify_shard_dir, write_shard, write_shard_dir)

EOT = 1


def write_dir(directory, splits, vocab_size):
    return write_shard_dir(directory, splits, vocab_size, EOT, {"path": "tok", "model_sha256": "0" * 64})


@pytest.fixture
def shard_dir(tmp_path):
    return write_dir(tmp_path / "shards", {
        "val": [[[5, 6, EOT]]],
        "train": [[[10, 11, 12, EOT], [13, EOT]], [[999, 998, 997, EOT]]],
    }, vocab_size=1000)


def test_documents_read_back_through_the_index(shard_dir):
    train = open_shards(shard_dir, "train")
    assert [s.num_docs for s in train] == [2, 1]
    assert train[0].document(0).tolist() == [10, 11, 12, EOT] and train[0].document(1).tolist() == [13, EOT]
    assert train[1].document(0).tolist() == [999, 998, 997, EOT]
    assert train[0].tokens.dtype == np.dtype("<u2") and len(train[0]) == 6
    with pytest.raises(IndexError):
        train[0].document(2)


def test_header_layout_is_as_documented(shard_dir):
    raw = (shard_dir / "train-00000.bin").read_bytes()
    assert len(raw) == HEADER_BYTES + 6 * 2
    magic, version, token_bytes, vocab, num_tokens, num_docs = struct.unpack_from("<8sIIQQQ", raw)
    assert (magic, version, token_bytes, vocab, num_tokens, num_docs) == (b"GPTSHARD", 1, 2, 1000, 6, 2)
    idx = (shard_dir / "train-00000.idx").read_bytes()
    assert idx[:8] == b"GPTINDEX" and struct.unpack_from("<Q", idx, 16)[0] == 2
    assert np.frombuffer(idx[HEADER_BYTES:], "<u8").tolist() == [0, 4, 6]


def test_uint32_when_the_vocabulary_does_not_fit_uint16(tmp_path):
    assert token_dtype(65536) == np.dtype("<u2") and token_dtype(65537) == np.dtype("<u4")
    with open(tmp_path / "s.bin", "wb") as bin_file, open(tmp_path / "s.idx", "wb") as idx_file:
        write_shard([[70_000, 65_536, EOT], [65_535, EOT]], 70_001, bin_file, idx_file)
    shard = Shard(tmp_path / "s.bin")
    assert shard.header.token_bytes == 4 and shard.tokens.dtype == np.dtype("<u4")
    assert shard.document(0).tolist() == [70_000, 65_536, EOT] and shard.document(1).tolist() == [65_535, EOT]


@pytest.mark.parametrize("bad_id", [1000, 70_000, -1])
def test_an_id_outside_the_vocabulary_raises_instead_of_overflowing(bad_id):
    with pytest.raises(ValueError, match=str(bad_id)):
        write_shard([[1, 2], [bad_id, EOT]], 1000, io.BytesIO(), io.BytesIO())


def test_manifest_lists_train_then_val_with_totals(shard_dir):
    manifest = load_manifest(shard_dir)
    assert [(e["split"], e["number"]) for e in manifest["shards"]] == [("train", 0), ("train", 1), ("val", 0)]
    assert manifest["splits"]["train"] == {"shards": 2, "num_docs": 3, "num_tokens": 10}
    assert manifest["dtype"] == "uint16" and manifest["vocab_size"] == 1000 and manifest["eot_id"] == EOT
    assert locate_document(manifest, 2) == (manifest["shards"][1], 0)
    assert locate_document(manifest, 3) == (manifest["shards"][2], 0)
    with pytest.raises(IndexError, match="0 to 3"):
        locate_document(manifest, 4)


def test_verify_accepts_a_sound_directory(shard_dir):
    assert len(verify_shard_dir(shard_dir)["shards"]) == 3


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def test_verify_catches_a_flipped_token_byte(shard_dir):
    _flip_last_byte(shard_dir / "train-00001.bin")
    with pytest.raises(ShardFormatError, match=r"train-00001\.bin: sha256"):
        verify_shard_dir(shard_dir)


def test_verify_catches_a_truncated_shard(shard_dir):
    path = shard_dir / "train-00000.bin"
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(ShardFormatError, match=r"train-00000\.bin: size"):
        verify_shard_dir(shard_dir)
    path.write_bytes(b"GPTSHA")
    with pytest.raises(ShardFormatError, match="shorter than"):
        verify_shard_dir(shard_dir)


def test_verify_catches_a_wrong_index_even_with_a_matching_checksum(shard_dir):
    # Offsets [0, 4, 6] become [0, 5, 6]: a consistent-looking index that cuts documents in the wrong place.
    idx_path = shard_dir / "train-00000.idx"
    idx = bytearray(idx_path.read_bytes())
    struct.pack_into("<Q", idx, HEADER_BYTES + 8, 5)
    idx_path.write_bytes(bytes(idx))
    with pytest.raises(ShardFormatError, match=r"train-00000\.idx: sha256"):
        verify_shard_dir(shard_dir)
    manifest = json.loads((shard_dir / MANIFEST_NAME).read_text())
    manifest["shards"][0]["index_sha256"] = hashlib.sha256(bytes(idx)).hexdigest()
    (shard_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ShardFormatError, match=r"train-00000\.bin: a document does not end"):
        verify_shard_dir(shard_dir)
    struct.pack_into("<Q", idx, HEADER_BYTES + 8, 7)  # past the end of the tokens
    idx_path.write_bytes(bytes(idx))
    manifest["shards"][0]["index_sha256"] = hashlib.sha256(bytes(idx)).hexdigest()
    (shard_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ShardFormatError, match=r"train-00000\.idx: document offsets"):
        verify_shard_dir(shard_dir)


def test_verify_catches_a_missing_file_and_a_bad_manifest(shard_dir):
    (shard_dir / "val-00000.idx").unlink()
    with pytest.raises(ShardFormatError, match=r"val-00000\.idx: listed in the manifest but missing"):
        verify_shard_dir(shard_dir)
    (shard_dir / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ShardFormatError, match="not valid JSON"):
        verify_shard_dir(shard_dir)
    (shard_dir / MANIFEST_NAME).write_text(json.dumps({"shards": [{"split": "train"}]}))
    with pytest.raises(ShardFormatError, match="lacks file"):
        verify_shard_dir(shard_dir)


@pytest.mark.parametrize("change, message", [
    (lambda entry: entry.update(file="../outside.bin"), "file must be a file name inside the shard directory"),
    (lambda entry: entry.update(index="/etc/passwd"), "index must be a file name inside the shard directory"),
    (lambda entry: entry.update(num_tokens="12"), "num_tokens must be a non-negative integer"),
    (lambda entry: entry.update(num_docs=-1), "num_docs must be a non-negative integer"),
    (lambda entry: entry.update(split="test"), "split must be train or val"),
    (lambda entry: entry.update(sha256=None), "sha256 must be a string"),
])
def test_a_manifest_entry_of_the_wrong_type_or_outside_the_directory_is_refused(shard_dir, change, message):
    manifest = json.loads((shard_dir / MANIFEST_NAME).read_text())
    change(manifest["shards"][0])
    (shard_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ShardFormatError, match=f"shard entry 0: {message}"):
        load_manifest(shard_dir)


def test_a_manifest_that_is_not_utf8_is_refused(shard_dir):
    (shard_dir / MANIFEST_NAME).write_bytes(b'{"shards": [], "note": "\xff"}')
    with pytest.raises(ShardFormatError, match="not UTF-8"):
        load_manifest(shard_dir)


def test_a_manifest_vocab_size_that_is_not_an_integer_is_refused(shard_dir):
    manifest = json.loads((shard_dir / MANIFEST_NAME).read_text())
    manifest["vocab_size"] = "1000"
    (shard_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ShardFormatError, match="vocab_size must be an integer"):
        verify_shard_dir(shard_dir)
