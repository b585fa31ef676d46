"""When a checkpoint may be resumed: which checkpoints are complete, and what they were made with.

A checkpoint is resumed only by a run whose *resume key* equals the one saved in its manifest:
every setting that changes the trained weights or the logged curve (the step budget, which the
schedule is laid out over, included), the content hash of the token files and, with
`init_from`, of the starting model. Settings that cannot change the result (`NEUTRAL`) and the
paths of the outputs are left out; so are the world size and the micro batch (how the
global batch is split), since checkpoints reshard: a run resumed on another layout agrees with
an uninterrupted one to float tolerance, not bit for bit.

No torch import: the stage layer decides before it starts torchrun.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from dscoder.train.config import TrainSettings

_STEP_DIR = re.compile(r"^step-(\d{6,})$")

#: Settings that change neither the weights nor the metrics: how often to print, keep or save
#: (a resume is bitwise equal to an uninterrupted run), where outputs go, the export's dtype.
NEUTRAL = frozenset({
    "log_every", "stop_after_step", "keep_checkpoints", "checkpoint_every", "checkpoint_dir", "metrics_dir",
    "export_dir", "export_dtype", "tokenizer_dir", "summary_path", "run_name",
    "model_card",  # what the card says (the revision included) never blocks a resume
    "micro_batch_size",  # the split of the global batch, like the world size: float tolerance only
})

#: Files a token directory's content is read from when it carries no manifest.
TOKEN_FILES = ("meta.json", "train.bin", "val.bin", "train.mask.bin", "val.mask.bin")


class CheckpointMismatch(ValueError):
    """The newest checkpoint was made with other settings or inputs than this run's."""


def complete_checkpoints(checkpoint_dir: str | Path) -> list[Path]:
    """Complete checkpoints (those with a manifest), oldest first."""
    root = Path(checkpoint_dir)
    found = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / "manifest.json").is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: int(_STEP_DIR.match(p.name).group(1)))


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    done = complete_checkpoints(checkpoint_dir)
    return done[-1] if done else None


def sha256_file(path: str | Path) -> str:
    """sha256 of one file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_manifest(directory: str | Path) -> dict[str, Any]:
    """`{"files": {name: sha256}}` of a directory's regular files (but a manifest.json): what
    a token directory or an exported model carries, written last."""
    files = sorted(p for p in Path(directory).iterdir() if p.is_file() and p.name != "manifest.json")
    return {"files": {p.name: sha256_file(p) for p in files}}


def content_hash(directory: str | Path, names: tuple[str, ...] | None = None) -> str:
    """sha256 of a directory's content: of its `manifest.json` when that lists the sha256 of
    every file (pack's token directories, dscoder's exported models), else of the files
    themselves (`names`, or every regular file), streamed."""
    directory = Path(directory)
    manifest = directory / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text() or "{}")
        if isinstance(data, dict) and isinstance(data.get("files"), dict) and data["files"]:
            return "manifest:" + hashlib.sha256(manifest.read_bytes()).hexdigest()
    if names is None:
        paths = sorted(p for p in directory.iterdir() if p.is_file())
    else:
        paths = [directory / n for n in names if (directory / n).is_file()]
    listing = {p.name: sha256_file(p) for p in paths}
    return "files:" + hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()


def resume_key(cfg: TrainSettings) -> dict[str, Any]:
    """What a checkpoint must have been made with to be resumed by `cfg` (JSON-able)."""
    key = {k: v for k, v in cfg.to_dict().items() if k not in NEUTRAL}
    key["tokens_dir"] = content_hash(cfg.tokens_dir, TOKEN_FILES)
    if cfg.init_from:
        key["init_from"] = content_hash(cfg.init_from)
    return json.loads(json.dumps(key, sort_keys=True))  # as a manifest reads it back


def changed_settings(saved: dict[str, Any] | None, current: dict[str, Any]) -> str:
    """`name: old -> new` for each setting that differs ('' when none), for messages."""
    if saved is None:
        return "the checkpoint records no settings"
    names = sorted(set(saved) | set(current))
    return ", ".join(f"{n}: {saved.get(n)!r} -> {current.get(n)!r}" for n in names if saved.get(n) != current.get(n))


def checkpoint_key(checkpoint: str | Path) -> dict[str, Any] | None:
    """The resume key saved in a checkpoint's manifest (None for one saved without)."""
    return json.loads((Path(checkpoint) / "manifest.json").read_text()).get("resume_key")
