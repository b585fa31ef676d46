"""general_lm: paths.clean_repos → <paths.models>/general (default profile only).

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
from dscoder.paths import Paths
from stages.common import Timer, load_paths, run_task
from stages.common.model_card import DATA_STAGES, card_facts
from stages.common.training import (TrainingSettings, run_training, trainer_paths, training_report,
                                    training_stage_main, training_writes)

MODEL = "general"
READS = ("clean_repos",)
WRITES = ("general_tokenizer", "general_tokens", *training_writes("general_lm", MODEL))


def general_lm_paths(paths: Paths) -> dict[str, str]:
    """The trainer's path fields of this stage."""
    return trainer_paths(paths, "general_lm", tokens="general_tokens", tokenizer="general_tokenizer", model=MODEL)


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
def corpus(vocab_size: int, seq_len: int, paths: Paths) -> dict:
    texts = general_lm_texts(read_repos(paths.clean_repos))
    tok = train_general_tokenizer([t for _, t in texts], vocab_size)
    with atomic_path(Path(paths.general_tokenizer), is_dir=True) as tmp:
        tok.save_pretrained(str(tmp))
    meta = write_texts(texts, tok, Path(paths.general_tokens), seq_len=seq_len)
    return {"texts": len(texts), **{k: v for k, v in meta.items() if isinstance(v, (int, float, str))}}


@flow(name="general_lm", log_prints=True)
def general_lm(section: dict, paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    timer = Timer()
    settings = GeneralLmSettings.from_dict(section)
    data = run_task(corpus, settings.vocab_size, settings.seq_len, paths)
    timer.mark("corpus")
    card = card_facts("general_lm", section, before=DATA_STAGES, data={"corpus": data})
    summary = run_training("general_lm", section, general_lm_paths(paths), card=card, settings=GeneralLmSettings)
    timer.mark("train")
    return training_report("general_lm", summary, timer, paths, extra={"data": data})


def main() -> None:
    # the trainer's names and types now, its values once the flow has built the corpus
    training_stage_main(general_lm, general_lm_paths, __doc__, settings=GeneralLmSettings)


if __name__ == "__main__":
    main()
