"""MBPP (Sec. 4.1): the JSONL at `evaluate.mbpp_path`, 3-shot prompt (MBPP's own worked
examples, task ids 2-4, then the task and its tests, `[BEGIN]`), judged in the sandbox."""

from __future__ import annotations

from dscoder.eval.benchmarks import Context
from dscoder.eval.benchmarks.humaneval import Execution


class Mbpp(Execution):
    name = "mbpp"

    def unavailable(self, ctx: Context) -> str | None:
        if ctx.settings.mbpp_path is None:
            return "evaluate.mbpp_path is null"
        return super().unavailable(ctx)

    def load(self, ctx: Context) -> tuple[list, dict]:
        from dscoder.eval.humaneval import load_mbpp

        s = ctx.settings
        problems, bad = load_mbpp(s.mbpp_path, shots=s.mbpp_shots)
        facts = {"n_total": len(problems), "shots": s.mbpp_shots, "rows_skipped": dict(sorted(bad.items()))}
        if not problems:
            facts["note"] = f"no usable MBPP rows in {s.mbpp_path}"
        return (problems[:s.mbpp_limit] if s.mbpp_limit else problems), facts
