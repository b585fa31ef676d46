"""filter: paths.raw_files → paths.filtered_files (+ paths.filtered_audit).

StarCoder rules (Sec. 2.1) and the parse check (Sec. 2.4); drops are counted per rule and
per language in reports/filter.json and every dropped file is listed in the audit.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from dscoder.data.filters import FilterSettings, FilterStep
from dscoder.data.step import merge_counts, total, tree
from dscoder.paths import Paths, report_refs
from dscoder.schemas import FILES
from stages.common import (RunnerSettings, Timer, data_stage_main, load_paths, run_step, scratch, write_report,
                           write_step_outputs)

READS = ("raw_files",)
WRITES = ("filtered_files", "filtered_audit", *report_refs("filter"))


@flow(name="filter", log_prints=True)
def filter_files(settings: FilterSettings, runner: RunnerSettings, src: Path | None = None, out: Path | None = None,
                 audit_out: Path | None = None, paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    src, out = Path(src or paths.raw_files), Path(out or paths.filtered_files)
    audit_out = Path(audit_out or paths.filtered_audit)
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
    return write_report("filter", report, timer, paths)


def main() -> None:
    data_stage_main(filter_files, FilterSettings, __doc__)


if __name__ == "__main__":
    main()
