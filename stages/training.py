"""What the training stages share: params → TrainConfig file → torchrun → report.

A training stage's params section holds trainer settings (any `TrainConfig` field except the
paths, which the stage fixes to mirror dvc.yaml) plus `launch: {nproc_per_node, nnodes}`.
Checkpoints are a persistent DVC output: rerunning a killed stage resumes from its last
checkpoint, but only if the checkpoint was made with the same settings; otherwise the stale
checkpoints are cleared and training starts over.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from dscoder.config import ConfigError
from dscoder.io import write_json
from dscoder.train import torchrun_command, torchrun_env
from dscoder.train.config import config_from_dict
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


def fingerprint(cfg: dict[str, Any]) -> str:
    """What a checkpoint must have been made with to be resumed: every setting but the step
    budget, plus the identity of the data and of the starting model."""
    ident = {k: v for k, v in cfg.items() if k != "max_steps"}
    for key, name in (("tokens_dir", "meta.json"), ("init_from", "config.json"), ("init_from", "manifest.json")):
        f = Path(str(cfg.get(key) or "")) / name
        if cfg.get(key) and f.is_file():
            ident[f"{key}/{name}"] = hashlib.sha256(f.read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def stale_checkpoints(ckpt: Path, summary_path: Path, want: str) -> str | None:
    """Why the checkpoints in `ckpt` must not be resumed, or None to resume them.

    Resuming is for a run that was killed: a run that finished (its summary exists) is rerun
    by DVC only because something it depends on changed, so it starts over; so does a run
    whose settings, data or starting model differ from the checkpoints'.
    """
    if not ckpt.exists():
        return None
    stamp = ckpt / "settings.sha256"
    if not stamp.exists() or stamp.read_text().strip() != want:
        return "settings, data or starting model changed since the last checkpoint"
    if summary_path.exists() and json.loads(summary_path.read_text() or "{}").get("status") == "complete":
        return "the previous run finished"
    return None


def run_training(stage: str, section: dict[str, Any] | None, paths: dict[str, str],
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one training stage under torchrun; return the trainer's summary."""
    settings, launch = split_launch(section, stage)
    cfg = {**settings, **(extra or {}), **paths, "run_name": stage}
    nproc = int(launch.get("nproc_per_node", 1))
    nnodes = int(launch.get("nnodes", 1))
    try:  # fails fast, naming the field, before torch starts
        config_from_dict(cfg).validate(world_size=nproc * nnodes)
    except ValueError as e:
        raise ConfigError(f"{stage}: {e}") from e

    ckpt = Path(paths["checkpoint_dir"])
    summary_path = Path(paths["summary_path"])
    reason = stale_checkpoints(ckpt, summary_path, fingerprint(cfg))
    if reason:
        print(f"[{stage}] {reason}: starting over")
        shutil.rmtree(ckpt, ignore_errors=True)
        if paths.get("metrics_dir"):
            shutil.rmtree(paths["metrics_dir"], ignore_errors=True)  # a fresh loss curve
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / "settings.sha256").write_text(fingerprint(cfg) + "\n")
    cfg_path = ckpt / "train_config.json"
    write_json(cfg_path, cfg)
    summary_path.unlink(missing_ok=True)
    cmd = torchrun_command(cfg_path, nproc, nnodes, rdzv_endpoint=launch.get("rdzv_endpoint"))
    print(f"[{stage}] {' '.join(cmd)}")
    proc = subprocess.run(cmd, env=torchrun_env(nproc))
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
