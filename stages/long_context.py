"""long_context: <paths.models>/base + paths.tokens → <paths.models>/base-16k.

Sec. 3.6: RoPE linear scaling factor 1 → 4 and base 10000 → 100000, then more steps at the
long window (16K in the paper preset), LR equal to the end of pretraining (constant).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from prefect import flow

from dscoder.config import Settings
from dscoder.paths import Paths
from dscoder.train import long_context_overrides
from stages.common import Timer, load_paths
from stages.common.model_card import card_facts, code_data
from stages.common.training import (TrainingSettings, run_training, trainer_paths, training_report,
                                    training_stage_main, training_writes)

BASE, MODEL = "base", "base-16k"
READS = ("tokens", "tokenizer", ("models", BASE))
WRITES = training_writes("long_context", MODEL)
CARD_READS = ("clean_repos", "reports")  # the model card's facts: deliberately no deps (stages.common.model_card)


def long_context_paths(paths: Paths) -> dict[str, str]:
    """The trainer's path fields of this stage."""
    return trainer_paths(paths, "long_context", tokens="tokens", tokenizer="tokenizer", model=MODEL)


@dataclass(frozen=True, kw_only=True)
class RopeSettings(Settings):
    """The long-context RoPE change (Sec. 3.6)."""

    section: ClassVar[str] = "long_context.rope"

    factor: float = 4.0
    """Linear RoPE scaling factor (Sec. 3.6: 1 -> 4)."""
    theta: float = 100000.0
    """RoPE base (Sec. 3.6: 10000 -> 100000)."""

    def validate(self) -> None:
        self.require(self.factor >= 1, "factor", f"must be >= 1, got {self.factor}")
        self.require(self.theta > 0, "theta", f"must be > 0, got {self.theta}")


@dataclass(frozen=True, kw_only=True)
class LongContextSettings(TrainingSettings):
    """params.yaml `long_context`: the trainer's settings, `launch`, the RoPE change, the long
    window and the LR (by default the one the base run ended on)."""

    section: ClassVar[str] = "long_context"
    own: ClassVar[tuple[str, ...]] = ("launch", "rope", "seq_len", "lr")

    rope: RopeSettings = field(default_factory=RopeSettings)
    seq_len: int = 16384
    """The long window (Sec. 3.6: 16K)."""
    lr: float | None = None
    """Constant LR; null: the LR the base run ended on."""


@flow(name="long_context", log_prints=True)
def long_context(section: dict, paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    timer = Timer()
    base = paths.model(BASE)
    card = card_facts("long_context", section, start=base, data=code_data(paths.tokens, paths.clean_repos, paths.reports))
    settings = LongContextSettings.from_dict(section)
    extra = long_context_overrides(base, seq_len=settings.seq_len, factor=settings.rope.factor,
                                   rope_theta=settings.rope.theta, lr=settings.lr)
    for key in ("schedule", "warmup_steps"):  # the params may still override these
        if key in section:
            extra.pop(key)
    summary = run_training("long_context", section, long_context_paths(paths), extra=extra, card=card,
                           settings=LongContextSettings)
    timer.mark("train")
    print(f"long_context: {summary['steps']} steps at {summary['seq_len']} tokens, final loss {summary['final_train_loss']:.3f}")
    return training_report("long_context", summary, timer, paths)


def main() -> None:
    # names and types now; the values once the flow has read the base model's settings
    training_stage_main(long_context, long_context_paths, __doc__, settings=LongContextSettings)


if __name__ == "__main__":
    main()
