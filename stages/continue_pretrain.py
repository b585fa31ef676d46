"""continue_pretrain (v1.5): a general causal LM + the clean corpus → <paths.models>/v1.5.

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
from dscoder.mixture import MixtureParams, corpus_sources, write_mixture
from dscoder.packing import read_repos
from dscoder.paths import Paths
from stages.common import Timer, load_params, load_paths, stage_args
from stages.model_card import DATA_STAGES, card_facts
from stages.training import check_training, run_training, trainer_paths, training_report, training_writes

MODEL = "v1.5"
READS = ("clean_repos", "continue_pretrain.init_from")
WRITES = ("v15_tokens", *training_writes("continue_pretrain", MODEL))


def continue_pretrain_paths(paths: Paths) -> dict[str, str]:
    """The trainer's path fields of this stage (the tokenizer is the starting model's: the flow sets it)."""
    return trainer_paths(paths, "continue_pretrain", tokens="v15_tokens", model=MODEL)


@task(name="build-mixture")
def mixture(init_from: str, mp: MixtureParams, paths: Paths) -> dict:
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
    params, section = section, dict(section)
    init_from = section.pop("init_from", None)
    if not init_from or not Path(init_from, "config.json").is_file():
        raise ConfigError(f"continue_pretrain.init_from: not a Hugging Face model directory: {init_from!r}")
    mp = MixtureParams.from_dict(section.pop("mixture", None), "continue_pretrain.mixture")
    data = mixture(init_from, mp, paths)
    timer.mark("mixture")
    card = card_facts("continue_pretrain", params, start=init_from, before=DATA_STAGES, data={"mixture": data})
    summary = run_training("continue_pretrain", section, {**continue_pretrain_paths(paths), "tokenizer_dir": init_from},
                           extra={"init_from": init_from, "seq_len": mp.seq_len}, card=card)
    timer.mark("train")
    return training_report("continue_pretrain", summary, timer, paths, extra={"data": data})


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    section, paths = params.get("continue_pretrain") or {}, load_paths(params)
    rest = {k: v for k, v in section.items() if k not in ("init_from", "mixture")}
    MixtureParams.from_dict(section.get("mixture"), "continue_pretrain.mixture")
    check_training("continue_pretrain", rest, continue_pretrain_paths(paths), validate=False)  # values once the mixture is built
    continue_pretrain(section, paths)


if __name__ == "__main__":
    main()
