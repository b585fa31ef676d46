"""pretrain: paths.tokens → <paths.models>/base (HF format), under torchrun + FSDP2.

Sec. 3: next-token (+ document-level FIM, already in the tokens) on the packed stream;
AdamW (0.9, 0.95), warm-up, the three-stage step schedule. Loss curves go to
<paths.reports>/pretrain/plots (dvc plots), the summary to <paths.reports>/pretrain.json.
"""

from __future__ import annotations

from prefect import flow

from dscoder.paths import Paths
from stages.common import Timer, load_paths
from stages.common.model_card import DATA_STAGES, TOKEN_STAGES, card_facts, code_data
from stages.common.training import run_training, trainer_paths, training_report, training_stage_main, training_writes

MODEL = "base"
READS = ("tokens", "tokenizer")
WRITES = training_writes("pretrain", MODEL)
CARD_READS = ("clean_repos", "reports")  # the model card's facts: deliberately no deps (stages.common.model_card)


def pretrain_paths(paths: Paths) -> dict[str, str]:
    """The trainer's path fields of this stage."""
    return trainer_paths(paths, "pretrain", tokens="tokens", tokenizer="tokenizer", model=MODEL)


@flow(name="pretrain", log_prints=True)
def pretrain(section: dict, paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    timer = Timer()
    card = card_facts("pretrain", section, before=(*DATA_STAGES, *TOKEN_STAGES),
                      data=code_data(paths.tokens, paths.clean_repos, paths.reports))
    summary = run_training("pretrain", section, pretrain_paths(paths), card=card)
    timer.mark("train")
    print(f"pretrain: {summary['steps']} steps, final loss {summary['final_train_loss']:.3f}")
    return training_report("pretrain", summary, timer, paths)


def main() -> None:
    training_stage_main(pretrain, pretrain_paths, __doc__, validate=True)


if __name__ == "__main__":
    main()
