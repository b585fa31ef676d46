"""PAL on GSM8K (Sec. 4.4): few-shot program-of-thought prompt (dscoder.eval.pal.PAL_SHOTS),
the completed `solution()` run in the sandbox, its printed answer compared with the reference."""

from __future__ import annotations

from dscoder.eval import contamination as contam
from dscoder.eval.benchmarks import Benchmark, Context, layers_text


class Gsm8kPal(Benchmark):
    name = "gsm8k_pal"
    executes = True

    def unavailable(self, ctx: Context) -> str | None:
        if ctx.settings.gsm8k_path is None:
            return "evaluate.gsm8k_path is null"
        return super().unavailable(ctx)

    def load(self, ctx: Context) -> tuple[list, dict]:
        from dscoder.eval.pal import load_gsm8k

        s = ctx.settings
        problems, bad = load_gsm8k(s.gsm8k_path)
        facts = {"n_total": len(problems), "rows_skipped": dict(sorted(bad.items()))}
        if not problems:
            facts["note"] = f"no usable GSM8K rows in {s.gsm8k_path}"
        return (problems[:s.gsm8k_limit] if s.gsm8k_limit else problems), facts

    def generation(self, ctx: Context):
        return ctx.generation(num_samples=1, temperature=0.0)

    def prompts(self, ctx: Context, items: list) -> list[str]:
        from dscoder.eval.generate import chat_prompt, uses_chat
        from dscoder.eval.pal import PAL_STOP, pal_prompt

        self.chat = uses_chat(ctx.tokenizer, self.generation(ctx))
        self.stop = () if self.chat else PAL_STOP
        return [chat_prompt(ctx.tokenizer, f"Write a Python program that prints the answer to: {p.question}")
                if self.chat else pal_prompt(p) for p in items]

    def score(self, ctx: Context, items: list, outputs: list[list[str]]) -> tuple[dict, dict]:
        from dscoder.eval.pal import evaluate_pal

        r = evaluate_pal(items, [c[0] for c in outputs], config=ctx.settings.sandbox, chat=self.chat,
                         allow_execution=ctx.settings.allow_execution)
        return ({"accuracy": r["accuracy"], "n": r["n"], "chat": self.chat,
                 "outcomes": dict(sorted(r["outcomes"].items())),
                 "sandbox_layers": layers_text(r["layers"])}, r["per_item"])

    def contamination(self, ctx: Context, per_item: dict) -> dict:
        lines = contam.gsm8k_line_ids(ctx.settings.gsm8k_path)
        return contam.contamination_view(
            per_item, lambda t: lines.get(t, t), ctx.matches.get(ctx.settings.decontam_name("gsm8k")),
            lambda v: {"accuracy": sum(o == "correct" for o in v) / len(v)})
