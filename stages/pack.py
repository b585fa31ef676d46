"""pack: data/clean/repos.parquet + artifacts/tokenizer → data/tokens/.

Sec. 3.1: FIM per document *before* packing (rate 0.5, PSM), documents joined with EOS and
cut into `seq_len` blocks; train/validation split by repository. `data/tokens/` holds
train.bin / val.bin (uint16 when the vocabulary fits), meta.json and the index that traces
every token back to its repository, file and FIM role.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from prefect import flow

from dscoder.io import write_parquet
from dscoder.lineage.metrics import pack_by_language
from dscoder.packing import PackParams, pack_repos
from dscoder.schemas import AUDIT
from stages.common import RunnerSettings, Timer, load_params, stage_args, write_report

IN = Path("data/clean/repos.parquet")
TOKENIZER = Path("artifacts/tokenizer")
OUT = Path("data/tokens")
AUDIT_OUT = Path("data/tokens_audit.parquet")


@flow(name="pack", log_prints=True)
def pack(params: PackParams, runner: RunnerSettings, src: Path = IN, tokenizer_dir: Path = TOKENIZER,
         out: Path = OUT) -> dict:
    timer = Timer()
    # Encoding runs in the library's own process pool (spawned workers, bounded read-ahead);
    # `runner.workers` sets its size. The output does not depend on it.
    res = pack_repos(src, out, tokenizer_dir=tokenizer_dir, params=params, workers=runner.workers)
    timer.mark("pack")
    audit = res.pop("audit")
    write_parquet(AUDIT_OUT, pa.Table.from_pylist(audit, schema=AUDIT))
    print(f"pack: {res['splits']['train']['n_tokens']} train tokens, {res['splits']['val']['n_tokens']} validation tokens")
    # tokens and files per language per split, from the segments index (sums to n_tokens)
    import pyarrow.parquet as pq

    by_language = {s: pack_by_language(pq.read_table(out / f"{s}.segments.parquet"), res["splits"][s]["n_tokens"])
                   for s in ("train", "val")}
    return write_report("pack", {**res, "audit_rows": len(audit), "by_language": by_language}, timer)


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    pack(PackParams.from_dict(params.get("pack"), "pack"), RunnerSettings.from_dict(params.get("runner"), "runner"))


if __name__ == "__main__":
    main()
