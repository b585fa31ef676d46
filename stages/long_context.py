"""long_context: <paths.models>/base + paths.tokens → <paths.models>/base-16k.

Sec. 3.6: RoPE linear scaling factor 1 → 4 and base 10000 → 100000, then more steps at the
long window (16K in the paper preset), LR equal to the end of pretraining (constant).
"""

from __future__ import annotations

from prefect import flow

from dscoder.config import ConfigError
from dscoder.paths import Paths
from dscoder.train import long_context_overrides
from stages.common import Timer, load_params, load_paths, stage_args
from stages.model_card import card_facts, code_data
from stages.training import check_training, run_training, trainer_paths, training_report, training_writes

BASE, MODEL = "base", "base-16k"
READS = ("tokens", "tokenizer", ("models", BASE))
WRITES = training_writes("long_context", MODEL)
CARD_READS = ("clean_repos", "reports")  # the model card's facts: deliberately no deps (stages.model_card)


def long_context_paths(paths: Paths) -> dict[str, str]:
    """The trainer's path fields of this stage."""
    return trainer_paths(paths, "long_context", tokens="tokens", tokenizer="tokenizer", model=MODEL)


@flow(name="long_context", log_prints=True)
def long_context(section: dict, paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    timer = Timer()
    base = paths.model(BASE)
    card = card_facts("long_context", section, start=base, data=code_data(paths.tokens, paths.clean_repos, paths.reports))
    section = dict(section)
    rope = dict(section.pop("rope", None) or {})
    unknown = set(rope) - {"factor", "theta"}
    if unknown:
        raise ConfigError(f"long_context.rope.{sorted(unknown)[0]}: unknown parameter (known: factor, theta)")
    seq_len = section.pop("seq_len", 16384)
    lr = section.pop("lr", None)  # default: the LR the base run ended on
    extra = long_context_overrides(base, seq_len=seq_len, factor=rope.get("factor", 4.0),
                                   rope_theta=rope.get("theta", 100000.0), lr=lr)
    for key in ("schedule", "warmup_steps"):  # the params may still override these
        if key in section:
            extra.pop(key)
    summary = run_training("long_context", section, long_context_paths(paths), extra=extra, card=card)
    timer.mark("train")
    print(f"long_context: {summary['steps']} steps at {summary['seq_len']} tokens, final loss {summary['final_train_loss']:.3f}")
    return training_report("long_context", summary, timer, paths)


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    section, paths = params.get("long_context") or {}, load_paths(params)
    # names and types now; the values once the flow has read the base model's settings
    check_training("long_context", {k: v for k, v in section.items() if k not in ("rope", "seq_len", "lr")},
                   long_context_paths(paths), validate=False)
    long_context(section, paths)


if __name__ == "__main__":
    main()
