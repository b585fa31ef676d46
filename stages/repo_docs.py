"""repo_docs: paths.filtered_files → paths.repo_docs (+ paths.repo_docs_audit).

One document per repository, files in dependency order (Sec. 2.2; `repo_docs.algorithm`),
streamed in byte-bounded batches of whole repositories; a repository larger than
`repo_docs.max_doc_bytes` becomes several documents cut along its order (audited as `split`).
The report gives, per language, edges found/resolved, and edges respected on and off cycles
for the algorithm used.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from prefect import flow

from dscoder.data.repo_docs.document import LanguageStats, RepoDocsSettings
from dscoder.data.repo_docs.step import RepoDocsStep
from dscoder.data.step import merge_counts, tree
from dscoder.paths import Paths, report_refs
from dscoder.schemas import REPOS
from stages.common import (RunnerSettings, Timer, data_stage_main, load_paths, run_step, scratch, write_report,
                           write_step_outputs)

READS = ("filtered_files",)
WRITES = ("repo_docs", "repo_docs_audit", *report_refs("repo_docs"))


@flow(name="repo_docs", log_prints=True)
def repo_docs(settings: RepoDocsSettings, runner: RunnerSettings, paths: Paths | None = None) -> dict:
    paths = paths or load_paths()
    src, out, audit_out = Path(paths.filtered_files), Path(paths.repo_docs), Path(paths.repo_docs_audit)
    timer = Timer()
    with scratch(out, "repo_docs") as work:
        results = run_step(RepoDocsStep(settings), src, work, runner, size_columns=["content"])
        timer.mark("order")
        write_step_outputs(results, out, REPOS, audit_out)
    timer.mark("write")
    c = merge_counts(results)
    merged: dict[str, LanguageStats] = defaultdict(LanguageStats)
    for r in results:
        for lang, st in r.extra["languages"].items():
            merged[lang].add(st)
    report = {
        "mode": settings.mode,
        "order": settings.order,
        "algorithm": settings.algorithm,
        "doc_format": settings.doc_format,
        "repos": c[("repos",)],
        "documents": c[("documents",)],
        "repos_split": c[("repos_split",)],
        "files": c[("files",)],
        "cycles_broken": c[("cycles_broken",)],
        "problems": tree(c, ("problems",)),  # files parsed partially or by fallback; none dropped
        "languages": {lang: st.as_dict() for lang, st in sorted(merged.items()) if st.files},
        "throughput": {"files_per_s": round(c[("files",)] / max(timer.marks["order"], 1e-9), 1)},
    }
    print(f"repo_docs: {report['repos']} repositories ({report['repos_split']} split, {report['documents']} "
          f"documents), {report['files']} files, {report['cycles_broken']} cycles broken")
    return write_report("repo_docs", report, timer, paths)


def main() -> None:
    data_stage_main(repo_docs, RepoDocsSettings, __doc__)


if __name__ == "__main__":
    main()
