"""continue_pretrain (v1.5): a general causal LM + the clean corpus → <paths.models>/v1.5.

Sec. 5, Table 9: start from a general LLM (any HF causal-LM directory in
`continue_pretrain.init_from`), tokenize with *that model's* tokenizer, build the code-heavy
mixture (source code 70%, Markdown/StackExchange 10%, natural language about code 7%, about
math 7%, general 6%) and continue with the next-token objective only (no FIM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from prefect import flow, task
from transformers import AutoTokenizer

from dscoder.train.mixture import MixtureSettings, corpus_sources, write_mixture
from dscoder.data.stream import read_repos
from dscoder.paths import Paths
from stages.common import Timer, load_paths, run_task
from stages.common.model_card import DATA_STAGES, card_facts
from stages.common.training import (TrainingSettings, run_training, trainer_paths, training_report,
                                    training_stage_main, training_writes)

MODEL = "v1.5"
READS = ("clean_repos", "continue_pretrain.init_from")
WRITES = ("v15_tokens", *training_writes("continue_pretrain", MODEL))


def continue_pretrain_paths(paths: Paths) -> dict[str, str]:
    """The trainer's path fields of this stage (the tokenizer is the starting model's: the flow sets it)."""
    return trainer_paths(paths, "continue_pretrain", tokens="v15_tokens", model=MODEL)


@dataclass(frozen=True, kw_only=True)
class ContinuePretrainSettings(TrainingSettings):
    """params.yaml `continue_pretrain`: the trainer's settings, `launch`, the general model to
    start from (`init_from`, whose tokenizer is used) and the `mixture`."""

    section: ClassVar[str] = "continue_pretrain"
    own: ClassVar[tuple[str, ...]] = ("launch", "init_from", "mixture")

    mixture: MixtureSettings = field(default_factory=MixtureSettings)
    """The code-heavy data mixture (Table 9 shares by default)."""

    def check_init_from(self) -> None:
        """The general model must be there when the stage runs (it may be another stage's output)."""
        self.require(Path(self.init_from, "config.json").is_file(), "init_from",
                     f"not a Hugging Face model directory: {self.init_from!r}")


@task(name="build-mixture")
def mixture(init_from: str, mp: MixtureSettings, paths: Paths) -> dict:
    tok = AutoTokenizer.from_pretrained(init_from)  # the general model's own tokenizer
    sources, stats = corpus_sources(read_repos(paths.clean_repos), mp)
    meta = write_mixture(sources, tok, Path(paths.v15_tokens), mp)
    return {"sources": {k: len(v) for k, v in sources.items()},
            "mixture": meta.get("mixture", {}), "train_tokens": meta.get("train_tokens"),
            "val_tokens": meta.get("val_tokens")}


@flow(name="continue_pretrain", log_prints=True)
def continue_pretrain(section: dict, paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    timer = Timer()
    settings = ContinuePretrainSettings.from_dict(section)
    settings.check_init_from()
    init_from, mp = settings.init_from, settings.mixture
    data = run_task(mixture, init_from, mp, paths)
    timer.mark("mixture")
    card = card_facts("continue_pretrain", section, start=init_from, before=DATA_STAGES, data={"mixture": data})
    summary = run_training("continue_pretrain", section, {**continue_pretrain_paths(paths), "tokenizer_dir": init_from},
                           extra={"init_from": init_from, "seq_len": mp.seq_len}, card=card,
                           settings=ContinuePretrainSettings)
    timer.mark("train")
    return training_report("continue_pretrain", summary, timer, paths, extra={"data": data})


def main() -> None:
    # the trainer's names and types now, its values once the mixture is built
    training_stage_main(continue_pretrain, continue_pretrain_paths, __doc__, settings=ContinuePretrainSettings)


if __name__ == "__main__":
    main()
