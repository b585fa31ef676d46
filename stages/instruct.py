"""instruct: <paths.models>/base-16k + paths.instruct_data → <paths.models>/instruct.

Sec. 3.7: the DeepSeek-Coder-Instruct prompt layout (system prompt, `### Instruction:` /
`### Response:` turns, <|EOT|> after each answer) is set as the tokenizer's chat template, so
`apply_chat_template` reproduces the training prompts; loss only on the answer tokens and
<|EOT|>; cosine schedule with warm-up; the same FSDP2 trainer as pretraining.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from prefect import flow, task
from transformers import AutoTokenizer

from dscoder.instruct import InstructPackSettings, pack_instructions, read_examples, save_chat_tokenizer
from dscoder.paths import Paths
from stages.common import Timer, load_paths, run_task
from stages.common.model_card import card_facts, instruction_data
from stages.common.training import (TrainingSettings, run_training, trainer_paths, training_report,
                                    training_stage_main, training_writes)

BASE, MODEL = "base-16k", "instruct"
READS = ("instruct_data", ("models", BASE))
WRITES = ("chat_tokenizer", "instruct_tokens", *training_writes("instruct", MODEL))
CARD_READS = ("reports",)  # the model card's facts: deliberately no deps (stages.common.model_card)


def instruct_paths(paths: Paths) -> dict[str, str]:
    """The trainer's path fields of this stage."""
    return trainer_paths(paths, "instruct", tokens="instruct_tokens", tokenizer="chat_tokenizer", model=MODEL)


@dataclass(frozen=True, kw_only=True)
class InstructSettings(TrainingSettings):
    """params.yaml `instruct`: the trainer's settings, `launch`, and how the instruction data
    is packed (`pack`)."""

    section: ClassVar[str] = "instruct"
    own: ClassVar[tuple[str, ...]] = ("launch", "pack")

    pack: InstructPackSettings = field(default_factory=InstructPackSettings)


@task(name="pack-instructions")
def pack(pp: InstructPackSettings, paths: Paths) -> dict:
    save_chat_tokenizer(paths.model(BASE), paths.chat_tokenizer, system_prompt=pp.system_prompt, eot=pp.eot)
    tok = AutoTokenizer.from_pretrained(paths.chat_tokenizer)
    data = Path(paths.instruct_data)
    meta = pack_instructions(read_examples(data / "train.jsonl"), read_examples(data / "validation.jsonl"), tok,
                             Path(paths.instruct_tokens), pp)
    meta.pop("audit", None)
    return meta


@flow(name="instruct", log_prints=True)
def instruct(section: dict, paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    timer = Timer()
    pp = InstructSettings.from_dict(section).pack
    meta = run_task(pack, pp, paths)
    timer.mark("pack")
    data = {k: v for k, v in meta.items() if isinstance(v, (int, float, str))}
    base = paths.model(BASE)
    card = card_facts("instruct", section, start=base, between=("instruct_data",),
                      data={**instruction_data(paths.reports), "tokens": data})
    summary = run_training("instruct", section, instruct_paths(paths), extra={"init_from": base, "loss_mask": True,
                                                                            "seq_len": pp.seq_len}, card=card,
                           settings=InstructSettings)
    timer.mark("train")
    print(f"instruct: {summary['steps']} steps, final loss {summary['final_train_loss']:.3f}")
    return training_report("instruct", summary, timer, paths, extra={"data": data})


def main() -> None:
    # the trainer's names and types now, its values once the flow has packed the data
    training_stage_main(instruct, instruct_paths, __doc__, settings=InstructSettings)


if __name__ == "__main__":
    main()
