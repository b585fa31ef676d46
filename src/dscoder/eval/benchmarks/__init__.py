"""The benchmark registry: every benchmark of the evaluate stage behind one interface.

A benchmark is a small class in its own module of this package. `run(ctx)` composes its four
steps, so each module only says what differs:

    load(ctx)                  -> (items, facts for the report)
    prompts(ctx, items)        -> one prompt per item (encoded BOS first, as training documents)
    score(ctx, items, outputs) -> (scores and counts for the report, outcome per item id)
    contamination(ctx, per_item) -> the contamination view: decontam's hits for this benchmark
                                  and the score on the items that never matched

`unavailable(ctx)` names why a benchmark cannot run (no FIM sentinels, no dataset, execution
not allowed, no held-out split); it is then skipped with that note, never a failed run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from dscoder.eval import contamination as contam
from dscoder.eval.settings import EvaluateSettings

@dataclass
class Context:
    """What every benchmark may use: the model, the settings and the stage's inputs."""

    model: Any
    tokenizer: Any
    settings: EvaluateSettings
    matches: dict[str, contam.BenchmarkMatches]
    """decontam's hits per benchmark name (dscoder.eval.contamination.load_matches)."""
    repos_path: Path
    tokens_dir: Path
    _heldout: dict | None = field(default=None, repr=False)

    def generation(self, **overrides):
        return self.settings.generation(**overrides)

    def heldout(self) -> dict[str, list[tuple[str, str, str]]] | None:
        """Code files of the held-out repositories (None: no held-out split); read once."""
        if self._heldout is None and (self.tokens_dir / "val.docs.parquet").is_file():
            self._heldout = heldout_files(self.repos_path, self.tokens_dir)
        return self._heldout


class Benchmark:
    """Base class; see the module docstring."""

    name = ""
    executes = False
    """Runs model-written code (needs `evaluate.allow_execution`)."""
    fim = False
    """Needs the FIM sentinels in the tokenizer."""
    heldout = False
    """Draws its items from the held-out repositories."""
    decontam = ""
    """Name of the benchmark whose decontam hits the contamination view shows."""
    stop: Sequence[str] = ()

    def unavailable(self, ctx: Context) -> str | None:
        if self.executes and not ctx.settings.allow_execution:
            return "evaluate.allow_execution is false: model-written code is never run without it"
        missing = missing_fim_sentinels(ctx.tokenizer) if self.fim else []
        if missing:
            return f"the tokenizer has no FIM sentinel token(s) {missing}"
        if self.heldout and ctx.heldout() is None:
            return f"no held-out split: {ctx.tokens_dir / 'val.docs.parquet'} is missing"
        if self.heldout and not ctx.heldout():
            return "the held-out repositories hold no code files"
        return None

    def load(self, ctx: Context) -> tuple[list, dict]:
        raise NotImplementedError

    def prompts(self, ctx: Context, items: list) -> list[str]:
        raise NotImplementedError

    def generate(self, ctx: Context, items: list, prompts: list[str]) -> list[list[str]]:
        from dscoder.eval.generate import generate_completions

        return generate_completions(ctx.model, ctx.tokenizer, prompts, self.generation(ctx), stop=self.stop)

    def generation(self, ctx: Context):
        return ctx.generation()

    def score(self, ctx: Context, items: list, outputs: list[list[str]]) -> tuple[dict, dict]:
        raise NotImplementedError

    def contamination(self, ctx: Context, per_item: dict) -> dict:
        return {"note": "held-out repositories: never in the training split"}

    def run(self, ctx: Context) -> dict:
        note = self.unavailable(ctx)
        if note:
            return skipped(note)
        items, facts = self.load(ctx)
        if not items:
            return {**skipped(facts.pop("note", "no items")), **facts}
        scores, per_item = self.score(ctx, items, self.generate(ctx, items, self.prompts(ctx, items)))
        return {"status": "ok", **scores, **facts, "contamination": self.contamination(ctx, per_item)}


def registry() -> dict[str, Benchmark]:
    """Every benchmark by its name in `evaluate.benchmarks`."""
    from dscoder.eval.benchmarks import crossfile, fim, humaneval, mbpp, pal, perplexity

    found = [humaneval.HumanEval(), fim.HumanEvalFim(), fim.RepoFim(), crossfile.CrossFile(),
             mbpp.Mbpp(), pal.Gsm8kPal(), perplexity.Perplexity()]
    return {b.name: b for b in found}


# ---------------------------------------------------------------------------- shared helpers


def skipped(note: str) -> dict:
    return {"status": "skipped", "note": note}


def layers_text(layers) -> str:
    return ",".join(layers) if layers else "none"


def evenly_spaced(items: list, n: int) -> list:
    """n items spread over the whole list (all when n is 0 or >= len)."""
    if n <= 0 or n >= len(items):
        return list(items)
    return [items[(i * len(items)) // n] for i in range(n)]


def seeded_sample(items: list, n: int, seed: int, salt: str) -> list:
    """n items drawn with a seeded RNG, kept in their original order (all when n is 0)."""
    if n <= 0 or n >= len(items):
        return list(items)
    keep = sorted(random.Random(f"{seed}:{salt}").sample(range(len(items)), n))
    return [items[i] for i in keep]


def missing_fim_sentinels(tokenizer) -> list[str]:
    """FIM control strings that are not single tokens of the tokenizer's vocabulary."""
    from dscoder.eval.fim_infill import FimSentinels

    s, vocab = FimSentinels(), tokenizer.get_vocab()
    return [t for t in (s.begin, s.hole, s.end) if t not in vocab]


def count_by(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def heldout_files(repos_path: Path, tokens_dir: Path) -> dict[str, list[tuple[str, str, str]]]:
    """Code files (every language but prose and config) of the held-out repositories (pack's
    validation split), per repository name: [(path, language, content)] in document order."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from dscoder.data.languages import NON_CODE
    from dscoder.data.repo_blocks import block_content

    ids = list(dict.fromkeys(pq.read_table(tokens_dir / "val.docs.parquet", columns=["repo_id"])
                             .column("repo_id").to_pylist()))
    table = ds.dataset(str(repos_path)).to_table(columns=["repo_id", "repo_name", "text", "files"],
                                                 filter=pc.field("repo_id").isin(ids))
    out: dict[str, list[tuple[str, str, str]]] = {}
    for row in table.to_pylist():
        files = [(f["path"], f["language"], block_content(row["text"], f)) for f in row["files"]
                 if f["language"] not in NON_CODE]
        if files:
            out[row["repo_name"]] = files
    return dict(sorted(out.items()))
