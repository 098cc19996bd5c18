import numpy as np
import pytest
import torch

from common.shard_format import open_shards, write_shard_dir
from tests.train_shards import BYTE_EOT, BYTE_VOCAB, byte_documents, write_byte_shards
from train.data import DataError, TrainLoader, ValLoader

BLOCK = 64


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_byte_shards(tmp_path_factory.mktemp("byte-shards"), train_shards=3)


def epoch_windows(loader: TrainLoader) -> list[int]:
    windows = []
    while True:
        epoch = loader.epoch
        windows += loader.next_windows()
        if loader.epoch != epoch:
            return windows


def test_batches_are_shard_tokens_shifted_by_one(shards):
    loader = TrainLoader(shards, BLOCK, batch_size=8, seed=3)
    tokens = np.concatenate([np.asarray(s.tokens) for s in open_shards(shards, "train")])
    starts = {}
    for shard_no, shard in enumerate(loader.index.shards):
        offset = sum(len(s) for s in loader.index.shards[:shard_no])
        first = int(loader.index.first_window[shard_no])
        for w in range(first, int(loader.index.first_window[shard_no + 1])):
            starts[w] = offset + (w - first) * BLOCK
    state = loader.state_dict()
    windows = loader.next_windows()
    loader.load_state_dict(state)
    x, y = loader.next_batch()
    assert x.shape == y.shape == (8, BLOCK) and x.dtype == torch.int64
    for row, window in enumerate(windows):
        expected = torch.from_numpy(tokens[starts[window]:starts[window] + BLOCK + 1].astype(np.int64))
        assert torch.equal(x[row], expected[:-1]) and torch.equal(y[row], expected[1:])


def test_shards_are_memory_mapped_not_loaded(shards):
    loader = TrainLoader(shards, BLOCK, batch_size=4, seed=0)
    assert all(isinstance(s.tokens, np.memmap) for s in loader.index.shards)


def test_an_epoch_visits_every_window_once_and_every_token_is_a_target_once(shards):
    loader = TrainLoader(shards, BLOCK, batch_size=7, seed=1)
    windows = epoch_windows(loader)
    first_epoch = windows[:len(loader.index)]
    assert sorted(first_epoch) == list(range(len(loader.index)))
    # windows overlap by exactly one token: shard k's windows cover its tokens 1 .. windows*BLOCK as targets
    for shard_no, shard in enumerate(loader.index.shards):
        count = int(loader.index.first_window[shard_no + 1] - loader.index.first_window[shard_no])
        assert count == (len(shard) - 1) // BLOCK
    # the next epoch is a different order of the same windows
    second = TrainLoader(shards, BLOCK, batch_size=len(loader.index), seed=1)
    second.next_windows()
    assert sorted(second.next_windows()) == list(range(len(loader.index)))


def test_two_ranks_never_see_the_same_window(shards):
    ranks = [TrainLoader(shards, BLOCK, batch_size=5, seed=7, rank=r, world_size=2) for r in range(2)]
    seen = [epoch_windows(loader)[:loader.windows_per_rank] for loader in ranks]
    assert len(seen[0]) == len(seen[1]) == len(ranks[0].index) // 2
    assert not set(seen[0]) & set(seen[1])
    assert len(set(seen[0])) == len(seen[0])


def test_seed_changes_the_order_and_the_same_seed_repeats_it(shards):
    a, b, c = (TrainLoader(shards, BLOCK, batch_size=16, seed=s) for s in (1, 1, 2))
    assert a.next_windows() == b.next_windows() != c.next_windows()


def test_resumed_loader_continues_with_the_same_batches(shards):
    loader = TrainLoader(shards, BLOCK, batch_size=9, seed=5)
    while loader.epoch == 0:  # resume from inside the second epoch
        loader.next_windows()
    loader.next_batch()
    state = loader.state_dict()
    expected = [loader.next_batch() for _ in range(5)]
    resumed = TrainLoader(shards, BLOCK, batch_size=9, seed=5)
    resumed.load_state_dict(state)
    assert state["epoch"] >= 1
    for (x, y), (rx, ry) in zip(expected, (resumed.next_batch() for _ in range(5))):
        assert torch.equal(x, rx) and torch.equal(y, ry)


def test_resuming_with_another_seed_or_world_size_is_refused(shards):
    state = TrainLoader(shards, BLOCK, batch_size=4, seed=5).state_dict()
    with pytest.raises(DataError, match="seed"):
        TrainLoader(shards, BLOCK, batch_size=4, seed=6).load_state_dict(state)
    with pytest.raises(DataError, match="world_size"):
        TrainLoader(shards, BLOCK, batch_size=4, seed=5, rank=1, world_size=2).load_state_dict(state)


def test_validation_batches_are_fixed_and_come_from_val_shards(shards):
    val = ValLoader(shards, BLOCK, batch_size=4, num_batches=3)
    first, second = list(val), list(val)
    assert len(first) == 3
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, second))
    val_tokens = np.asarray(open_shards(shards, "val")[0].tokens).astype(np.int64)
    x, y = first[0]
    assert torch.equal(x[0], torch.from_numpy(val_tokens[:BLOCK]))
    assert torch.equal(y[1], torch.from_numpy(val_tokens[BLOCK + 1:2 * BLOCK + 1]))
    halves = [np.asarray(ValLoader(shards, BLOCK, 4, 3, rank=r, world_size=2).windows) for r in range(2)]
    assert not set(halves[0]) & set(halves[1])


def test_too_little_data_is_a_clear_error(tmp_path):
    write_shard_dir(tmp_path, {"train": [[byte_documents()[0][:50] + [BYTE_EOT]]]}, BYTE_VOCAB, BYTE_EOT)
    with pytest.raises(DataError, match="training windows"):
        TrainLoader(tmp_path, 64, batch_size=4, seed=0)
    val = ValLoader(tmp_path, 64, 4, 2)
    assert not val and val.why_empty() == "the shards have no val split"


def test_a_block_size_larger_than_the_val_split_is_named_with_both_numbers(shards):
    val_tokens = len(open_shards(shards, "val")[0])
    val = ValLoader(shards, val_tokens, batch_size=4, num_batches=1)
    assert not val
    assert val.why_empty() == (f"block_size {val_tokens} is larger than the val split allows: a window needs "
                               f"{val_tokens + 1} tokens and its longest shard holds {val_tokens}")


def shards_with_an_id_past_the_vocabulary(directory, header_vocab: int, manifest_vocab: int):
    """Byte shards holding token id 300 while headers and manifest claim a smaller vocabulary (as a
    tokenizer swapped behind the shards' back would leave them)."""
    import json
    import struct

    docs = byte_documents()
    docs[3] = docs[3][:-1] + [300, BYTE_EOT]
    write_shard_dir(directory, {"train": [docs[1:], ], "val": [docs[:1]]}, 512, BYTE_EOT)
    for path in directory.glob("*.bin"):
        raw = bytearray(path.read_bytes())
        struct.pack_into("<Q", raw, 16, header_vocab)
        path.write_bytes(bytes(raw))
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["vocab_size"] = manifest_vocab
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def test_a_token_id_past_the_vocabulary_is_refused_naming_the_shard(tmp_path):
    data = shards_with_an_id_past_the_vocabulary(tmp_path, header_vocab=BYTE_VOCAB, manifest_vocab=BYTE_VOCAB)
    with pytest.raises(DataError, match=r"train-00000\.bin holds token id 300.*vocabulary of 257") as info:
        TrainLoader(data, BLOCK, batch_size=4, seed=0)
    assert "\n" not in str(info.value)


def test_shard_headers_must_agree_with_the_manifest_vocabulary(tmp_path):
    data = shards_with_an_id_past_the_vocabulary(tmp_path, header_vocab=512, manifest_vocab=BYTE_VOCAB)
    with pytest.raises(DataError, match="vocab_size 512.*manifest says 257"):
        TrainLoader(data, BLOCK, batch_size=4, seed=0)
    with pytest.raises(DataError, match="vocab_size 512.*manifest says 257"):
        ValLoader(data, BLOCK, batch_size=4, num_batches=1)
