"""Cross-file completion (Sec. 4.3, CrossCodeEval's metrics): lines of held-out repositories
that use a name defined in another file of the repository, every language with a tree-sitter
grammar; prompt = in-file prefix, or BM25-retrieved chunks of the other files (each line a
comment, headed by its path) then the prefix; EM, ES, ID-EM, ID-F1 (dscoder.eval.code_metrics)."""

from __future__ import annotations

from dscoder.eval.benchmarks import Benchmark, Context, count_by, seeded_sample


class CrossFile(Benchmark):
    name = "crossfile"
    heldout = True

    def modes(self, ctx: Context) -> tuple[str, ...]:
        from dscoder.eval.crossfile import MODES

        return MODES if ctx.settings.crossfile.retrieval else MODES[:1]

    def load(self, ctx: Context) -> tuple[list, dict]:
        from dscoder.eval.crossfile import completion_points

        c, seed = ctx.settings.crossfile, ctx.settings.seed
        points = completion_points(ctx.heldout().items(), per_file=c.points_per_file, seed=seed)
        chosen = seeded_sample(points, c.points, seed, "crossfile")
        facts = {"n_total": len(points), "repos": len({p.repo for p in chosen}),
                 "languages": count_by(p.language for p in chosen)}
        if not chosen:
            facts["note"] = "no completion point uses a symbol defined in another file of a held-out repository"
        return chosen, facts

    def generation(self, ctx: Context):
        c = ctx.settings.crossfile
        return ctx.generation(max_new_tokens=c.max_new_tokens, num_samples=1, temperature=0.0, chat="never",
                              max_prompt_tokens=c.max_prompt_tokens - c.max_new_tokens)

    def prompts(self, ctx: Context, items: list) -> list[str]:
        """The in-file prompts of every point, then (retrieval on) the BM25 ones."""
        from dscoder.eval.crossfile import crossfile_prompts

        c = ctx.settings.crossfile
        return [q for mode in self.modes(ctx) for q in crossfile_prompts(
            ctx.tokenizer, ctx.heldout(), items, mode, max_prompt_tokens=c.max_prompt_tokens,
            max_new_tokens=c.max_new_tokens, retrieved_tokens=c.retrieved_tokens)]

    def score(self, ctx: Context, items: list, outputs: list[list[str]]) -> tuple[dict, dict]:
        from dscoder.eval.crossfile import score

        out = {}
        for i, mode in enumerate(self.modes(ctx)):
            preds = [c[0] for c in outputs[i * len(items):(i + 1) * len(items)]]
            out[mode] = {k: v for k, v in score(preds, items).items() if k != "n"}
        return {**out, "n": len(items)}, {}
