"""tokenizer: data/clean/repos.parquet → artifacts/tokenizer/ (loads with AutoTokenizer).

Sec. 3.2: byte-level BPE trained with HuggingFace `tokenizers` on a sample of the clean
corpus (the training repositories only: the validation split of `pack` is held out), with
BOS/EOS, the FIM sentinels, <|EOT|> and padding as special tokens. The report gives bytes per
token per language on the held-out repositories.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from prefect import flow, task

from dscoder.packing import read_repos, val_repo_ids
from dscoder.tokenizer import (TokenizerParams, bytes_per_token, load_tokenizer, save_tokenizer, special_token_ids,
                               train_tokenizer, training_texts)
from stages.common import Timer, load_params, stage_args, write_report

IN = Path("data/clean/repos.parquet")
OUT = Path("artifacts/tokenizer")


@task(name="train-bpe")
def train(src: str, heldout: frozenset[str], params: TokenizerParams, out: str) -> dict:
    docs = (d for d in read_repos(src) if d["repo_id"] not in heldout)
    tok, info = train_tokenizer(training_texts(docs, params.sample_chars), params)
    digest = save_tokenizer(tok, out, params, info)
    return {**info, "hash": digest}


@task(name="bytes-per-token")
def measure(src: str, heldout: frozenset[str], out: str) -> dict:
    return bytes_per_token(load_tokenizer(out), (d for d in read_repos(src) if d["repo_id"] in heldout))


@flow(name="tokenizer", log_prints=True)
def tokenizer(params: TokenizerParams, val_fraction: float, split_seed: int, src: Path = IN, out: Path = OUT) -> dict:
    timer = Timer()
    ids = pq.read_table(src, columns=["repo_id"]).column("repo_id").to_pylist()
    heldout = val_repo_ids(ids, val_fraction, split_seed)
    info = train(str(src), heldout, params, str(out))
    timer.mark("train")
    bpt = measure(str(src), heldout, str(out))
    timer.mark("measure")
    tok = load_tokenizer(out)
    report = {
        "vocab_size": tok.get_vocab_size(),
        "special_ids": special_token_ids(tok),
        "hash": info["hash"],
        "training": {k: v for k, v in info.items() if k != "hash"},
        "heldout_repos": len(heldout),
        "bytes_per_token": bpt,
    }
    print(f"tokenizer: {report['vocab_size']} ids; held-out bytes/token: {bpt.get('all', {}).get('bytes_per_token')}")
    return write_report("tokenizer", report, timer)


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    pack = params.get("pack") or {}
    tokenizer(TokenizerParams.from_dict(params.get("tokenizer"), "tokenizer"),
              float(pack.get("val_fraction", 0.01)), int(pack.get("split_seed", 0)))


if __name__ == "__main__":
    main()
