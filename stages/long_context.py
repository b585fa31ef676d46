"""long_context: artifacts/models/base + data/tokens → artifacts/models/base-16k.

Sec. 3.6: RoPE linear scaling factor 1 → 4 and base 10000 → 100000, then more steps at the
long window (16K in the paper preset), LR equal to the end of pretraining (constant).
"""

from __future__ import annotations

from prefect import flow

from dscoder.config import ConfigError
from dscoder.train import long_context_overrides
from stages.common import Timer, load_params, run_flow, stage_args
from stages.common.model_card import card_facts, code_data
from stages.common.training import check_training, run_training, training_report

BASE = "artifacts/models/base"
PATHS = {
    "tokens_dir": "data/tokens",
    "tokenizer_dir": "artifacts/tokenizer",
    "checkpoint_dir": "checkpoints/long_context",
    "metrics_dir": "reports/long_context",
    "export_dir": "artifacts/models/base-16k",
    "summary_path": "checkpoints/long_context/summary.json",
}


@flow(name="long_context", log_prints=True)
def long_context(section: dict) -> dict:
    timer = Timer()
    card = card_facts("long_context", section, start=BASE, data=code_data(PATHS["tokens_dir"]))
    section = dict(section)
    rope = dict(section.pop("rope", None) or {})
    unknown = set(rope) - {"factor", "theta"}
    if unknown:
        raise ConfigError(f"long_context.rope.{sorted(unknown)[0]}: unknown parameter (known: factor, theta)")
    seq_len = section.pop("seq_len", 16384)
    lr = section.pop("lr", None)  # default: the LR the base run ended on
    extra = long_context_overrides(BASE, seq_len=seq_len, factor=rope.get("factor", 4.0),
                                   rope_theta=rope.get("theta", 100000.0), lr=lr)
    for key in ("schedule", "warmup_steps"):  # the params may still override these
        if key in section:
            extra.pop(key)
    summary = run_training("long_context", section, PATHS, extra=extra, card=card)
    timer.mark("train")
    print(f"long_context: {summary['steps']} steps at {summary['seq_len']} tokens, final loss {summary['final_train_loss']:.3f}")
    return training_report("long_context", summary, timer)


def main() -> None:
    args = stage_args(__doc__)
    section = load_params(args.params).get("long_context") or {}
    # names and types now; the values once the flow has read the base model's settings
    check_training("long_context", {k: v for k, v in section.items() if k not in ("rope", "seq_len", "lr")}, PATHS,
                   validate=False)
    run_flow(long_context, section)


if __name__ == "__main__":
    main()
