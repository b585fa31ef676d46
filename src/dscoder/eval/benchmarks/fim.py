"""Single-line infilling (Sec. 4.2), line exact match, PSM prompt
`<fim_begin>prefix<fim_hole>suffix<fim_end>` (BOS first):

- humaneval_fim: each line of HumanEval's canonical solutions masked in turn (Python);
- repo_fim: Python, Java and JavaScript lines, from the benchmark file at `evaluate.fim.path`
  when given, else from the held-out repositories (pack's validation split)."""

from __future__ import annotations

import dataclasses

from dscoder.eval import contamination as contam
from dscoder.eval.benchmarks import Benchmark, Context, count_by, seeded_sample
from dscoder.eval.fim_infill import FimTask


def clip_task(t: FimTask, max_chars: int) -> FimTask:
    """Keep at most `max_chars` of prefix (its end) and of suffix (its start), at line
    boundaries, so the PSM prompt never has to be cut from the left (that would drop the
    FIM begin sentinel)."""
    prefix, suffix = t.prefix, t.suffix
    if len(prefix) > max_chars:
        cut = prefix[-max_chars:]
        prefix = cut[cut.find("\n") + 1:] if "\n" in cut else cut
    if len(suffix) > max_chars:
        cut = suffix[:max_chars]
        suffix = cut[:cut.rfind("\n")] if "\n" in cut[1:] else cut
    return dataclasses.replace(t, prefix=prefix, suffix=suffix)


class _Fim(Benchmark):
    fim = True
    stop = ("\n",)

    def generation(self, ctx: Context):
        return ctx.generation(max_new_tokens=ctx.settings.fim.max_new_tokens, num_samples=1,
                              temperature=0.0, chat="never")

    def prompts(self, ctx: Context, items: list) -> list[str]:
        from dscoder.eval.fim_infill import fim_prompt

        return [fim_prompt(t) for t in items]

    def score(self, ctx: Context, items: list, outputs: list[list[str]]) -> tuple[dict, dict]:
        from dscoder.eval.fim_infill import line_exact_match, line_matches

        preds = [c[0] for c in outputs]
        metrics = line_exact_match(preds, items)
        n = count_by(t.language for t in items)
        per_language = {k.split("/", 1)[1]: {"exact_match": v, "n": n[k.split("/", 1)[1]]}
                        for k, v in metrics.items() if "/" in k}
        hits = {t.task_id: line_matches(p, t.target) for t, p in zip(items, preds)}
        return {"exact_match": metrics["exact_match"], "n": len(items), "per_language": per_language}, hits


class HumanEvalFim(_Fim):
    name = "humaneval_fim"

    def load(self, ctx: Context) -> tuple[list, dict]:
        from dscoder.eval.fim_infill import humaneval_fim_tasks
        from dscoder.eval.humaneval import load_humaneval

        tasks = humaneval_fim_tasks(load_humaneval())
        chosen = seeded_sample(tasks, ctx.settings.fim.humaneval_tasks, ctx.settings.seed, "humaneval-fim")
        problems = {contam.decontam_item_id("humaneval", t.task_id) for t in chosen}
        return chosen, {"n_total": len(tasks), "problems": len(problems)}

    def contamination(self, ctx: Context, per_item: dict) -> dict:
        return contam.contamination_view(
            per_item, lambda t: contam.decontam_item_id("humaneval", t),
            ctx.matches.get(ctx.settings.decontam_name("humaneval")),
            lambda v: {"exact_match": sum(v) / len(v)})


class RepoFim(_Fim):
    name = "repo_fim"

    def unavailable(self, ctx: Context) -> str | None:
        self.heldout = ctx.settings.fim.path is None
        return super().unavailable(ctx)

    def load(self, ctx: Context) -> tuple[list, dict]:
        from dscoder.eval.fim_infill import load_fim_tasks, repo_fim_tasks

        f, seed = ctx.settings.fim, ctx.settings.seed
        if f.path is not None:
            tasks, bad = load_fim_tasks(f.path)
            return [clip_task(t, f.max_context_chars) for t in tasks], {
                "source": f.path, "rows_skipped": dict(sorted(bad.items()))}
        repos = ctx.heldout()
        files = [(f"{name}/{path}", lang, text) for name, fs in repos.items() for path, lang, text in fs]
        files = seeded_sample(files, f.repo_files, seed, "repo-fim")
        tasks = [clip_task(t, f.max_context_chars)
                 for t in repo_fim_tasks(files, per_file=f.repo_tasks_per_file, seed=seed)]
        facts = {"source": "held-out repositories", "files": len(files), "repos": len(repos)}
        if not tasks:
            facts["note"] = "no maskable Python, Java or JavaScript lines in the held-out files"
        return tasks, facts

    def contamination(self, ctx: Context, per_item: dict) -> dict:
        if ctx.settings.fim.path is not None:
            return {"note": "benchmark file: not among decontam's benchmarks"}
        return super().contamination(ctx, per_item)
