"""filter: data/raw/files.parquet → data/filtered/files.parquet (+ data/filtered/audit.parquet).

StarCoder rules (Sec. 2.1) and the parse check (Sec. 2.4); drops are counted per rule and
per language in reports/filter.json and every dropped file is listed in the audit.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from dscoder.data.filters import FilterSettings, FilterStep
from dscoder.data.step import merge_counts, total, tree
from dscoder.schemas import FILES
from stages.common import (RunnerSettings, Timer, load_params, run_flow, run_step, scratch, stage_args,
                           write_report, write_step_outputs)

IN = Path("data/raw/files.parquet")
OUT = Path("data/filtered/files.parquet")
AUDIT_OUT = Path("data/filtered/audit.parquet")


@flow(name="filter", log_prints=True)
def filter_files(settings: FilterSettings, runner: RunnerSettings, src: Path = IN, out: Path = OUT,
                 audit_out: Path = AUDIT_OUT) -> dict:
    timer = Timer()
    with scratch(out, "filter") as work:
        results = run_step(FilterStep(settings), src, work, runner, size_columns=["content"])
        timer.mark("filter")
        write_step_outputs(results, out, FILES, audit_out)
    timer.mark("write")
    c = merge_counts(results)
    dropped = tree(c, ("dropped",))
    langs = sorted(tree(c, ("in",)))
    per_lang = {lang: {"in": c[("in", lang)], "kept": c[("kept", lang)], "kept_bytes": c[("kept_bytes", lang)],
                       "dropped_bytes": c[("dropped_bytes", lang)], "dropped": dropped.get(lang, {})}
                for lang in langs}
    by_rule: dict[str, int] = {}
    for rules in dropped.values():
        for rule, n in rules.items():
            by_rule[rule] = by_rule.get(rule, 0) + n
    files_in, kept = total(c, ("in",)), total(c, ("kept",))
    report = {
        "files_in": files_in,
        "files_kept": kept,
        "files_dropped": files_in - kept,
        "bytes_kept": total(c, ("kept_bytes",)),
        "dropped_by_rule": dict(sorted(by_rule.items())),
        "languages": per_lang,
        "throughput": {"files_per_s": round(files_in / max(timer.marks["filter"], 1e-9), 1)},
    }
    print(f"filter: kept {kept} of {files_in} files; drops by rule: {report['dropped_by_rule']}")
    return write_report("filter", report, timer)


def main() -> None:
    args = stage_args(__doc__)
    params = load_params(args.params)
    settings = FilterSettings.from_dict(params.get("filter"), "filter")
    runner = RunnerSettings.from_dict(params.get("runner"), "runner")
    run_flow(filter_files, settings, runner, on=runner)


if __name__ == "__main__":
    main()
