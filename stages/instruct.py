"""instruct: <paths.models>/base-16k + paths.instruct_data → <paths.models>/instruct.

Sec. 3.7: the DeepSeek-Coder-Instruct prompt layout (system prompt, `### Instruction:` /
`### Response:` turns, <|EOT|> after each answer) is set as the tokenizer's chat template, so
`apply_chat_template` reproduces the training prompts; loss only on the answer tokens and
<|EOT|>; cosine schedule with warm-up; the same FSDP2 trainer as pretraining.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from transformers import AutoTokenizer

from dscoder.instruct import InstructPackParams, pack_instructions, read_examples, save_chat_tokenizer
from dscoder.paths import Paths
from stages.common import Timer, load_params, load_paths, stage_args
from stages.model_card import card_facts, instruction_data
from stages.training import check_training, run_training, trainer_paths, training_report, training_writes

BASE, MODEL = "base-16k", "instruct"
READS = ("instruct_data", ("models", BASE))
WRITES = ("chat_tokenizer", "instruct_tokens", *training_writes("instruct", MODEL))
CARD_READS = ("reports",)  # the model card's facts: deliberately no deps (stages.model_card)


def instruct_paths(paths: Paths) -> dict[str, str]:
    """The trainer's path fields of this stage."""
    return trainer_paths(paths, "instruct", tokens="instruct_tokens", tokenizer="chat_tokenizer", model=MODEL)


@task(name="pack-instructions")
def pack(pp: InstructPackParams, paths: Paths) -> dict:
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
    params, section = section, dict(section)
    pp = InstructPackParams.from_dict(section.pop("pack", None), "instruct.pack")
    meta = pack(pp, paths)
    timer.mark("pack")
    data = {k: v for k, v in meta.items() if isinstance(v, (int, float, str))}
    base = paths.model(BASE)
    card = card_facts("instruct", params, start=base, between=("instruct_data",),
                      data={**instruction_data(paths.reports), "tokens": data})
    summary = run_training("instruct", section, instruct_paths(paths), extra={"init_from": base, "loss_mask": True,
                                                                            "seq_len": pp.seq_len}, card=card)
    timer.mark("train")
    print(f"instruct: {summary['steps']} steps, final loss {summary['final_train_loss']:.3f}")
    return training_report("instruct", summary, timer, paths, extra={"data": data})


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    section, paths = params.get("instruct") or {}, load_paths(params)
    rest = dict(section)
    InstructPackParams.from_dict(rest.pop("pack", None), "instruct.pack")
    check_training("instruct", rest, instruct_paths(paths), validate=False)  # values once the flow has packed the data
    instruct(section, paths)


if __name__ == "__main__":
    main()
