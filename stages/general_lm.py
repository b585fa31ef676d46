"""general_lm: data/clean/repos.parquet → artifacts/models/general (default profile only).

v1.5 (Sec. 5) continues pretraining from a general LLM (DeepSeek-LLM-7B in the paper). So
that the default profile runs offline, this stage trains a small general model of its own on
the corpus's natural-language share (prose files and docstrings), with its own tokenizer
(not dscoder's): `continue_pretrain` then shows it works from a foreign tokenizer. With a
real general model, point `continue_pretrain.init_from` at it and this stage is not needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from prefect import flow, task

from dscoder.io import atomic_path
from dscoder.train.mixture import general_lm_texts, train_general_tokenizer, write_texts
from dscoder.data.stream import read_repos
from stages.common import Timer, load_params, run_flow, run_task, stage_args
from stages.common.model_card import DATA_STAGES, card_facts
from stages.common.training import TrainingSettings, check_training, run_training, training_report

IN = Path("data/clean/repos.parquet")
TOKENIZER = Path("artifacts/tokenizer-general")
TOKENS = Path("data/general_tokens")
PATHS = {
    "tokens_dir": str(TOKENS),
    "tokenizer_dir": str(TOKENIZER),
    "checkpoint_dir": "checkpoints/general_lm",
    "metrics_dir": "reports/general_lm",
    "export_dir": "artifacts/models/general",
    "summary_path": "checkpoints/general_lm/summary.json",
}


@dataclass(frozen=True, kw_only=True)
class GeneralLmSettings(TrainingSettings):
    """params.yaml `general_lm`: the trainer's settings, `launch`, and the corpus's `vocab_size`."""

    section: ClassVar[str] = "general_lm"
    own: ClassVar[tuple[str, ...]] = ("launch", "vocab_size")

    vocab_size: int = 2048
    """Vocabulary of the general model's own byte-level BPE tokenizer."""
    seq_len: int = 256
    """Block length of the general corpus (and, when given, the trainer's)."""

    def validate(self, *, world_size: int | None = None) -> None:
        self.require(self.vocab_size >= 300, "vocab_size", f"must be an integer >= 300, got {self.vocab_size!r}")


@task(name="general-corpus")
def corpus(vocab_size: int, seq_len: int) -> dict:
    texts = general_lm_texts(read_repos(IN))
    tok = train_general_tokenizer([t for _, t in texts], vocab_size)
    with atomic_path(TOKENIZER, is_dir=True) as tmp:
        tok.save_pretrained(str(tmp))
    meta = write_texts(texts, tok, TOKENS, seq_len=seq_len)
    return {"texts": len(texts), **{k: v for k, v in meta.items() if isinstance(v, (int, float, str))}}


@flow(name="general_lm", log_prints=True)
def general_lm(section: dict) -> dict:
    timer = Timer()
    settings = GeneralLmSettings.from_dict(section)
    data = run_task(corpus, settings.vocab_size, settings.seq_len)
    timer.mark("corpus")
    card = card_facts("general_lm", section, before=DATA_STAGES, data={"corpus": data})
    summary = run_training("general_lm", section, PATHS, card=card, settings=GeneralLmSettings)
    timer.mark("train")
    return training_report("general_lm", summary, timer, extra={"data": data})


def main() -> None:
    args = stage_args(__doc__)
    section = load_params(args.params).get("general_lm") or {}
    # the trainer's names and types now, its values once the flow has built the corpus
    check_training("general_lm", section, PATHS, validate=False, settings=GeneralLmSettings)
    run_flow(general_lm, section)


if __name__ == "__main__":
    main()
