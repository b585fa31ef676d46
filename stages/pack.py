"""pack: paths.clean_repos + paths.tokenizer → paths.tokens (+ paths.tokens_audit).

Sec. 3.1: FIM at rate 0.5 (PSM), on the unit `pack.fim.unit` names (file blocks, training
windows, or whole documents as the paper writes), documents joined with EOS and cut into
`seq_len` blocks; train/validation split by repository. The input is read in batches of
about `runner.batch_bytes` and the outputs are written as they come. The token folder holds
train.bin / val.bin (uint16 when the vocabulary fits), meta.json and the index that traces
every token back to its repository, file and FIM role. The report gives, per split, the share
of FIM units transformed, the share of training windows holding a complete FIM example
(measured on the written token files) and the share of examples that fit one window.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from prefect import flow

from dscoder.data.stream import iter_slices
from dscoder.io import write_parquet
from dscoder.lineage.metrics import pack_by_language
from dscoder.tokens.pack import PackSettings, pack_repos
from dscoder.paths import Paths, report_refs
from dscoder.schemas import AUDIT
from stages.common import RunnerSettings, Timer, load_params, load_paths, run_flow, stage_args, write_report
from stages.common.progress import Progress

READS = ("clean_repos", "tokenizer")
WRITES = ("tokens", "tokens_audit", *report_refs("pack"))


@flow(name="pack", log_prints=True)
def pack(params: PackSettings, runner: RunnerSettings, paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    src, tokenizer_dir, out = Path(paths.clean_repos), Path(paths.tokenizer), Path(paths.tokens)
    timer = Timer()
    # Encoding runs in the library's own process pool (spawned workers, bounded read-ahead);
    # `runner.workers` sets its size. The output depends on neither it nor the batch size.
    with Progress("pack", None, "doc", desc="pack: documents") as progress:
        res = pack_repos(src, out, tokenizer_dir=tokenizer_dir, params=params, workers=runner.workers,
                         batch_bytes=runner.batch_bytes,
                         on_progress=lambda done, total: (progress.set_total(total), progress.update_to(done)))
    timer.mark("pack")
    audit = res.pop("audit")
    write_parquet(paths.tokens_audit, pa.Table.from_pylist(audit, schema=AUDIT))
    fim = res["fim"]["stats"]
    for s in ("train", "val"):
        print(f"pack: {s}: {res['splits'][s]['n_tokens']} tokens; FIM unit {params.fim.unit}: "
              f"{fim[s]['units_transformed_share']} of units transformed, "
              f"{fim[s]['complete_window_share']} of windows hold a complete example")
    # tokens and files per language per split, from the segments index (sums to n_tokens)
    by_language = {s: pack_by_language((t for _, t in iter_slices(out / f"{s}.segments.parquet", None)),
                                       res["splits"][s]["n_tokens"]) for s in ("train", "val")}
    return write_report("pack", {**res, "audit_rows": len(audit), "by_language": by_language}, timer, paths)


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    run_flow(pack, PackSettings.from_dict(params.get("pack"), "pack"), RunnerSettings.from_dict(params.get("runner"), "runner"),
             load_paths(params))


if __name__ == "__main__":
    main()
