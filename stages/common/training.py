"""What the training stages share: params → TrainSettings file → torchrun → report.

A training stage's params section is a typed section (`TrainingSettings`, or a stage's subclass
adding its own settings): trainer settings (any `TrainSettings` field except the paths, which
the stage fixes to mirror dvc.yaml) plus `launch: {nproc_per_node, nnodes, rdzv_endpoint}`.
Checkpoints are a persistent DVC output: rerunning a killed stage resumes from its last
checkpoint, but only if that checkpoint's resume key (`dscoder.train.resume`: every setting
that changes the result, max_steps included, and the content hashes of the token files and of
the starting model) equals this run's; otherwise the folder is cleared and training starts
over. The launch (world size) is not part of the key: checkpoints reshard.

One run per checkpoint folder: the stage holds the folder's lock while it runs, refuses to
start while another stage or a trainer holds it, and starts torchrun so that it dies with the
stage (its ranks die with torchrun, see `dscoder.train.lock`).

While torchrun runs, the stage (not the ranks: they never talk to Prefect) watches the loss
curve the trainer rewrites with each checkpoint (`<metrics_dir>/metrics.json`, written last)
and publishes it to the stage's flow run: a markdown artifact `<stage>-loss` (the curve so
far: train loss, validation loss where evaluated, lr, tokens/s) updated at each checkpoint,
and the progress artifact `<stage>-progress` (steps of max_steps). The trainer draws its own
tqdm bar on a terminal (rank 0).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Self

from dscoder.config import ConfigError, Settings, renamed
from dscoder.io import write_json
from dscoder.paths import Paths, Ref, report_refs
from dscoder.train import torchrun_command, torchrun_env
from dscoder.train.config import TrainSettings
from dscoder.train.lock import STAGE_LOCK, TRAINER_LOCK, FolderInUse, FolderLock, die_with_parent, is_locked, read_holder
from dscoder.train.resume import changed_settings, checkpoint_key, latest_checkpoint, resume_key
from stages.common import Timer, load_params, load_paths, run_flow, stage_args, write_report
from stages.common.progress import Progress, artifact_key, run_ids

PATH_FIELDS = ("tokens_dir", "checkpoint_dir", "metrics_dir", "export_dir", "tokenizer_dir", "summary_path", "run_name",
               "model_card")
CARD_FACTS = "model_card.json"
"""The stage's model card facts (`stages.common.model_card.card_facts`) in the checkpoint folder: the
trainer's `model_card`, rendered by the export into README.md; never part of the resume key."""


@dataclass(frozen=True, kw_only=True)
class LaunchSettings(Settings):
    """How torchrun starts the trainer (a training stage's `launch:`); not part of the resume key."""

    section: ClassVar[str] = "launch"

    nproc_per_node: int = 1
    """Trainer processes (ranks) per node."""
    nnodes: int = 1
    """Nodes of the run."""
    rdzv_endpoint: str | None = None
    """torchrun's rendezvous host:port for a multi-node run."""

    def validate(self) -> None:
        for name in ("nproc_per_node", "nnodes"):
            self.require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes


def trainer_paths(paths: Paths, stage: str, *, tokens: str, model: str, tokenizer: str | None = None) -> dict[str, str]:
    """The trainer's path fields for a training stage: its token folder `tokens` and tokenizer
    `tokenizer` (paths keys; None: the stage sets it), checkpoints in `<paths.checkpoints>/<stage>`,
    the loss curves in `<paths.reports>/<stage>`, the export in `<paths.models>/<model>`."""
    ckpt = paths.checkpoint(stage)
    out = {"tokens_dir": paths.get(tokens), "checkpoint_dir": ckpt, "metrics_dir": f"{paths.reports}/{stage}",
           "export_dir": paths.model(model), "summary_path": f"{ckpt}/summary.json"}
    if tokenizer is not None:
        out["tokenizer_dir"] = paths.get(tokenizer)
    return out


def training_writes(stage: str, model: str) -> tuple[Ref, ...]:
    """What every training stage writes (its dvc.yaml outs, metrics and plots), as path refs:
    the export, the checkpoints, the loss curves and the report (see `trainer_paths`)."""
    return (("models", model), ("checkpoints", stage), ("reports", f"{stage}/metrics.json"),
            ("reports", f"{stage}/plots/metrics"), *report_refs(stage))


@dataclass(frozen=True, kw_only=True)
class TrainingSettings(TrainSettings):
    """A training stage's params section: any trainer setting but the paths (the stage fixes
    those to mirror dvc.yaml), `launch`, and the stage's own settings (a subclass's fields,
    named in its `own`). `validate()` checks the stage's own settings; the trainer's are
    validated by `check_training`, once the stage has completed them."""

    own: ClassVar[tuple[str, ...]] = ("launch",)
    """Keys of the section that are the stage's, not passed to the trainer."""

    launch: LaunchSettings = field(default_factory=LaunchSettings)

    @classmethod
    def from_dict(cls, section: dict[str, Any] | None, where: str | None = None, *, validate: bool = True) -> Self:
        for key in PATH_FIELDS:
            if key in (section or {}):
                raise ConfigError(f"{where or cls.section}.{key}: set by the stage (it mirrors dvc.yaml's deps/outs); "
                                  "remove it from params")
        return super().from_dict(section, where, validate=validate)

    @classmethod
    def trainer_section(cls, section: dict[str, Any] | None) -> dict[str, Any]:
        """The trainer's settings of a section, as given (the stage's own keys left out)."""
        return {k: v for k, v in (section or {}).items() if k not in cls.own}

    def validate(self, *, world_size: int | None = None) -> None:
        pass  # launch is validated as it is built; subclasses check their own fields


def resume_decision(ckpt: Path, summary_path: Path, cfg: TrainSettings) -> tuple[bool, str]:
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


def check_training(stage: str, section: dict[str, Any] | None, paths: dict[str, str],
                   extra: dict[str, Any] | None = None, *, card: bool = False, validate: bool = True,
                   settings: type[TrainingSettings] = TrainingSettings
                   ) -> tuple[dict[str, Any], TrainSettings, LaunchSettings]:
    """(trainer settings, TrainSettings, launch settings) of a training stage's section, or a
    ConfigError naming `stage.key`. The section is read as `settings` (the stage's typed
    section). Each training stage's main() calls it before its flow (so a bad value fails in a
    fraction of a second, before any Prefect server starts) and `run_training` again with the
    settings the flow derived (`extra`). `validate=False` checks the trainer's names and types
    only, for a stage whose trainer settings are completed inside its flow."""
    launch = settings.from_dict(section, stage).launch
    cfg = {**settings.trainer_section(section), **(extra or {}), **paths, "run_name": stage}
    if card:
        cfg["model_card"] = str(Path(paths["checkpoint_dir"]) / CARD_FACTS)
    train_cfg = TrainSettings.from_dict(cfg, stage, validate=False)  # fails fast, naming the field, before torch starts
    if validate:
        try:
            train_cfg.validate(world_size=launch.world_size)
        except ConfigError as e:
            raise ConfigError(renamed(str(e), TrainSettings.section, stage)) from e
    return cfg, train_cfg, launch


def training_stage_main(flow_: Any, stage_paths: Callable[[Paths], dict[str, str]], doc: str | None, *,
                        settings: type[TrainingSettings] = TrainingSettings, validate: bool = False) -> Any:
    """The whole main() of a training stage (named by its flow): the `--params` file, its section
    checked as `settings` against the trainer's names and types (and values, with `validate`;
    otherwise the flow completes them first) before anything starts, then `flow_(section, paths)`
    through `run_flow`."""
    args = stage_args(doc or "")
    params = load_params(args.params)
    section, paths = params.get(flow_.name) or {}, load_paths(params)
    check_training(flow_.name, section, stage_paths(paths), validate=validate, settings=settings)
    return run_flow(flow_, section, paths)


def run_training(stage: str, section: dict[str, Any] | None, paths: dict[str, str],
                 extra: dict[str, Any] | None = None, card: dict[str, Any] | None = None,
                 settings: type[TrainingSettings] = TrainingSettings) -> dict[str, Any]:
    """Run one training stage under torchrun; return the trainer's summary. `card`: the facts
    for the exported model's card."""
    cfg, train_cfg, launch = check_training(stage, section, paths, extra, card=card is not None, settings=settings)

    ckpt = Path(paths["checkpoint_dir"])
    try:
        lock = FolderLock(ckpt, STAGE_LOCK, owner=f"stage {stage}").acquire()
    except FolderInUse as e:
        raise RuntimeError(f"{stage}: {e}") from None
    try:
        if is_locked(ckpt / TRAINER_LOCK):  # a trainer that outlived its stage (another node, a manual run)
            raise RuntimeError(f"{stage}: {FolderLock(ckpt, TRAINER_LOCK).busy_message(read_holder(ckpt / TRAINER_LOCK))}")
        return launch_trainer(stage, cfg, train_cfg, ckpt, launch, card)
    finally:
        lock.release()


def launch_trainer(stage: str, cfg: dict[str, Any], train_cfg: TrainSettings, ckpt: Path, launch: LaunchSettings,
                   card: dict[str, Any] | None = None) -> dict[str, Any]:
    """Resume or start over, then run torchrun (killed with this process) to the end."""
    summary_path = Path(cfg["summary_path"])
    resume, why = resume_decision(ckpt, summary_path, train_cfg)
    print(f"[{stage}] {why}" + ("" if resume else ": starting over"))
    if not resume:
        clear_folder(ckpt)
        if cfg.get("metrics_dir"):
            shutil.rmtree(cfg["metrics_dir"], ignore_errors=True)  # a fresh loss curve
    ckpt.mkdir(parents=True, exist_ok=True)
    if card is not None:
        write_json(ckpt / CARD_FACTS, card)
    cfg_path = ckpt / "train_config.json"
    write_json(cfg_path, cfg)
    summary_path.unlink(missing_ok=True)
    cmd = torchrun_command(cfg_path, launch.nproc_per_node, launch.nnodes, rdzv_endpoint=launch.rdzv_endpoint)
    print(f"[{stage}] {' '.join(cmd)}")
    with TrainingWatch(stage, cfg.get("metrics_dir"), train_cfg.max_steps) as watch:
        returncode = watch.wait(subprocess.Popen(cmd, env=torchrun_env(launch.nproc_per_node), preexec_fn=die_with_parent))
    if returncode != 0:
        raise RuntimeError(f"{stage}: torchrun exited with code {returncode}")
    summary = json.loads(summary_path.read_text())
    if summary.get("status") != "complete":
        raise RuntimeError(f"{stage}: training stopped before max_steps ({summary.get('status')}); rerun to resume")
    return summary


def training_report(stage: str, summary: dict[str, Any], timer: Timer, paths: Paths,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    keep = ("steps", "tokens", "seq_len", "world_size", "device", "final_train_loss", "final_val_loss", "final_lr",
            "params", "tokens_per_sec", "mfu", "resumed_from")
    return write_report(stage, {**{k: summary.get(k) for k in keep}, **(extra or {})}, timer, paths)


# ---- what the Prefect UI shows while a trainer runs ----

def read_curves(metrics_dir: str | Path) -> dict[str, dict[int, float]]:
    """{metric ('train/loss', 'val/loss', 'lr', ...): {step: value}} from the dvclive files
    under `<metrics_dir>/plots/metrics` (`dscoder.train.metrics.MetricsLog`); {} before the
    first checkpoint. A file being replaced is read whole or not at all (atomic renames)."""
    root = Path(metrics_dir) / "plots" / "metrics"
    curves: dict[str, dict[int, float]] = {}
    for tsv in sorted(root.rglob("*.tsv")) if root.is_dir() else []:
        points = {}
        for line in tsv.read_text().splitlines()[1:]:
            step, _, value = line.partition("\t")
            try:
                points[int(step)] = float(value)
            except ValueError:
                continue
        curves[tsv.relative_to(root).with_suffix("").as_posix()] = points
    return curves


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One character per value, lowest ▁ to highest █."""
    lo, hi = min(values), max(values)
    return "".join(SPARK[int((v - lo) / (hi - lo) * (len(SPARK) - 1)) if hi > lo else 0] for v in values)


def _thin(steps: list[int], keep: set[int], most: int) -> list[int]:
    """At most about `most` of `steps`, evenly spaced, plus every step in `keep` and the last."""
    stride = max(1, -(-len(steps) // most))
    return sorted({s for i, s in enumerate(steps) if i % stride == 0} | (keep & set(steps)) | set(steps[-1:]))


def loss_markdown(stage: str, curves: dict[str, dict[int, float]], max_steps: int, rows: int = 40) -> str:
    """The loss curve so far as markdown: a headline, a sparkline of the train loss, and a
    table (train loss, validation loss where the trainer evaluated, lr, tokens/s) of at most
    about `rows` steps, every evaluated step included."""
    train, val = curves.get("train/loss", {}), curves.get("val/loss", {})
    if not train:
        return f"### {stage}: no checkpoint yet"
    steps = sorted(train)
    line = [train[s] for s in _thin(steps, set(), 60)]
    out = [f"### {stage}: loss at step {steps[-1]} of {max_steps}", "",
           f"train loss `{sparkline(line)}` {train[steps[0]]:.4f} (step {steps[0]}) → {train[steps[-1]]:.4f} "
           f"(step {steps[-1]})"]
    if val:
        last = max(val)
        out[-1] += f"; validation loss {val[last]:.4f} (step {last})"
    cols = [("train loss", "train/loss", "{:.4f}"), ("val loss", "val/loss", "{:.4f}"), ("lr", "lr", "{:.3g}"),
            ("tokens/s", "tokens_per_sec", "{:,.0f}")]
    cols = [c for c in cols if curves.get(c[1])]
    out += ["", "| step | " + " | ".join(c[0] for c in cols) + " |", "|---:|" + "---:|" * len(cols)]
    for s in _thin(steps, set(val), rows):
        cells = [fmt.format(curves[name][s]) if s in curves[name] else "" for _, name, fmt in cols]
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


class TrainingWatch:
    """Publishes a running trainer's curve to the stage's flow run at each checkpoint (see the
    module docstring); outside a flow run only the progress bar logic runs (and draws nothing:
    the trainer has its own bar). Best effort: a failed publish never stops the training."""

    POLL_S = 2.0

    def __init__(self, stage: str, metrics_dir: str | None, max_steps: int):
        self.stage, self.max_steps = stage, max_steps
        self.metrics_dir = Path(metrics_dir) if metrics_dir else None
        # the trainer's own bar is the one on the terminal: this one only feeds the artifact
        self.progress = Progress(stage, max_steps, "step", desc=f"{stage}: training steps", bar=False)
        self.loss_key = artifact_key(stage, "loss")
        self.loss_id = None
        self._seen: tuple[int, int] | None = None
        self._failed = False

    def __enter__(self) -> "TrainingWatch":
        self.progress.__enter__()
        self.poll()  # a resumed run shows its curve so far at once
        return self

    def __exit__(self, *exc) -> None:
        self.poll()
        self.progress.close()

    def wait(self, proc: subprocess.Popen) -> int:
        """Wait for `proc`, polling the curve; kill it if this process is interrupted."""
        with proc:
            try:
                while True:
                    try:
                        return proc.wait(timeout=self.POLL_S)
                    except subprocess.TimeoutExpired:
                        self.poll()
            except BaseException:
                proc.kill()
                raise

    def poll(self) -> bool:
        """Publish the curve if the trainer rewrote it since the last look; whether it did."""
        if self.metrics_dir is None:
            return False
        try:
            st = (self.metrics_dir / "metrics.json").stat()
        except OSError:
            return False
        if (st.st_mtime_ns, st.st_size) == self._seen:
            return False
        self._seen = (st.st_mtime_ns, st.st_size)
        curves = read_curves(self.metrics_dir)
        train = curves.get("train/loss") or {}
        if not train:
            return False
        step = max(train)
        self.progress.update_to(step, loss=round(train[step], 4))
        self.publish(loss_markdown(self.stage, curves, self.max_steps))
        return True

    def publish(self, markdown: str) -> None:
        if self._failed or run_ids()[1] is None:
            return
        try:
            if self.loss_id is None:
                from prefect.artifacts import MarkdownArtifact

                task_run_id, flow_run_id = run_ids()
                self.loss_id = MarkdownArtifact(
                    key=self.loss_key, markdown=markdown, flow_run_id=flow_run_id, task_run_id=task_run_id,
                    description=f"{self.metrics_dir}/plots/metrics: the loss curve so far, at each checkpoint",
                ).create(_sync=True).id
            else:
                from prefect.client.orchestration import get_client
                from prefect.client.schemas.actions import ArtifactUpdate

                with get_client(sync_client=True) as client:
                    client.update_artifact(self.loss_id, ArtifactUpdate(data=markdown))
        except Exception as e:
            self._failed = True
            print(f"[{self.stage}] loss artifact {self.loss_key}: not published ({type(e).__name__}: {e}); going on")

