"""The trainer's settings: one typed `Settings` class, loaded from JSON/YAML plus `key=value`
overrides.

Like OLMo-core / torchtitan, this is the only way settings enter the trainer; the resolved
config is saved beside every checkpoint and exported model. Errors name `train.<key>` (the
trainer's own config file) or `<stage>.<key>` (a training stage's params section).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml

from dscoder.config import ConfigError, Settings
from dscoder.model import PRESETS

SCHEDULES = ("step3", "cosine", "constant")
DEFAULT_WORLD_SIZE = 1
"""Ranks of a trainer started without torchrun's WORLD_SIZE (one plain process)."""


@dataclass(frozen=True, kw_only=True)
class TrainSettings(Settings):
    section: ClassVar[str] = "train"

    # ---- paths (the stage layer passes its DVC deps/outs here) ----
    tokens_dir: str = ""
    """Token directory: `train.bin`, `val.bin` (flat uint16/uint32 streams) and `meta.json`
    ({dtype, vocab_size, seq_len, ...}); optional `train.mask.bin`/`val.mask.bin` (uint8)."""
    checkpoint_dir: str = ""
    """Where `step-XXXXXX/` checkpoints go (e.g. checkpoints/<run>); empty: no checkpoints."""
    metrics_dir: str = ""
    """Metrics in dvclive's layout (metrics.json + plots/metrics/*.tsv), rewritten with each
    checkpoint and at the end; empty: no metrics files."""
    export_dir: str = ""
    """Final Hugging Face model directory (safetensors); empty: no export."""
    tokenizer_dir: str = ""
    """Tokenizer directory copied into the export so it loads with AutoTokenizer; optional."""
    summary_path: str = ""
    """JSON summary (final losses, tokens, steps, time) for the stage report; optional."""
    run_name: str = "train"
    """Name used in logs and the summary."""
    model_card: str = ""
    """JSON file of model card facts gathered by the stage (the recipe, the data each stage saw),
    rendered with the export's own into its README.md (`dscoder.train.model_card`); optional."""

    # ---- model ----
    model_preset: str = "tiny"
    """Key of `dscoder.model.PRESETS` (tiny, 1.3b, 6.7b, 33b); ignored when `init_from` is set."""
    model_overrides: dict[str, Any] = field(default_factory=dict)
    """LlamaConfig fields overriding the preset (e.g. {"num_hidden_layers": 2})."""
    init_from: str = ""
    """A Hugging Face model directory to start from (weights and config) instead of a preset."""
    rope_scaling_factor: float = 0.0
    """Sec. 3.6 long context: linear RoPE scaling factor (4); 0 keeps the model's RoPE."""
    rope_theta: float = 0.0
    """Sec. 3.6 long context: RoPE base (100000) applied with `rope_scaling_factor`; 0: 10000."""

    # ---- data ----
    seq_len: int = 0
    """Tokens per training sequence; 0 takes `seq_len` from meta.json. Block i of the stream is
    tokens[i*seq_len:(i+1)*seq_len], so any length works on the same flat stream."""
    loss_mask: bool = False
    """Train only on tokens whose `<split>.mask.bin` byte is 1 (instruction tuning)."""
    shuffle: bool = True
    """Visit training blocks in a seeded pseudo-random order (a new order each epoch)."""
    eval_sequences: int = 64
    """Validation sequences (the first ones of val.bin) scored at each evaluation; 0: none."""

    # ---- batch ----
    global_batch_size: int = 8
    """Sequences per optimizer step over all ranks (Table 2: 1024 / 2304 / 3840)."""
    micro_batch_size: int = 1
    """Sequences per forward pass per rank; gradient accumulation makes up the rest."""

    # ---- optimisation (Sec. 3.4) ----
    lr: float = 5.3e-4
    """Peak learning rate (Table 2: 5.3e-4 / 4.2e-4 / 3.5e-4)."""
    warmup_steps: int = 2000
    """Linear warm-up steps from 0 to `lr` (Sec. 3.4: 2000)."""
    schedule: str = "step3"
    """"step3" (DeepSeek LLM three-stage), "cosine" (instruction tuning), or "constant"."""
    step_fractions: list[float] = field(default_factory=lambda: [0.8, 0.9])
    """step3: fractions of max_steps where the LR drops (DeepSeek LLM: 80% and 90%)."""
    step_multipliers: list[float] = field(default_factory=lambda: [math.sqrt(0.1), 0.1])
    """step3: LR multipliers after each drop (x sqrt(1/10) ≈ 0.316, then x 0.1)."""
    min_lr_ratio: float = 0.1
    """cosine: final LR as a fraction of `lr`."""
    beta1: float = 0.9
    """AdamW beta1 (Sec. 3.4)."""
    beta2: float = 0.95
    """AdamW beta2 (Sec. 3.4)."""
    eps: float = 1e-8
    """AdamW epsilon."""
    weight_decay: float = 0.1
    """AdamW decoupled weight decay on matrices (not norms); DeepSeek LLM uses 0.1."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this; 0 disables clipping."""

    # ---- loop ----
    max_steps: int = 1000
    """Optimizer steps in the run (the schedule is laid out over these)."""
    eval_every: int = 100
    """Validation loss every N steps (and at the end); 0: only at the end."""
    checkpoint_every: int = 100
    """Save a checkpoint every N steps (and at the end); 0: only at the end."""
    keep_checkpoints: int = 2
    """Newest complete checkpoints kept; older ones are deleted; 0 keeps all."""
    log_every: int = 1
    """Print a log line every N steps (dvclive records every step)."""
    seed: int = 1234
    """Seeds model init, data order and all RNGs."""
    stop_after_step: int = 0
    """Debug: leave the loop (no export) after this step, as if killed; 0: off."""

    # ---- performance ----
    device: str = "auto"
    """"auto" (cuda when available), "cpu" or "cuda"."""
    mixed_precision: str = "auto"
    """"auto" (bf16 params/compute on GPU, fp32 on CPU), "bf16" or "fp32"; reductions in fp32."""
    activation_checkpointing: bool = False
    """Recompute each decoder block in backward to save memory."""
    compile: bool = False
    """torch.compile each decoder block."""
    peak_flops: float = 0.0
    """Peak FLOP/s of one device for MFU (H100 SXM dense bf16: 989e12); 0: auto on known GPUs."""
    export_dtype: str = "float32"
    """dtype of the exported weights: "float32" or "bfloat16"."""

    def validate(self, *, world_size: int | None = None) -> None:
        """Raise ConfigError naming the first bad parameter (`train.<key>`). With `world_size`,
        also check that the global batch splits into micro batches over the ranks."""
        need = self.require
        need(bool(self.tokens_dir), "tokens_dir", "is required")
        tokens = Path(self.tokens_dir)
        for name in ("meta.json", "train.bin"):
            need((tokens / name).is_file(), "tokens_dir", f"{str(tokens)!r} has no {name}")
        need((tokens / "train.bin").stat().st_size > 0, "tokens_dir",
             f"{str(tokens)!r}: train.bin is empty (no training data; see the packing report)")
        need(not self.loss_mask or (tokens / "train.mask.bin").is_file(), "loss_mask",
             f"is set but tokens_dir {str(tokens)!r} has no train.mask.bin")
        if self.init_from:
            need((Path(self.init_from) / "config.json").is_file(), "init_from",
                 f"{self.init_from!r} is not a Hugging Face model directory")
        else:
            need(self.model_preset in PRESETS, "model_preset", f"{self.model_preset!r} unknown; choose from {sorted(PRESETS)}")
        need(not self.rope_theta or bool(self.rope_scaling_factor), "rope_theta", "is set without rope_scaling_factor")
        need(not self.rope_scaling_factor or self.rope_scaling_factor >= 1, "rope_scaling_factor",
             f"must be >= 1, got {self.rope_scaling_factor}")
        need(not self.tokenizer_dir or Path(self.tokenizer_dir).is_dir(), "tokenizer_dir",
             f"{self.tokenizer_dir!r} is not a directory")
        for name in ("global_batch_size", "micro_batch_size", "max_steps", "log_every"):
            need(getattr(self, name) > 0, name, f"must be > 0, got {getattr(self, name)}")
        for name in ("seq_len", "eval_sequences", "warmup_steps", "eval_every", "checkpoint_every", "keep_checkpoints",
                     "stop_after_step", "weight_decay", "grad_clip", "seed", "peak_flops"):
            need(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        need(self.seq_len != 1, "seq_len", "must be at least 2 (inputs and next-token targets)")
        need(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        need(self.schedule in SCHEDULES, "schedule", f"{self.schedule!r} unknown; choose from {SCHEDULES}")
        need(len(self.step_fractions) == len(self.step_multipliers), "step_multipliers",
             "step_fractions and step_multipliers must have the same length")
        need(list(self.step_fractions) == sorted(self.step_fractions) and all(0 < f < 1 for f in self.step_fractions),
             "step_fractions", f"must be increasing and inside (0, 1), got {self.step_fractions}")
        need(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", f"must be in [0, 1], got {self.min_lr_ratio}")
        for name in ("beta1", "beta2"):
            need(0 <= getattr(self, name) < 1, name, f"must be in [0, 1), got {getattr(self, name)}")
        need(self.device in ("auto", "cpu", "cuda"), "device", f"{self.device!r} unknown; choose auto, cpu or cuda")
        need(self.mixed_precision in ("auto", "bf16", "fp32"), "mixed_precision",
             f"{self.mixed_precision!r} unknown; choose auto, bf16 or fp32")
        need(self.export_dtype in ("float32", "bfloat16"), "export_dtype",
             f"{self.export_dtype!r} unknown; choose float32 or bfloat16")
        need(self.global_batch_size % self.micro_batch_size == 0, "global_batch_size",
             f"{self.global_batch_size} is not divisible by micro_batch_size {self.micro_batch_size}")
        if world_size is not None:
            self.validate_batch(world_size)

    def grad_accum_steps(self, world_size: int) -> int:
        """Micro batches per rank per optimizer step."""
        self.validate_batch(world_size)
        return self.global_batch_size // (self.micro_batch_size * world_size)

    def validate_batch(self, world_size: int) -> None:
        """Fail fast unless the global batch splits into micro batches over `world_size` ranks."""
        self.require(self.global_batch_size % (self.micro_batch_size * world_size) == 0, "global_batch_size",
                     f"{self.global_batch_size} is not divisible by micro_batch_size {self.micro_batch_size} "
                     f"x world size {world_size}")

    @classmethod
    def from_dict(cls, section: dict[str, Any] | None, where: str | None = None, *, validate: bool = True) -> Self:
        """Settings from a mapping, numbers converted as `_coerce` says; unknown keys, wrong
        types and (with `validate`) bad values raise ConfigError naming `where.key`."""
        section = {name: _coerce(name, value) for name, value in (section or {}).items()}
        return super().from_dict(section, where, validate=validate)


_TYPES = {f.name: f.type for f in dataclasses.fields(TrainSettings)}


def _coerce(name: str, value: Any) -> Any:
    """What YAML or the command line leaves as the wrong kind of number, converted ("3e-4" is
    a string to YAML 1.1; 1 is an int; `checkpoint_dir=` is None); anything else unchanged,
    for `Settings.from_dict` to check."""
    kind = _TYPES.get(name)
    try:
        if kind == "float" and not isinstance(value, bool):
            return float(value)
        if kind == "int" and not isinstance(value, bool) and float(value) == int(float(value)):
            return int(float(value))
        if kind == "str" and value is None:
            return ""  # `checkpoint_dir=` on the command line: off
        if kind is not None and kind.startswith("list") and isinstance(value, (list, tuple)):
            return [float(v) for v in value]
    except (TypeError, ValueError):
        pass
    return value


def apply_overrides(data: dict[str, Any], overrides: list[str] | dict[str, Any]) -> dict[str, Any]:
    """Merge `key=value` strings (values parsed as YAML; `a.b=v` sets a key inside a dict
    field such as `model_overrides.num_hidden_layers=2`) or a mapping into `data`."""
    out = json.loads(json.dumps(data))
    items = overrides.items() if isinstance(overrides, dict) else (_split(o) for o in overrides)
    for key, value in items:
        node, parts = out, key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {key!r}: {part!r} is not a mapping")
        node[parts[-1]] = value
    return out


def _split(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ValueError(f"override {item!r} is not of the form key=value")
    key, raw = item.split("=", 1)
    return key.strip(), yaml.safe_load(raw)


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | dict[str, Any] = ()) -> TrainSettings:
    """Read a JSON or YAML file (YAML is a superset), apply overrides, return the settings
    (names and types checked; values not yet validated: `validate()` touches the file system)."""
    data: dict[str, Any] = {}
    if path is not None:
        text = Path(path).read_text()
        loaded = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        if not isinstance(loaded, dict):
            raise ConfigError(f"train: {str(path)!r} is not a mapping")
        data = loaded
    return TrainSettings.from_dict(apply_overrides(data, overrides), validate=False)
