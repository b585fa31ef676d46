"""continue_pretrain (v1.5): a general causal LM + the clean corpus → artifacts/models/v1.5.

Sec. 5, Table 9: start from a general LLM (any HF causal-LM directory in
`continue_pretrain.init_from`), tokenize with *that model's* tokenizer, build the code-heavy
mixture (source code 70%, Markdown/StackExchange 10%, natural language about code 7%, about
math 7%, general 6%) and continue with the next-token objective only (no FIM).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from transformers import AutoTokenizer

from dscoder.config import ConfigError
from dscoder.train.mixture import MixtureParams, corpus_sources, write_mixture
from dscoder.data.stream import read_repos
from stages.common import Timer, load_params, run_flow, run_task, stage_args
from stages.common.model_card import DATA_STAGES, card_facts
from stages.common.training import check_training, run_training, training_report

IN = Path("data/clean/repos.parquet")
TOKENS = Path("data/v1.5_tokens")
PATHS = {
    "tokens_dir": str(TOKENS),
    "checkpoint_dir": "checkpoints/continue_pretrain",
    "metrics_dir": "reports/continue_pretrain",
    "export_dir": "artifacts/models/v1.5",
    "summary_path": "checkpoints/continue_pretrain/summary.json",
}


@task(name="build-mixture")
def mixture(init_from: str, mp: MixtureParams) -> dict:
    tok = AutoTokenizer.from_pretrained(init_from)  # the general model's own tokenizer
    sources, stats = corpus_sources(read_repos(IN), mp)
    meta = write_mixture(sources, tok, TOKENS, mp)
    return {"sources": {k: len(v) for k, v in sources.items()},
            "mixture": meta.get("mixture", {}), "train_tokens": meta.get("train_tokens"),
            "val_tokens": meta.get("val_tokens")}


@flow(name="continue_pretrain", log_prints=True)
def continue_pretrain(section: dict) -> dict:
    timer = Timer()
    params, section = section, dict(section)
    init_from = section.pop("init_from", None)
    if not init_from or not Path(init_from, "config.json").is_file():
        raise ConfigError(f"continue_pretrain.init_from: not a Hugging Face model directory: {init_from!r}")
    mp = MixtureParams.from_dict(section.pop("mixture", None), "continue_pretrain.mixture")
    data = run_task(mixture, init_from, mp)
    timer.mark("mixture")
    card = card_facts("continue_pretrain", params, start=init_from, before=DATA_STAGES, data={"mixture": data})
    summary = run_training("continue_pretrain", section, {**PATHS, "tokenizer_dir": init_from},
                           extra={"init_from": init_from, "seq_len": mp.seq_len}, card=card)
    timer.mark("train")
    return training_report("continue_pretrain", summary, timer, extra={"data": data})


def main() -> None:
    args = stage_args(__doc__)
    section = load_params(args.params).get("continue_pretrain") or {}
    rest = {k: v for k, v in section.items() if k not in ("init_from", "mixture")}
    MixtureParams.from_dict(section.get("mixture"), "continue_pretrain.mixture")
    check_training("continue_pretrain", rest, PATHS, validate=False)  # values once the mixture is built
    run_flow(continue_pretrain, section)


if __name__ == "__main__":
    main()
