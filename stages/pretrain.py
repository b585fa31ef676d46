"""pretrain: data/tokens → artifacts/models/base (HF format), under torchrun + FSDP2.

Sec. 3: next-token (+ document-level FIM, already in the tokens) on the packed stream;
AdamW (0.9, 0.95), warm-up, the three-stage step schedule. Loss curves go to
reports/pretrain/plots (dvc plots), the summary to reports/pretrain.json.
"""

from __future__ import annotations

from prefect import flow

from stages.common import Timer, load_params, run_flow, stage_args
from stages.common.model_card import DATA_STAGES, TOKEN_STAGES, card_facts, code_data
from stages.common.training import check_training, run_training, training_report

PATHS = {
    "tokens_dir": "data/tokens",
    "tokenizer_dir": "artifacts/tokenizer",
    "checkpoint_dir": "checkpoints/pretrain",
    "metrics_dir": "reports/pretrain",
    "export_dir": "artifacts/models/base",
    "summary_path": "checkpoints/pretrain/summary.json",
}


@flow(name="pretrain", log_prints=True)
def pretrain(section: dict) -> dict:
    timer = Timer()
    card = card_facts("pretrain", section, before=(*DATA_STAGES, *TOKEN_STAGES), data=code_data(PATHS["tokens_dir"]))
    summary = run_training("pretrain", section, PATHS, card=card)
    timer.mark("train")
    print(f"pretrain: {summary['steps']} steps, final loss {summary['final_train_loss']:.3f}")
    return training_report("pretrain", summary, timer)


def main() -> None:
    args = stage_args(__doc__)
    section = load_params(args.params).get("pretrain") or {}
    check_training("pretrain", section, PATHS)
    run_flow(pretrain, section)


if __name__ == "__main__":
    main()
