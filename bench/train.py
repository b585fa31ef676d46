"""Trainer throughput next to a plain single-process PyTorch loop on the same model and data,
measured in the same run; both call the model with `use_cache=False` (no KV cache while
training), with the same next-token loss.

CPU (default): the tiny preset, one process, all cores; the trainer runs in-process (a one-rank gloo
group, FSDP2 wrapping and all), the peer is nanoGPT's loop with no wrapping. The figure beside
tokens/s is *not* MFU: a CPU has no data-sheet peak here, so it is the utilisation of the fp32
matmul FLOP/s this process reaches on the same cores, measured first ("matmul util.").

GPU (`--gpu`): the 1.3B preset (Table 2), seq 4096, a short run on one GPU with what the
training stages use there: FSDP2 (one rank), bf16 parameters and compute with fp32 master
weights and reductions; compile, activation checkpointing and the micro batch as
`presets/1.3b.yaml` configures them (flags override). Tokens/s per GPU and MFU against that
GPU's own dense bf16 data-sheet peak (the figure is called MFU only against such a peak, or
one given with `--peak`), told from its name and memory (`dscoder.train.metrics.gpu_peak`:
H100 SXM and H200 989 TFLOPS, H100 NVL 835, H100 PCIe 756, A100 312); the peer is a plain loop
on the same GPU (bf16 autocast, fused AdamW, compiled blocks alike, no AC). Run it on one GPU:
    python bench/train.py --gpu [--no-compile] [--no-ac] [--micro 4] [--steps 12]

    python bench/train.py                      # CPU, ~2-4 min on 2 shared cores
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, seconds: float = 2.0) -> float:
    """FLOP/s of a square matmul loop: the practical peak of this device and thread count."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t0, reps = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        if reps % 10 == 0:
            sync(device)
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_loop(cfg, device: torch.device, bf16: bool) -> float:
    """nanoGPT's loop on the same model, data, batch and optimizer: tokens/s of the median
    step after the first (this machine is shared: the median resists neighbours' bursts)."""
    from dscoder.model import build_model
    from dscoder.train.data import BatchStream, TokenBlocks, read_meta
    from dscoder.train.loop import model_config
    from dscoder.train.schedule import lr_at

    meta = read_meta(cfg.tokens_dir)
    config = model_config(cfg, int(meta["vocab_size"]))
    torch.manual_seed(cfg.seed)
    model = build_model(config, device=device)
    if cfg.compile:
        model.model.layers = torch.nn.ModuleList(torch.compile(b) for b in model.model.layers)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=device.type == "cuda",
    )
    stream = BatchStream(TokenBlocks(cfg.tokens_dir, "train", cfg.seq_len), cfg.global_batch_size, cfg.micro_batch_size, 0, 1, cfg.seed)
    accum = stream.grad_accum
    times = []
    for step in range(cfg.max_steps):
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, step)
        for batch in stream.next_step():
            x, y = batch["input_ids"].to(device), batch["labels"].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(input_ids=x, use_cache=False).logits  # as the trainer: no KV cache
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), y[:, 1:].flatten()) / accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        sync(device)
        times.append(time.perf_counter() - t0)
    return cfg.global_batch_size * cfg.seq_len / float(np.median(times[1:]))


def trainer_run(cfg) -> float:
    """The real trainer in this process (a one-rank group): tokens/s of its median step
    after the first, read back from its dvclive log."""
    import csv

    import torch.distributed as dist

    from dscoder.train.loop import train

    with tempfile.TemporaryDirectory() as metrics:
        try:
            train(dataclasses.replace(cfg, metrics_dir=metrics))
        finally:
            if dist.is_initialized():
                dist.destroy_process_group()
        tsv = Path(metrics) / "plots" / "metrics" / "tokens_per_sec.tsv"
        tps = [float(r["tokens_per_sec"]) for r in csv.DictReader(tsv.open(), delimiter="\t")]
    return float(np.median(tps[1:]))


def preset_pretrain(preset: str) -> dict:
    """The pretrain section of presets/<preset>.yaml ({} when there is none): the micro batch,
    compile and activation checkpointing the 1.3B run is configured with."""
    import yaml

    path = Path(__file__).resolve().parents[1] / "presets" / f"{preset}.yaml"
    return (yaml.safe_load(path.read_text()) or {}).get("pretrain", {}) if path.is_file() else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true", help="1.3B preset on one GPU, bf16")
    ap.add_argument("--preset", default=None, help="model preset (default: tiny on CPU, 1.3b on GPU)")
    ap.add_argument("--seq", type=int, default=None, help="sequence length (CPU 256, GPU 4096)")
    ap.add_argument("--micro", type=int, default=None, help="micro batch (CPU 4, GPU 4)")
    ap.add_argument("--accum", type=int, default=2, help="gradient accumulation steps")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps (CPU 12, GPU 12)")
    ap.add_argument("--vocab", type=int, default=None, help="vocabulary (CPU 8192, GPU 32256)")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="torch.compile each block (default: as presets/<preset>.yaml's pretrain section on GPU, off on CPU)")
    ap.add_argument("--ac", action=argparse.BooleanOptionalAction, default=None,
                    help="activation checkpointing (default: as presets/<preset>.yaml's pretrain section on GPU, off on CPU)")
    ap.add_argument("--peak", type=float, default=None,
                    help="peak FLOP/s per device (GPU default: its data sheet's dense bf16, giving MFU; CPU default: "
                         "the measured matmul rate, giving its utilisation)")
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each loop is kept")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    from dscoder.model import describe
    from dscoder.train import TrainSettings, write_token_dir
    from dscoder.train.loop import model_config
    from dscoder.train.metrics import gpu_peak

    gpu = args.gpu
    if gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu given but no GPU is visible")
    device = torch.device("cuda" if gpu else "cpu")
    preset = args.preset or ("1.3b" if gpu else "tiny")
    seq = args.seq or (4096 if gpu else 256)
    configured = preset_pretrain(preset) if gpu else {}
    micro = args.micro or int(configured.get("micro_batch_size", 4))
    steps = args.steps or 12
    vocab = args.vocab or (32256 if gpu else 8192)
    global_batch = micro * args.accum
    compile_blocks = bool(configured.get("compile", gpu)) if args.compile is None else args.compile
    ac = bool(configured.get("activation_checkpointing", False)) if args.ac is None else args.ac

    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        n_tokens = global_batch * seq * (steps + 1)
        write_token_dir(Path(tmp) / "tokens", train=rng.integers(0, vocab, n_tokens), val=rng.integers(0, vocab, seq * 2), vocab_size=vocab, seq_len=seq)
        cfg = TrainSettings(
            tokens_dir=str(Path(tmp) / "tokens"), model_preset=preset, seq_len=seq,
            global_batch_size=global_batch, micro_batch_size=micro, lr=3e-4, warmup_steps=2,
            max_steps=steps, eval_every=0, eval_sequences=0, checkpoint_every=0, log_every=max(1, steps // 3),
            device=device.type, compile=compile_blocks, activation_checkpointing=ac, shuffle=False,
        )
        config = model_config(cfg, vocab)
        from dscoder.model import flops_per_token

        fpt = flops_per_token(config, seq)
        if gpu:
            props = torch.cuda.get_device_properties(device)
            card, sheet = gpu_peak(props.name, props.total_memory)
            if not (args.peak or sheet):
                raise SystemExit(f"unknown GPU {props.name!r}: give its dense bf16 peak with --peak")
            peak, peak_what = (args.peak, "given") if args.peak else (sheet, f"{card} data sheet")
        else:  # the best of several short windows: neighbours on a shared machine only ever lower it
            measured = max(matmul_peak(device, torch.float32, 1024, seconds=0.5) for _ in range(6))
            peak, peak_what = args.peak or measured, "fp32 1024^2 matmul, best of 6 windows, measured now"
        print(f"model: {describe(config)}; {fpt / 1e6:.1f} MFLOP/token")
        print(f"batch {global_batch} x {seq} tokens ({micro} micro x {args.accum} accum), {steps} steps, "
              f"threads {torch.get_num_threads()}, device {torch.cuda.get_device_name() if gpu else 'cpu'}"
              + (f" ({torch.cuda.get_device_properties(device).total_memory / 2**30:.0f} GiB)" if gpu else ""))
        print(f"trainer: FSDP2 (1 rank), {'bf16 params + fp32 masters' if gpu else 'fp32'}, "
              f"compile {'on' if compile_blocks else 'off'}, activation checkpointing {'on' if ac else 'off'}"
              + (" (as presets/" + preset + ".yaml)" if configured else ""))
        print(f"peak: {peak / 1e12:.3f} TFLOP/s ({peak_what})\n")

        # The trainer logs MFU against cfg.peak_flops: only a data-sheet (or given) peak is one.
        cfg = dataclasses.replace(cfg, peak_flops=peak if gpu or args.peak else 0.0)
        # Alternate the two loops and keep each one's best round: neighbours on a shared
        # machine slow whichever runs at the time.
        best = {"trainer": 0.0, "plain": 0.0}
        for _ in range(args.rounds):
            if gpu:
                torch.cuda.reset_peak_memory_stats()
            best["trainer"] = max(best["trainer"], trainer_run(cfg))
            if gpu:
                mem = torch.cuda.max_memory_allocated() / 2**30
                torch.cuda.empty_cache()
            if not args.skip_plain:
                best["plain"] = max(best["plain"], plain_loop(cfg, device, bf16=gpu))
        trainer_name = "dscoder trainer (FSDP2, 1 rank)" + (f", peak mem {mem:.1f} GiB" if gpu else "")
        plain_name = "plain PyTorch loop (no wrapping" + (", bf16 autocast)" if gpu else ")")
        rows = [(trainer_name, best["trainer"])]
        if not args.skip_plain:
            rows.append((plain_name, best["plain"]))

    base = rows[-1][1]
    # MFU only against a data-sheet (or given) peak; against a measured matmul rate it is that rate's utilisation.
    util = "MFU" if gpu or args.peak else "matmul util."
    print(f"{'loop':<55} {'tokens/s/' + device.type.replace('cuda', 'GPU'):>12} {util:>12} {'vs plain':>9}")
    for name, tps in rows:
        print(f"{name:<55} {tps:>12,.0f} {fpt * tps / peak:>12.1%} {tps / base:>8.2f}x")
    if util != "MFU":
        print(f"{util} = model FLOP/s over the measured fp32 matmul rate above, not MFU (no data-sheet peak on CPU)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "preset": preset, "seq_len": seq, "global_batch": global_batch, "micro": micro, "steps": steps,
            "peak_flops": peak, "peak_source": peak_what, "flops_per_token": fpt,
            "rows": [{"loop": n, "tokens_per_sec": t, ("mfu" if util == "MFU" else "matmul_util"): fpt * t / peak}
                     for n, t in rows],
        }, indent=2))


if __name__ == "__main__":
    main()
