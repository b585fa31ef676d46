"""What the training stages share: params → TrainConfig file → torchrun → report.

A training stage's params section holds trainer settings (any `TrainConfig` field except the
paths, which the stage fixes to mirror dvc.yaml) plus `launch: {nproc_per_node, nnodes}`.
Checkpoints are a persistent DVC output: rerunning a killed stage resumes from its last
checkpoint, but only if that checkpoint's resume key (`dscoder.train.resume`: every setting
that changes the result, max_steps included, and the content hashes of the token files and of
the starting model) equals this run's; otherwise the folder is cleared and training starts
over. The launch (world size) is not part of the key: checkpoints reshard.

One run per checkpoint folder: the stage holds the folder's lock while it runs, refuses to
start while another stage or a trainer holds it, and starts torchrun so that it dies with the
stage (its ranks die with torchrun, see `dscoder.train.lock`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from dscoder.config import ConfigError
from dscoder.io import write_json
from dscoder.train import torchrun_command, torchrun_env
from dscoder.train.config import TrainConfig, config_from_dict
from dscoder.train.lock import STAGE_LOCK, TRAINER_LOCK, FolderInUse, FolderLock, die_with_parent, is_locked, read_holder
from dscoder.train.resume import changed_settings, checkpoint_key, latest_checkpoint, resume_key
from stages.common import Timer, write_report

PATH_FIELDS = ("tokens_dir", "checkpoint_dir", "metrics_dir", "export_dir", "tokenizer_dir", "summary_path", "run_name")


def split_launch(section: dict[str, Any] | None, stage: str) -> tuple[dict[str, Any], dict[str, int]]:
    """Trainer settings and launch settings (`launch: {nproc_per_node, nnodes}`) of a section."""
    section = dict(section or {})
    launch = dict(section.pop("launch", None) or {})
    unknown = set(launch) - {"nproc_per_node", "nnodes", "rdzv_endpoint"}
    if unknown:
        raise ConfigError(f"{stage}.launch.{sorted(unknown)[0]}: unknown parameter (known: nproc_per_node, nnodes, rdzv_endpoint)")
    for key in PATH_FIELDS:
        if key in section:
            raise ConfigError(f"{stage}.{key}: set by the stage (it mirrors dvc.yaml's deps/outs); remove it from params")
    return section, launch


def resume_decision(ckpt: Path, summary_path: Path, cfg: TrainConfig) -> tuple[bool, str]:
    """(resume?, why) for the checkpoints in `ckpt`.

    Resuming is for a run that was killed: a run that finished (its summary says so) is rerun
    by DVC only because something it depends on changed, so it starts over; so does a run
    whose resume key differs from the newest checkpoint's.
    """
    latest = latest_checkpoint(ckpt)
    if latest is None:
        return False, "no checkpoint to resume"
    if summary_path.exists() and json.loads(summary_path.read_text() or "{}").get("status") == "complete":
        return False, "the previous run finished"
    saved, key = checkpoint_key(latest), resume_key(cfg)
    if saved != key:
        return False, f"{latest.name} was made with other settings or inputs ({changed_settings(saved, key)})"
    return True, f"resuming from {latest.name}"


def clear_folder(folder: Path) -> None:
    """Remove everything in `folder` but its lock files."""
    for p in folder.iterdir() if folder.is_dir() else []:
        if p.name in (STAGE_LOCK, TRAINER_LOCK):
            continue
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def run_training(stage: str, section: dict[str, Any] | None, paths: dict[str, str],
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one training stage under torchrun; return the trainer's summary."""
    settings, launch = split_launch(section, stage)
    cfg = {**settings, **(extra or {}), **paths, "run_name": stage}
    nproc = int(launch.get("nproc_per_node", 1))
    nnodes = int(launch.get("nnodes", 1))
    try:  # fails fast, naming the field, before torch starts
        train_cfg = config_from_dict(cfg)
        train_cfg.validate(world_size=nproc * nnodes)
    except ValueError as e:
        raise ConfigError(f"{stage}: {e}") from e

    ckpt = Path(paths["checkpoint_dir"])
    try:
        lock = FolderLock(ckpt, STAGE_LOCK, owner=f"stage {stage}").acquire()
    except FolderInUse as e:
        raise RuntimeError(f"{stage}: {e}") from None
    try:
        if is_locked(ckpt / TRAINER_LOCK):  # a trainer that outlived its stage (another node, a manual run)
            raise RuntimeError(f"{stage}: {FolderLock(ckpt, TRAINER_LOCK).busy_message(read_holder(ckpt / TRAINER_LOCK))}")
        return launch_trainer(stage, cfg, train_cfg, ckpt, nproc, nnodes, launch.get("rdzv_endpoint"))
    finally:
        lock.release()


def launch_trainer(stage: str, cfg: dict[str, Any], train_cfg: TrainConfig, ckpt: Path, nproc: int, nnodes: int,
                   rdzv_endpoint: str | None) -> dict[str, Any]:
    """Resume or start over, then run torchrun (killed with this process) to the end."""
    summary_path = Path(cfg["summary_path"])
    resume, why = resume_decision(ckpt, summary_path, train_cfg)
    print(f"[{stage}] {why}" + ("" if resume else ": starting over"))
    if not resume:
        clear_folder(ckpt)
        if cfg.get("metrics_dir"):
            shutil.rmtree(cfg["metrics_dir"], ignore_errors=True)  # a fresh loss curve
    ckpt.mkdir(parents=True, exist_ok=True)
    cfg_path = ckpt / "train_config.json"
    write_json(cfg_path, cfg)
    summary_path.unlink(missing_ok=True)
    cmd = torchrun_command(cfg_path, nproc, nnodes, rdzv_endpoint=rdzv_endpoint)
    print(f"[{stage}] {' '.join(cmd)}")
    proc = subprocess.run(cmd, env=torchrun_env(nproc), preexec_fn=die_with_parent)
    if proc.returncode != 0:
        raise RuntimeError(f"{stage}: torchrun exited with code {proc.returncode}")
    summary = json.loads(summary_path.read_text())
    if summary.get("status") != "complete":
        raise RuntimeError(f"{stage}: training stopped before max_steps ({summary.get('status')}); rerun to resume")
    return summary


def training_report(stage: str, summary: dict[str, Any], timer: Timer, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    keep = ("steps", "tokens", "seq_len", "world_size", "device", "final_train_loss", "final_val_loss", "final_lr",
            "params", "tokens_per_sec", "mfu", "resumed_from")
    return write_report(stage, {**{k: summary.get(k) for k in keep}, **(extra or {})}, timer)
