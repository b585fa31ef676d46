"""The training loop: one function, top to bottom (nanoGPT's shape, torchtitan's parts)."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import DTensor
from transformers import LlamaConfig

from dscoder.io import write_json
from dscoder.model import build_config, build_model, count_params, describe, flops_per_token, with_long_context
from dscoder.progress import make_bar
from dscoder.train.checkpoint import latest_checkpoint, load_checkpoint, read_metrics_rows, save_checkpoint
from dscoder.train.config import TrainSettings
from dscoder.train.data import IGNORE_INDEX, BatchStream, TokenBlocks, eval_batches, read_meta
from dscoder.train.export import export_hf
from dscoder.train.distributed import DistEnv, init_distributed, on_rank0
from dscoder.train.lock import TRAINER_LOCK, FolderLock
from dscoder.train.materialize import init_weights, load_hf_weights
from dscoder.train.metrics import MetricsLog, detect_peak_flops, mfu
from dscoder.train.parallelize import parallelize
from dscoder.train.resume import CheckpointMismatch, changed_settings, checkpoint_key, resume_key
from dscoder.train.schedule import lr_at


def model_config(cfg: TrainSettings, vocab_size: int) -> LlamaConfig:
    """The model's config: a preset sized to the token vocabulary, or `init_from`'s; then
    the long-context RoPE change when asked (Sec. 3.6)."""
    if cfg.init_from:
        config = LlamaConfig.from_pretrained(cfg.init_from)
        if config.vocab_size < vocab_size:
            raise ValueError(f"init_from vocab_size {config.vocab_size} < tokens vocab_size {vocab_size}")
    else:
        config = build_config(cfg.model_preset, vocab_size=vocab_size, **cfg.model_overrides)
    if cfg.rope_scaling_factor:
        config = with_long_context(config, factor=cfg.rope_scaling_factor, rope_theta=cfg.rope_theta or 10000.0)
    return config


def build_sharded_model(cfg: TrainSettings, config: LlamaConfig, env: DistEnv) -> torch.nn.Module:
    """The model built on the meta device (no memory), wrapped (AC, compile, FSDP2), then
    materialised shard by shard: each rank allocates only its shard and fills it with fresh
    weights (the same whatever the world size) or its rows of `init_from`'s safetensors."""
    model = build_model(config, device="meta")
    mesh = init_device_mesh(env.device.type, (env.world_size,))
    bf16 = cfg.mixed_precision == "bf16" or (cfg.mixed_precision == "auto" and env.device.type == "cuda")
    parallelize(
        model,
        mesh=mesh,
        # One rank holds every parameter anyway: resharding after forward would only add copies.
        reshard_after_forward=env.world_size > 1,
        activation_checkpointing=cfg.activation_checkpointing,
        compile=cfg.compile,
        param_dtype=torch.bfloat16 if bf16 else None,
    )
    model.to_empty(device=env.device)
    if cfg.init_from:
        load_hf_weights(model, cfg.init_from)
    else:
        init_weights(model, cfg.seed)
    return model


def build_optimizer(cfg: TrainSettings, model: torch.nn.Module, device: torch.device) -> torch.optim.AdamW:
    """AdamW (Sec. 3.4: betas 0.9, 0.95); weight decay on matrices only (nanoGPT's rule:
    norms are left alone)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # fused on GPU; elsewhere foreach, which batches the per-parameter DTensor dispatch.
    fused = device.type == "cuda"
    return torch.optim.AdamW(
        groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=fused, foreach=not fused
    )


def token_loss_sum(model: torch.nn.Module, batch: dict[str, torch.Tensor], device: torch.device) -> torch.Tensor:
    """Summed next-token cross-entropy over the targets of one micro batch (position t
    predicts token t+1; IGNORE_INDEX targets count nothing)."""
    ids = batch["input_ids"].to(device, non_blocking=True)
    labels = batch["labels"].to(device, non_blocking=True)
    logits = model(input_ids=ids, use_cache=False).logits  # no KV cache while training
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
    )


def n_targets(batches: list[dict[str, torch.Tensor]]) -> int:
    return sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in batches)


#: Summary fields that vary from run to run of the same training (wall times, speeds, where
#: it resumed from); kept out of the exported model's manifest.
VOLATILE = frozenset({"model_config", "tokens_per_sec", "mfu", "wall_time_s", "resumed_from"})


def all_sum(values: list[float], device: torch.device) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]], device: torch.device) -> float:
    """Mean validation loss per target token over all ranks."""
    model.eval()
    total = sum(float(token_loss_sum(model, b, device)) for b in batches)
    model.train()
    loss, count = all_sum([total, n_targets(batches)], device)
    return loss / max(count, 1)


def set_seeds(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resumable_key(cfg: TrainSettings, checkpoint: Path | None) -> dict[str, Any]:
    """This run's resume key; ValueError naming what changed when `checkpoint` was made
    with another (resuming it would silently give a different run)."""
    key = resume_key(cfg)
    if checkpoint is not None and checkpoint_key(checkpoint) != key:
        raise CheckpointMismatch(
            f"{checkpoint} was made with other settings or inputs "
            f"({changed_settings(checkpoint_key(checkpoint), key)}); not resuming it: "
            f"restore them, or remove {cfg.checkpoint_dir} to start over"
        )
    return key


def train(cfg: TrainSettings) -> dict[str, Any]:
    """Train (or resume) per `cfg`; export and summarise when max_steps is reached.
    Collective: every rank calls it. Returns the summary (also written to summary_path).
    Rank 0 holds the checkpoint folder's lock throughout: a second trainer on the same
    folder stops at once with the owner's pid."""
    cfg.validate()  # before joining the group: bad settings fail fast, in every rank
    if cfg.model_card and not Path(cfg.model_card).is_file():  # read at the export: missing, fail now
        raise ValueError(f"model_card {cfg.model_card!r} is not a file")
    meta = read_meta(cfg.tokens_dir)
    seq_len = cfg.seq_len or int(meta.get("seq_len", 0))
    if seq_len < 2:
        raise ValueError("seq_len is 0 and tokens_dir meta.json gives none")
    started = time.time()
    env = init_distributed(cfg.device)
    cfg.validate_batch(env.world_size)
    lock = FolderLock(cfg.checkpoint_dir, TRAINER_LOCK, owner=f"dscoder.train {cfg.run_name}") if cfg.checkpoint_dir else None
    try:
        on_rank0(lambda: lock and lock.acquire(), env)
        return run(cfg, env, meta, seq_len, started)
    finally:
        if lock is not None:
            lock.release()


def run(cfg: TrainSettings, env: DistEnv, meta: dict[str, Any], seq_len: int, started: float) -> dict[str, Any]:
    """The loop proper, inside a joined process group that owns the checkpoint folder."""
    log = print if env.is_main else (lambda *a, **k: None)

    config = model_config(cfg, int(meta["vocab_size"]))
    model = build_sharded_model(cfg, config, env)
    optimizer = build_optimizer(cfg, model, env.device)
    train_blocks = TokenBlocks(cfg.tokens_dir, "train", seq_len, loss_mask=cfg.loss_mask)
    stream = BatchStream(
        train_blocks, cfg.global_batch_size, cfg.micro_batch_size, env.rank, env.world_size, cfg.seed, cfg.shuffle
    )
    val_batches: list[dict[str, torch.Tensor]] = []
    val_file = Path(cfg.tokens_dir) / "val.bin"
    if cfg.eval_sequences and val_file.is_file() and val_file.stat().st_size > 0:  # a tiny corpus may hold out nothing
        val_blocks = TokenBlocks(cfg.tokens_dir, "val", seq_len, loss_mask=cfg.loss_mask)
        val_batches = eval_batches(val_blocks, cfg.eval_sequences, cfg.micro_batch_size, env.rank, env.world_size)

    set_seeds(cfg.seed + env.rank)
    step, last = 0, {}  # last: the newest step's metrics
    resumed_from = latest_checkpoint(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    key = on_rank0(lambda: resumable_key(cfg, resumed_from), env)
    rows: list[dict[str, Any]] = []
    if resumed_from is not None:
        state = load_checkpoint(resumed_from, model, optimizer)
        step = int(state["step"])
        stream.load_state_dict(state["data"])
        if state.get("train_loss") is not None:
            last["train/loss"] = state["train_loss"]
        rows = [r for r in read_metrics_rows(resumed_from) if r["step"] <= step] if env.is_main else []
        log(f"[train] resumed from {resumed_from} at step {step} (world size {state['world_size']} -> "
            f"{env.world_size})", flush=True)
    metrics = MetricsLog(cfg.metrics_dir, enabled=env.is_main, rows=rows)

    peak = cfg.peak_flops or detect_peak_flops(env.device)
    fpt = flops_per_token(config, seq_len)
    tokens_per_step = cfg.global_batch_size * seq_len
    log(f"[train] {cfg.run_name}: {describe(config)}; world {env.world_size} on {env.device.type}, "
        f"grad accum {stream.grad_accum}, {tokens_per_step} tokens/step, steps {step}->{cfg.max_steps}", flush=True)

    def checkpoint(at: int) -> None:
        """Save, then rewrite the curve: on disk it never runs ahead of the newest checkpoint."""
        if cfg.checkpoint_dir:
            save_checkpoint(
                cfg.checkpoint_dir, at, model, optimizer,
                trainer_state={
                    "data": stream.state_dict(), "tokens_seen": at * tokens_per_step, "train_loss": last.get("train/loss"),
                    "resume_key": key,
                },
                config=cfg.to_dict(), metrics_rows=metrics.rows, keep=cfg.keep_checkpoints,
            )
        metrics.write()

    # rank 0, on a terminal only (dscoder.progress): steps with loss and tokens/s
    bar = make_bar(cfg.max_steps, unit="step", desc=cfg.run_name or "train", initial=step) if env.is_main else None
    if bar is not None:
        def log(*parts: Any, **_: Any) -> None:  # lines above the bar, not through it
            bar.write(" ".join(map(str, parts)))
    val_loss = float("nan")
    steps_timed, time_in_steps, stopped, warm = 0, 0.0, False, False
    while step < cfg.max_steps:
        t0 = time.perf_counter()
        lr = lr_at(cfg, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        micro_batches = stream.next_step()
        # Normalise by the targets of the whole global batch, so every token weighs the same
        # however the batch is split over micro batches, ranks and masks.
        (global_targets,) = all_sum([n_targets(micro_batches)], env.device)
        loss_sum = torch.zeros((), device=env.device)
        for batch in micro_batches:
            loss = token_loss_sum(model, batch, env.device) / max(global_targets, 1.0)
            # FSDP averages gradients over ranks; scaling by the world size makes that a sum.
            (loss * env.world_size).backward()
            loss_sum += loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or math.inf, foreach=True)
        if isinstance(grad_norm, DTensor):
            grad_norm = grad_norm.full_tensor()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        (train_loss,) = all_sum([float(loss_sum)], env.device)  # also syncs the device
        step += 1
        dt = time.perf_counter() - t0
        if warm:  # a process's first step pays for allocation and compilation: not timed
            steps_timed, time_in_steps = steps_timed + 1, time_in_steps + dt
        warm = True
        tps = tokens_per_step / dt
        last = {
            "train/loss": train_loss,
            "lr": lr,
            "grad_norm": float(grad_norm),
            "tokens_per_sec": tps,
            "tokens_per_sec_per_device": tps / env.world_size,
            "tokens_seen": float(step * tokens_per_step),
        }
        if peak:
            last["mfu"] = mfu(fpt, tps / env.world_size, peak)
        if val_batches and (step == cfg.max_steps or (cfg.eval_every and step % cfg.eval_every == 0)):
            val_loss = evaluate(model, val_batches, env.device)
            last["val/loss"] = val_loss
        metrics.log(step, last)
        if bar is not None:
            bar.set_postfix({"loss": f"{train_loss:.4f}", "tok/s": f"{tps:,.0f}"}, refresh=False)
            bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            log(f"[train] step {step}/{cfg.max_steps} " + " ".join(f"{k}={v:.4g}" for k, v in last.items()), flush=True)
        if step == cfg.max_steps or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
            checkpoint(step)
        if cfg.stop_after_step and step == cfg.stop_after_step and step < cfg.max_steps:
            stopped = True
            log(f"[train] stop_after_step={step}: leaving the loop", flush=True)
            break

    if bar is not None:
        bar.close()
    if val_batches and not stopped and "val/loss" not in last:  # resumed at the end, no step ran: score anyway
        val_loss = evaluate(model, val_batches, env.device)
    tok_s = tokens_per_step * steps_timed / time_in_steps if time_in_steps else 0.0
    summary = {
        "run_name": cfg.run_name,
        "status": "stopped" if stopped else "complete",
        "steps": step,
        "max_steps": cfg.max_steps,
        "tokens": step * tokens_per_step,
        "seq_len": seq_len,
        "world_size": env.world_size,
        "device": env.device.type,
        "final_train_loss": last.get("train/loss"),
        "final_val_loss": val_loss if val_batches else None,
        "final_lr": last.get("lr"),
        "resumed_from": str(resumed_from) if resumed_from else None,
        "params": count_params(config)["total"],
        "flops_per_token": fpt,
        "tokens_per_sec": tok_s,
        "mfu": mfu(fpt, tok_s / env.world_size, peak) if peak else None,
        "peak_flops": peak or None,
        "wall_time_s": time.time() - started,
        "model_config": config.to_dict(),
    }
    if not stopped and cfg.export_dir:
        export_hf(
            model, config, cfg.export_dir, dtype=cfg.export_dtype, tokenizer_dir=cfg.tokenizer_dir or None,
            # the manifest holds what made the model, not how fast: same inputs, same bytes
            train_config=cfg.to_dict(), manifest={k: v for k, v in summary.items() if k not in VOLATILE},
            card=json.loads(Path(cfg.model_card).read_text()) if cfg.model_card else None,
        )
    if not stopped:
        metrics.write()
    if env.is_main and cfg.summary_path:
        write_json(cfg.summary_path, summary)
    return summary
