"""general_lm: paths.clean_repos → <paths.models>/general (default profile only).

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
from dscoder.mixture import general_lm_texts, train_general_tokenizer, write_texts
from dscoder.packing import read_repos
from dscoder.paths import Paths
from stages.common import Timer, load_params, load_paths, stage_args
from stages.model_card import DATA_STAGES, card_facts
from stages.training import check_training, run_training, trainer_paths, training_report, training_writes

MODEL = "general"
READS = ("clean_repos",)
WRITES = ("general_tokenizer", "general_tokens", *training_writes("general_lm", MODEL))


def general_lm_paths(paths: Paths) -> dict[str, str]:
    """The trainer's path fields of this stage."""
    return trainer_paths(paths, "general_lm", tokens="general_tokens", tokenizer="general_tokenizer", model=MODEL)


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
    params, section = section, dict(section)
    vocab = section.pop("vocab_size", 2048)
    seq_len = section.get("seq_len", 256)
    if not isinstance(vocab, int) or vocab < 300:
        raise ConfigError(f"general_lm.vocab_size: must be an integer >= 300, got {vocab!r}")
    data = corpus(vocab, seq_len, paths)
    timer.mark("corpus")
    card = card_facts("general_lm", params, before=DATA_STAGES, data={"corpus": data})
    summary = run_training("general_lm", section, general_lm_paths(paths), card=card)
    timer.mark("train")
    return training_report("general_lm", summary, timer, paths, extra={"data": data})


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    section, paths = params.get("general_lm") or {}, load_paths(params)
    check_training("general_lm", {k: v for k, v in section.items() if k != "vocab_size"}, general_lm_paths(paths),
                   validate=False)  # values once the flow has built the corpus
    general_lm(section, paths)


if __name__ == "__main__":
    main()
