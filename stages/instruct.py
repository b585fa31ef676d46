"""instruct: artifacts/models/base-16k + data/instruct → artifacts/models/instruct.

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
from stages.common import Timer, load_params, run_flow, run_task, stage_args
from stages.common.model_card import card_facts, instruction_data
from stages.common.training import TrainingSettings, check_training, run_training, training_report

BASE = "artifacts/models/base-16k"
DATA = Path("data/instruct")
TOKENS = Path("data/instruct_tokens")
CHAT_TOKENIZER = "artifacts/tokenizer-chat"
PATHS = {
    "tokens_dir": str(TOKENS),
    "tokenizer_dir": CHAT_TOKENIZER,
    "checkpoint_dir": "checkpoints/instruct",
    "metrics_dir": "reports/instruct",
    "export_dir": "artifacts/models/instruct",
    "summary_path": "checkpoints/instruct/summary.json",
}


@dataclass(frozen=True, kw_only=True)
class InstructSettings(TrainingSettings):
    """params.yaml `instruct`: the trainer's settings, `launch`, and how the instruction data
    is packed (`pack`)."""

    section: ClassVar[str] = "instruct"
    own: ClassVar[tuple[str, ...]] = ("launch", "pack")

    pack: InstructPackSettings = field(default_factory=InstructPackSettings)


@task(name="pack-instructions")
def pack(pp: InstructPackSettings) -> dict:
    save_chat_tokenizer(BASE, CHAT_TOKENIZER, system_prompt=pp.system_prompt, eot=pp.eot)
    tok = AutoTokenizer.from_pretrained(CHAT_TOKENIZER)
    meta = pack_instructions(read_examples(DATA / "train.jsonl"), read_examples(DATA / "validation.jsonl"), tok,
                             TOKENS, pp)
    meta.pop("audit", None)
    return meta


@flow(name="instruct", log_prints=True)
def instruct(section: dict) -> dict:
    timer = Timer()
    pp = InstructSettings.from_dict(section).pack
    meta = run_task(pack, pp)
    timer.mark("pack")
    data = {k: v for k, v in meta.items() if isinstance(v, (int, float, str))}
    card = card_facts("instruct", section, start=BASE, between=("instruct_data",),
                      data={**instruction_data(), "tokens": data})
    summary = run_training("instruct", section, PATHS, extra={"init_from": BASE, "loss_mask": True,
                                                               "seq_len": pp.seq_len}, card=card,
                           settings=InstructSettings)
    timer.mark("train")
    print(f"instruct: {summary['steps']} steps, final loss {summary['final_train_loss']:.3f}")
    return training_report("instruct", summary, timer, extra={"data": data})


def main() -> None:
    args = stage_args(__doc__)
    section = load_params(args.params).get("instruct") or {}
    # the trainer's names and types now, its values once the flow has packed the data
    check_training("instruct", section, PATHS, validate=False, settings=InstructSettings)
    run_flow(instruct, section)


if __name__ == "__main__":
    main()
