"""tokenizer: paths.clean_repos → paths.tokenizer (a folder; loads with AutoTokenizer).

Sec. 3.2: byte-level BPE trained with HuggingFace `tokenizers` on a sample of the clean
corpus (the training repositories only: the validation split of `pack` is held out), with
BOS/EOS, the FIM sentinels, <|EOT|> and padding as special tokens. The sample is drawn per
file by a seeded hash, capped at `tokenizer.sample_bytes`, in two streaming passes over the
input (one row at a time), so it does not depend on the input's order.
The report gives the share of each language's bytes the sample took, and bytes per token per
language on the held-out repositories.

Memory: rows are read one at a time with `read_rows` (pages streamed; the held-out filter
tested on repo_id before a row is converted, row groups without a wanted row skipped) and
their text is decoded file by file (`Utf8Text`), never as one str of the whole document;
bytes per token encodes batches bounded per file. Peak RSS of the driver (MB, probe of the
innermost phase), default corpus (21.5 MB) -> 14x (339 MB, documents up to 8 MiB):
before, 301 -> 508 (x1.69: whole row groups decoded and 8 documents at a time converted to
str, a bytes-per-token batch of up to 4M + 8M characters); after, 272-290 -> 341-370 over 6 runs (x1.21-1.28;
what remains is the trainer, 61 -> 79 MB on the same 16 MB sample size, and pages of
multi-MiB rows).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from prefect import flow, task

from dscoder.data.doc_formats import DEFAULT_DOC_FORMAT, format_tokens
from dscoder.data.repo_docs.document import RepoDocsSettings
from dscoder.data.stream import read_rows, repo_ids
from dscoder.tokens.split import SPLIT_SEED, VAL_FRACTION, val_repo_ids
from dscoder.paths import Paths, report_refs
from dscoder.tokens.tokenizer import (TokenizerSettings, bytes_per_token, load_tokenizer, plan_sample, sampled_texts,
                               save_tokenizer, special_token_ids, train_tokenizer)
from stages.common import Timer, load_params, load_paths, run_flow, run_task, stage_args, write_report
from stages.common.progress import Progress, artifact_key

READS = ("clean_repos",)
WRITES = ("tokenizer", *report_refs("tokenizer"))


def _docs(src: str, heldout: frozenset[str], want_heldout: bool, progress: Progress | None = None):
    docs = read_rows(src, keep=lambda repo_id: (repo_id in heldout) == want_heldout, lazy=("text",))
    return progress.wrap(docs) if progress is not None else docs


@task(name="train-bpe")
def train(src: str, heldout: frozenset[str], params: TokenizerSettings, out: str,
          extra_tokens: tuple[str, ...] = (), n_train: int | None = None) -> dict:
    # two passes over the training documents (rows): plan the sample, then feed it to BPE
    with Progress("tokenizer", 2 * n_train if n_train is not None else None, "doc",
                  desc="tokenizer: sample and train (2 passes)") as progress:
        plan = plan_sample(_docs(src, heldout, False, progress), params)
        if not plan.report()["bytes_available"]:
            raise SystemExit(f"tokenizer: {src} holds no training text (an empty corpus: see the ingest report and "
                             "its audit for why); a tokenizer cannot be trained on nothing")
        tok, info = train_tokenizer(sampled_texts(_docs(src, heldout, False, progress), plan, params),
                                    params, extra_tokens=extra_tokens)
    digest = save_tokenizer(tok, out, params, info)
    return {**info, "hash": digest, "sample": plan.report()}


@task(name="bytes-per-token")
def measure(src: str, heldout: frozenset[str], out: str, n_heldout: int | None = None) -> dict:
    with Progress("tokenizer", n_heldout, "doc", desc="tokenizer: bytes/token on held-out documents",
                  key=artifact_key("tokenizer", "measure-progress")) as progress:
        return bytes_per_token(load_tokenizer(out), _docs(src, heldout, True, progress))


@flow(name="tokenizer", log_prints=True)
def tokenizer(params: TokenizerSettings, val_fraction: float, split_seed: int,
              doc_format: str = DEFAULT_DOC_FORMAT, paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    src, out = Path(paths.clean_repos), Path(paths.tokenizer)
    timer = Timer()
    rows = Counter(repo_ids(src))  # documents per repository (repo_docs splits a large one)
    heldout = val_repo_ids(rows, val_fraction, split_seed)
    n_heldout = sum(n for r, n in rows.items() if r in heldout)
    # the repository-document format's own tokens (none for deepseek) become single ids
    info = run_task(train, str(src), heldout, params, str(out), format_tokens(doc_format),
                    sum(rows.values()) - n_heldout)
    timer.mark("train")
    bpt = run_task(measure, str(src), heldout, str(out), n_heldout)
    timer.mark("measure")
    tok = load_tokenizer(out)
    sample = info.pop("sample")
    report = {
        "vocab_size": tok.get_vocab_size(),
        "special_ids": special_token_ids(tok),
        "hash": info["hash"],
        "training": {k: v for k, v in info.items() if k != "hash"},
        "sample": sample,
        "heldout_repos": len(heldout),
        "bytes_per_token": bpt,
    }
    print(f"tokenizer: {report['vocab_size']} ids; sample {sample['bytes_sampled']} of "
          f"{sample['bytes_available']} bytes; held-out bytes/token: {bpt.get('all', {}).get('bytes_per_token')}")
    return write_report("tokenizer", report, timer, paths)


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    pack = params.get("pack") or {}  # only the split keys (the stage's params deps), so not PackSettings
    docs = RepoDocsSettings.from_dict(params.get("repo_docs"), "repo_docs")
    run_flow(tokenizer, TokenizerSettings.from_dict(params.get("tokenizer"), "tokenizer"),
             float(pack.get("val_fraction", VAL_FRACTION)), int(pack.get("split_seed", SPLIT_SEED)),
             doc_format=docs.doc_format, paths=load_paths(params))


if __name__ == "__main__":
    main()
