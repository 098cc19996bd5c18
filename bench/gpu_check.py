"""The prepared GPU check behind `bench/gpu.sh`: every part in its own process, under a global time budget.

    PYTHONPATH=. python3 -m bench.gpu_check --out DIR                      # GPT-2 124M on cuda, < 8 minutes
    PYTHONPATH=. python3 -m bench.gpu_check --out DIR --device cpu --preset tiny --block-size 32 \\
        --batch-size 4 --vocab-size 257 --steps 12 --log-interval 2 --resume-steps 3 --compile-backend eager

Parts, in order (`--parts` picks some):
  preflight       torch and device, the dense bf16 peak the GPU name implies, which SDPA backends run our layout
  shards          synthetic token shards written by the project's own writer (common.shard_format)
  train_compiled  `python -m train` (its own `main`, in process) with compile on: tokens/s over the steps after
  train_eager     --measure-from, MFU, peak memory, graph breaks; the same eager
  reference       our model against the nanoGPT-shaped reference in one process, alternating rounds: the ratio
  resume          2N steps straight against N + `--resume` N; steps 1..N of the two runs are the control for
                  the device's own nondeterminism

Each part runs in a child process with its own timeout (never past the global budget); its record goes to
DIR/results.jsonl before the next part starts, its output to DIR/logs/PART.log. A part that fails, hangs
or crashes is recorded as such and the run goes on. The last line on stdout is a one-line JSON summary
(also DIR/summary.json); the exit status is 0 only if every part passed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

PARTS = ("preflight", "shards", "train_compiled", "train_eager", "reference", "resume")
NEEDS_SHARDS = ("train_compiled", "train_eager", "reference", "resume")
# Seconds each part may take at most on one GPU (GPT-2 124M); the global budget caps them all.
PART_TIMEOUTS = {"preflight": 60, "shards": 60, "train_compiled": 180, "train_eager": 90, "reference": 180,
                 "resume": 150}
# Below this many seconds of budget a part is not started: it could not finish.
MIN_PART_S = 5
# Two runs that the device's nondeterminism makes differ drift further apart with every step; the resumed
# half is compared at later steps than the control half, so it may differ by this much more.
RESUME_NOISE_FACTOR = 10
RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/gpu.sh", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--out", required=True, help="directory for results.jsonl, summary.json, logs and runs")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts to run (default: all)")
    parser.add_argument("--budget-s", type=float, default=450, help="global time budget in seconds (default 450)")
    parser.add_argument("--timeout", action="append", default=[], metavar="PART=SECONDS",
                        help="override one part's timeout (repeatable)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--preset", default="gpt2")
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--vocab-size", type=int, default=50257)
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps of each train part")
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--measure-from", type=int, default=10, help="tokens/s counts the steps after this one")
    parser.add_argument("--train-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="extra `python -m train` config key for the train and resume parts (repeatable)")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend of the compiled parts; `eager` traces with dynamo (graph "
                             "breaks are real) but skips code generation, for quick CPU runs")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the reference part")
    parser.add_argument("--ref-steps", type=int, default=10, help="timed steps per round and model")
    parser.add_argument("--ref-compile", default="true", choices=["true", "false"])
    parser.add_argument("--loss-chunk", type=int, default=0,
                        help="reference part: also time our model with this loss_chunk (0: not)")
    parser.add_argument("--sdpa-backend", default="auto", help="reference part: our model's sdpa_backend")
    parser.add_argument("--no-bias", action="store_true", help="reference part: our model without biases")
    parser.add_argument("--resume-steps", type=int, default=20, help="N of the resume part (2N steps straight)")
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak for MFU (default: by device name)")
    parser.add_argument("--run-part", choices=PARTS, help=argparse.SUPPRESS)  # the child's side
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser


# ---- the parts (each runs in a child process and returns its record)

def device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else device


def peak_tflops(args) -> float | None:
    from train.mfu import peak_bf16_tflops

    return args.peak_tflops or (peak_bf16_tflops(device_name(args.device)) if args.device.startswith("cuda") else None)


def part_preflight(args) -> dict:
    import torch

    from model.gpt import PRESETS, sdpa_preflight

    shape = PRESETS[args.preset]
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    record = {"torch": torch.__version__, "device": device_name(args.device), "peak_bf16_tflops": peak_tflops(args),
              "sdpa": sdpa_preflight(args.device, dtype, shape["n_head"], shape["n_embd"] // shape["n_head"],
                                     seq=args.block_size, batch=args.batch_size)}
    if args.device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(args.device))
        record.update(cuda=torch.version.cuda, capability=f"{props.major}.{props.minor}",
                      memory_gib=round(props.total_memory / 2**30, 1), bf16=torch.cuda.is_bf16_supported())
    return record


def shard_dir(args) -> Path:
    return Path(args.out) / "shards"


def part_shards(args) -> dict:
    import common.shard_format as shard_format
    from bench.train_throughput import build_shards

    # enough windows that no run repeats one: the longest run is max(steps, 2 * resume steps) batches
    batches = max(args.steps, 2 * args.resume_steps) + 8
    path = build_shards(shard_dir(args), args.vocab_size, batches * args.batch_size * (args.block_size + 1))
    shards = shard_format.open_shards(path, "train")
    return {"writer": "common.shard_format.write_shard_dir", "path": str(path), "shards": len(shards),
            "tokens": sum(s.header.num_tokens for s in shards),
            "beam_imported": any(name.startswith("apache_beam") for name in sys.modules)}


def train_argv(args, run: Path, steps: int, compile_on: bool, log_interval: int, decay_steps: int) -> list[str]:
    argv = ["--data", str(shard_dir(args)), "--out", str(run), "--preset", args.preset,
            "--block_size", str(args.block_size), "--batch_size", str(args.batch_size), "--max_steps", str(steps),
            "--decay_steps", str(decay_steps), "--warmup_steps", "10", "--lr", "6e-4", "--min_lr", "6e-5",
            "--log_interval", str(log_interval), "--eval_interval", "0", "--ckpt_interval", "0",
            "--sample_interval", "0", "--compile", str(compile_on).lower(), "--device", args.device,
            "--dtype", args.dtype]
    for item in args.train_arg:
        key, _, value = item.partition("=")
        argv += [f"--{key}", value]
    return argv


def run_train(argv: list[str]) -> list[dict]:
    """`python -m train ARGV` through the command's own entry point; the metrics it logged."""
    from train.__main__ import main as train_main

    class _Tee(io.TextIOBase):   # the command's one-line error also goes into the part's record
        def __init__(self, stream):
            self.stream, self.lines = stream, io.StringIO()

        def write(self, text):
            self.lines.write(text)
            return self.stream.write(text)

        def flush(self):
            self.stream.flush()

    tee = _Tee(sys.stderr)
    with contextlib.redirect_stderr(tee):
        status = train_main(argv)
    if status != 0:
        said = [line for line in tee.lines.getvalue().splitlines() if line.strip()]
        raise RuntimeError(f"python -m train exited {status}: {said[-1] if said else '(no message)'}")
    run = Path(argv[argv.index("--out") + 1])
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def peak_memory_mib(device: str) -> dict:
    import torch

    if device.startswith("cuda"):
        return {"peak_allocated_mib": round(torch.cuda.max_memory_allocated() / 2**20),
                "peak_reserved_mib": round(torch.cuda.max_memory_reserved() / 2**20)}
    return {"peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def flops_per_token(args, vocab_size: int) -> int:
    import torch

    from model.gpt import GPT, GPTConfig

    with torch.device("meta"):
        model = GPT(GPTConfig.from_preset(args.preset, vocab_size=vocab_size, block_size=args.block_size))
    return model.flops_per_token()


def bind_compile_backend(backend: str) -> None:
    """`python -m train` has no key for the compile backend; bind it for this (child) process only."""
    import functools

    import torch

    if backend != "inductor":
        torch.compile = functools.partial(torch.compile, backend=backend)


def part_train(args, compile_on: bool) -> dict:
    from torch._dynamo.utils import counters

    from common.shard_format import load_manifest

    if compile_on:
        bind_compile_backend(args.compile_backend)
    counters.clear()
    run = Path(args.out) / "runs" / ("train_compiled" if compile_on else "train_eager")
    rows = run_train(train_argv(args, run, args.steps, compile_on, args.log_interval, args.steps))
    measured = [r for r in rows if r["step"] - args.log_interval >= args.measure_from]
    if not measured:
        raise RuntimeError(f"no logged interval starts at or after step {args.measure_from}; raise --steps")
    # intervals of equal length: the overall rate is the harmonic mean of their rates
    tokens_per_s = len(measured) / sum(1 / r["tokens_per_s"] for r in measured)
    first_measured = measured[0]["step"] - args.log_interval + 1
    record = {"compile": compile_on, "steps": rows[-1]["step"], "measured_steps": [first_measured, measured[-1]["step"]],
              "tokens_per_s": round(tokens_per_s), "final_train_loss": rows[-1]["train_loss"],
              **peak_memory_mib(args.device)}
    peak = peak_tflops(args)
    if peak:
        from train.mfu import mfu

        vocab_size = load_manifest(shard_dir(args))["vocab_size"]
        record["mfu"] = round(mfu(tokens_per_s, flops_per_token(args, vocab_size), peak), 4)
    if compile_on:
        breaks = counters["graph_break"]
        record.update(compile_backend=args.compile_backend, graph_breaks=sum(breaks.values()),
                      graph_break_reasons=[reason.strip().splitlines()[0][:200] for reason in list(breaks)[:5]],
                      graphs=counters["stats"]["unique_graphs"])
    return record


def part_reference(args) -> dict:
    import dataclasses
    import statistics
    from contextlib import nullcontext

    import torch

    from bench.nanogpt_reference import ReferenceGPT
    from bench.train_throughput import reference_batches, timed_steps
    from model.gpt import GPT, GPTConfig
    from common.shard_format import open_shards
    from train.data import TrainLoader

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.dtype == "bfloat16" else nullcontext()
    bind_compile_backend(args.compile_backend)
    compile_on = args.ref_compile == "true"
    loader = TrainLoader(shard_dir(args), args.block_size, args.batch_size, seed=0, device=device)
    config = GPTConfig.from_preset(args.preset, vocab_size=loader.vocab_size, block_size=args.block_size,
                                   bias=not args.no_bias, sdpa_backend=args.sdpa_backend)
    variants = {"ours": config}
    if args.loss_chunk:
        variants[f"ours_loss_chunk_{args.loss_chunk}"] = dataclasses.replace(config, loss_chunk=args.loss_chunk)
    contestants = {}
    for name, variant in variants.items():
        torch.manual_seed(0)
        model = GPT(variant).to(device)
        optimizer = model.configure_optimizer(0.1, 6e-4, (0.9, 0.95), device.type)
        contestants[name] = (torch.compile(model) if compile_on else model, optimizer, loader.next_batch)
    torch.manual_seed(0)
    # the same padded vocabulary, so both sides do the same arithmetic
    reference = ReferenceGPT(config.padded_vocab_size, args.block_size, config.n_layer, config.n_head,
                             config.n_embd).to(device)
    contestants["nanogpt"] = (torch.compile(reference) if compile_on else reference,
                              reference.optimizer(6e-4, 0.1, device.type),
                              reference_batches(open_shards(shard_dir(args), "train")[0], args.block_size,
                                                args.batch_size, device))
    memory = {}
    for name, (model, optimizer, next_batch) in contestants.items():
        if device.type == "cuda":
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        timed_steps(model, optimizer, next_batch, 3, autocast, device)  # warm-up and compilation
        if device.type == "cuda":
            memory[name] = round((torch.cuda.max_memory_allocated() - before) / 2**20)
    rates = {name: [] for name in contestants}
    for _ in range(args.rounds):
        for name, (model, optimizer, next_batch) in contestants.items():
            rates[name].append(timed_steps(model, optimizer, next_batch, args.ref_steps, autocast, device))
    record = {"compile": compile_on, "rounds": args.rounds, "steps_per_round": args.ref_steps,
              "tokens_per_s": {name: round(statistics.median(r)) for name, r in rates.items()},
              "rounds_tokens_per_s": {name: [round(x) for x in r] for name, r in rates.items()},
              # per-round ratios cancel load that drifts between rounds
              "ratio_vs_nanogpt": {name: round(statistics.median(a / b for a, b in zip(r, rates["nanogpt"])), 3)
                                   for name, r in rates.items() if name != "nanogpt"}}
    if memory:
        record["peak_step_memory_mib"] = memory
    peak = peak_tflops(args)
    if peak:
        from train.mfu import mfu

        flops = flops_per_token(args, loader.vocab_size)
        record["mfu"] = {name: round(mfu(statistics.median(r), flops, peak), 4) for name, r in rates.items()}
    return record


def part_resume(args) -> dict:
    runs = Path(args.out) / "runs"
    n = args.resume_steps
    straight = run_train(train_argv(args, runs / "resume_straight", 2 * n, False, 1, 2 * n))
    split = runs / "resume_split"
    first = run_train(train_argv(args, split, n, False, 1, 2 * n))
    both = run_train(["--data", str(shard_dir(args)), "--out", str(split), "--resume", "--max_steps", str(2 * n)])
    losses = {r["step"]: r["train_loss"] for r in straight}
    resumed = [r for r in both if r["step"] > n]
    if [r["step"] for r in resumed] != list(range(n + 1, 2 * n + 1)):
        raise RuntimeError(f"the resumed run logged steps {[r['step'] for r in resumed]}, not {n + 1}..{2 * n}")
    control = max(abs(r["train_loss"] - losses[r["step"]]) for r in first)
    drift = max(abs(r["train_loss"] - losses[r["step"]]) for r in resumed)
    return {"steps": [n, 2 * n], "control_max_abs_diff": control, "resume_max_abs_diff": drift,
            "control_exact": control == 0, "resume_exact": drift == 0,
            "resume_ok": drift <= RESUME_NOISE_FACTOR * control}


def run_child(args) -> int:
    if args.run_part in NEEDS_SHARDS and not (shard_dir(args) / "manifest.json").is_file():
        raise SystemExit("no shards: the shards part did not finish")
    functions = {"preflight": part_preflight, "shards": part_shards, "reference": part_reference,
                 "resume": part_resume, "train_compiled": lambda a: part_train(a, True),
                 "train_eager": lambda a: part_train(a, False)}
    record = functions[args.run_part](args)
    Path(args.result).write_text(json.dumps(record), encoding="utf-8")
    return 0


# ---- the orchestration (the parent process)

def error_line(path: Path) -> str:
    """The one line of a part's log that says why it failed: the command's own `error:` line, where it
    printed one (`python -m train` does), else the last line (a traceback's exception)."""
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [""])[-1][:300]


def run_part(part: str, argv: list[str], out: Path, timeout: float) -> dict:
    """Run one part in a child process (its own session, so a timeout ends its compile workers too)."""
    log, result = out / "logs" / f"{part}.log", out / "logs" / f"{part}.json"
    result.unlink(missing_ok=True)
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as log_file:
        child = subprocess.Popen([sys.executable, "-m", "bench.gpu_check", *argv, "--run-part", part,
                                  "--result", str(result)], stdout=log_file, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:
            status = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            status = None
    record = {"part": part, "seconds": round(time.monotonic() - started, 1)}
    if status is None:
        return {**record, "status": "timeout", "error": f"no result within {timeout:.0f} s"}
    if status != 0 or not result.is_file():
        return {**record, "status": "failed", "error": error_line(log) or f"exit status {status}"}
    return {**record, "status": "ok", **json.loads(result.read_text(encoding="utf-8"))}


def summarize(records: dict[str, dict], elapsed: float) -> dict:
    def value(part, key):
        return records.get(part, {}).get(key)

    summary = {"ok": bool(records) and all(r["status"] == "ok" for r in records.values()),
               "elapsed_s": round(elapsed, 1), "device": value("preflight", "device"),
               "parts": {part: r["status"] for part, r in records.items()},
               "tokens_per_s": {"compiled": value("train_compiled", "tokens_per_s"),
                                "eager": value("train_eager", "tokens_per_s")},
               "mfu": {"compiled": value("train_compiled", "mfu"), "eager": value("train_eager", "mfu")},
               "graph_breaks": value("train_compiled", "graph_breaks"),
               "ratio_vs_nanogpt": value("reference", "ratio_vs_nanogpt"),
               "resume_ok": value("resume", "resume_ok")}
    sdpa = value("preflight", "sdpa")
    if sdpa:
        summary["sdpa_ok"] = [name for name, verdict in sdpa.items() if verdict == "ok"]
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.run_part:
        return run_child(args)
    parts = [p for p in args.parts.split(",") if p]
    unknown = [p for p in parts if p not in PARTS]
    timeouts = dict(PART_TIMEOUTS)
    for item in args.timeout:
        part, _, seconds = item.partition("=")
        if part not in PARTS or not seconds.replace(".", "", 1).isdigit():
            parser.error(f"--timeout {item}: expected PART=SECONDS with PART one of {', '.join(PARTS)}")
        timeouts[part] = float(seconds)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PARTS)}")
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    (out / RESULTS_FILE).unlink(missing_ok=True)
    started = time.monotonic()
    records: dict[str, dict] = {}
    for part in parts:
        left = args.budget_s - (time.monotonic() - started)
        if left < MIN_PART_S:
            record = {"part": part, "status": "skipped", "error": f"global budget of {args.budget_s:.0f} s spent"}
        elif part in NEEDS_SHARDS and records.get("shards", {}).get("status", "ok") != "ok":
            record = {"part": part, "status": "skipped", "error": "no shards: the shards part did not pass"}
        else:
            record = run_part(part, argv, out, min(timeouts[part], left))
        records[part] = record
        with open(out / RESULTS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        why = f": {record['error']}" if "error" in record else ""
        print(f"{part}: {record['status']} ({record.get('seconds', 0)} s){why}", file=sys.stderr, flush=True)
    summary = summarize(records, time.monotonic() - started)
    (out / SUMMARY_FILE).write_text(json.dumps(summary) + "\n", encoding="utf-8")
    print(json.dumps(summary), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
