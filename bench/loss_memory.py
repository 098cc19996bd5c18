"""Peak memory of the training loss's output layer: plain cross-entropy over all logits vs `loss_chunk`.

    PYTHONPATH=. python bench/loss_memory.py                      # CPU: 2 x 1024 rows, GPT-2's 50304 x 768 head
    PYTHONPATH=. python bench/loss_memory.py --device cuda --rows 16384 --dtype bfloat16

Each variant runs forward and backward of the output layer and loss alone, in a fresh process; the
figure is the peak memory above what the inputs and weights already hold (CPU: peak RSS; CUDA: peak
allocated). The hidden states, weight and targets are the same seeded tensors in both.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from model.gpt import chunked_loss


def peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(args) -> dict:
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(args.rows, args.width, generator=generator).to(device).requires_grad_()
    weight = (0.02 * torch.randn(args.vocab, args.width, generator=generator)).to(device).requires_grad_()
    targets = torch.randint(0, args.vocab, (args.rows,), generator=generator).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.dtype == "bfloat16" else nullcontext()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() / 2**20 if device.type == "cuda" else peak_mib(device)
    with autocast:
        if args.chunk:
            loss = chunked_loss(hidden, weight, targets, args.chunk)
        else:
            loss = F.cross_entropy(F.linear(hidden, weight), targets)
    loss.backward()
    return {"loss_chunk": args.chunk, "loss": loss.item(), "peak_above_inputs_mib": round(peak_mib(device) - before)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--rows", type=int, default=2048, help="batch_size * block_size")
    parser.add_argument("--vocab", type=int, default=50304)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--chunks", default="0,2048,512", help="loss_chunk values to compare (0: plain)")
    parser.add_argument("--chunk", type=int, help=argparse.SUPPRESS)  # one variant, in a child process
    args = parser.parse_args(argv)
    if args.chunk is not None:
        print(json.dumps(measure(args)))
        return 0
    shape = ["--device", args.device, "--dtype", args.dtype, "--rows", str(args.rows), "--vocab", str(args.vocab),
             "--width", str(args.width)]
    rows = []
    for chunk in (int(c) for c in args.chunks.split(",")):
        child = subprocess.run([sys.executable, __file__, *shape, "--chunk", str(chunk)], capture_output=True,
                               text=True, check=True)
        rows.append(json.loads(child.stdout))
    print(json.dumps({"device": args.device, "dtype": args.dtype, "rows": args.rows, "vocab": args.vocab,
                      "width": args.width, "variants": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
