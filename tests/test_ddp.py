"""Data-parallel training on CPU: two processes with the gloo backend, as torchrun would start them."""
import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.train_shards import write_byte_shards
from train.config import TrainConfig
from train.loop import train

CONFIG = dict(preset="tiny", block_size=32, grad_accum=4, max_steps=4, decay_steps=4, lr=3e-3, warmup_steps=1,
              log_interval=1,
              eval_interval=2, eval_steps=2, ckpt_interval=2, sample_interval=0, device="cpu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_worker(rank: int, world_size: int, port: int, shards: str, run_dir: str, out_dir: str) -> None:
    """Train 2 steps, stop, then resume to 4 (one process group for both, as a restarted job would have)."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo")
    train(TrainConfig(batch_size=2, **{**CONFIG, "max_steps": 2}), shards, run_dir)
    result = train(TrainConfig(batch_size=2, **CONFIG), shards, run_dir, resume=True)
    torch.save(result.model.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_two_cpu_ranks_agree_resume_and_match_one_process_with_the_same_global_batch(tmp_path):
    shards = write_byte_shards(tmp_path / "shards")
    mp.spawn(ddp_worker, args=(2, free_port(), str(shards), str(tmp_path / "ddp"), str(tmp_path)), nprocs=2,
             join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for name, tensor in ranks[0].items():
        assert torch.equal(tensor, ranks[1][name]), name

    # grad_accum counts micro-batches over all ranks: each of the 2 ranks runs 2 of the 4. Rank r takes
    # windows r, r+2, ... of the same permutation, so a step's four micro-batches of 2 are exactly the
    # single process's four: averaged gradients must give the same weights.
    torch.set_num_threads(1)
    single = train(TrainConfig(batch_size=2, **CONFIG), shards, tmp_path / "single").model.state_dict()
    for name, tensor in single.items():
        assert torch.allclose(tensor, ranks[0][name], atol=1e-5), name
    assert not torch.allclose(single["transformer.h.0.attn.c_attn.weight"],
                              train(TrainConfig(batch_size=2, **{**CONFIG, "grad_accum": 2}), shards,
                                    tmp_path / "half").model.state_dict()["transformer.h.0.attn.c_attn.weight"],
                              atol=1e-5)

    rows = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and "val_loss" in rows[1]
    assert sorted(os.listdir(tmp_path / "ddp" / "checkpoints")) == ["best.pt", "step-00000002.pt", "step-00000004.pt"]


def test_grad_accum_that_the_ranks_cannot_share_is_refused(tmp_path, monkeypatch):
    from train.loop import TrainError

    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(TrainError, match=r"grad_accum \(4\) must be a multiple of the number of processes \(3\)"):
        train(TrainConfig(batch_size=2, **CONFIG), tmp_path / "shards", tmp_path / "run")
