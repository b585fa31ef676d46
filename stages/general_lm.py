"""general_lm: data/clean/repos.parquet → artifacts/models/general (default profile only).

v1.5 (Sec. 5) continues pretraining from a general LLM (DeepSeek-LLM-7B in the paper). So
that the default profile runs offline, this stage trains a small general model of its own on
the corpus's natural-language share (prose files and docstrings), with its own tokenizer
(not dscoder's): `continue_pretrain` then shows it works from a foreign tokenizer. With a
real general model, point `continue_pretrain.init_from` at it and this stage is not needed.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from dscoder.config import ConfigError
from dscoder.io import atomic_path
from dscoder.train.mixture import general_lm_texts, train_general_tokenizer, write_texts
from dscoder.data.stream import read_repos
from stages.common import Timer, load_params, run_flow, run_task, stage_args
from stages.common.model_card import DATA_STAGES, card_facts
from stages.common.training import check_training, run_training, training_report

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
    params, section = section, dict(section)
    vocab = section.pop("vocab_size", 2048)
    seq_len = section.get("seq_len", 256)
    if not isinstance(vocab, int) or vocab < 300:
        raise ConfigError(f"general_lm.vocab_size: must be an integer >= 300, got {vocab!r}")
    data = run_task(corpus, vocab, seq_len)
    timer.mark("corpus")
    card = card_facts("general_lm", params, before=DATA_STAGES, data={"corpus": data})
    summary = run_training("general_lm", section, PATHS, card=card)
    timer.mark("train")
    return training_report("general_lm", summary, timer, extra={"data": data})


def main() -> None:
    args = stage_args(__doc__)
    section = load_params(args.params).get("general_lm") or {}
    check_training("general_lm", {k: v for k, v in section.items() if k != "vocab_size"}, PATHS,
                   validate=False)  # values once the flow has built the corpus
    run_flow(general_lm, section)


if __name__ == "__main__":
    main()
