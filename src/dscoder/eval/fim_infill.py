"""Single-line infilling (docs/recipe.md §3, paper Sec. 4.2, after InCoder/SantaCoder): a line of
code is masked; the model sees the rest in PSM order and must produce the line; the metric is
line exact match. Sec. 4.2 evaluates Python, Java and JavaScript: tasks come from a benchmark
file when one is given (JSONL: prefix, suffix, middle, language[, task_id]), else from the
held-out repositories' files in those languages, and from HumanEval's canonical solutions."""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

from dscoder.eval.generate import GenerationSettings, generate_completions


FIM_LANGUAGES = ("python", "java", "javascript")  # Sec. 4.2


@dataclass(frozen=True)
class FimSentinels:
    """FIM control strings of the model's tokenizer (DeepSeek-Coder's by default)."""

    begin: str = "<｜fim▁begin｜>"
    hole: str = "<｜fim▁hole｜>"
    end: str = "<｜fim▁end｜>"


@dataclass(frozen=True)
class FimTask:
    task_id: str
    prefix: str
    suffix: str
    target: str
    """The masked line, without its newline."""
    language: str = "python"


def mask_each_line(task_id: str, code: str, *, head: str = "", language: str = "python",
                   lines: Iterable[int] | None = None) -> list[FimTask]:
    """One task per non-blank line of `code` (or per index in `lines`); `head` (e.g. the
    HumanEval prompt) always stays in the prefix. The hole is the whole line, indentation
    included; the newline stays in the suffix."""
    rows = code.split("\n")
    wanted = range(len(rows)) if lines is None else lines
    tasks = []
    for i in wanted:
        if not rows[i].strip():
            continue
        prefix = head + "\n".join(rows[:i]) + ("\n" if i else "")
        suffix = ("\n" if i + 1 < len(rows) else "") + "\n".join(rows[i + 1:])
        tasks.append(FimTask(f"{task_id}/L{i}", prefix, suffix, rows[i], language))
    return tasks


def humaneval_fim_tasks(problems) -> list[FimTask]:
    """Each line of each HumanEval canonical solution masked in turn (prompt kept as prefix)."""
    tasks = []
    for p in problems:
        tasks += mask_each_line(p.task_id, p.canonical_solution, head=p.prompt)
    return tasks


def repo_fim_tasks(files: Iterable[tuple[str, str, str]], *, per_file: int = 5,
                   seed: int = 0, languages: Sequence[str] = FIM_LANGUAGES) -> list[FimTask]:
    """From held-out repository files (path, language, text) in `languages`: up to
    `per_file` lines of more than 3 characters per file, chosen with a seeded RNG (same
    inputs and seed, same tasks)."""
    tasks = []
    for path, language, text in files:
        if language not in languages:
            continue
        rows = text.split("\n")
        candidates = [i for i, r in enumerate(rows) if len(r.strip()) > 3]
        rng = random.Random(f"{seed}:{path}")
        chosen = sorted(rng.sample(candidates, min(per_file, len(candidates))))
        tasks += mask_each_line(path, text, language=language, lines=chosen)
    return tasks


def load_fim_tasks(path: str | os.PathLike) -> tuple[list[FimTask], Counter]:
    """Single-line infilling tasks from a JSONL file (prefix, suffix, middle or
    canonical_solution, language, optional task_id); rows missing a field are counted."""
    from dscoder.eval.humaneval import read_jsonl

    tasks, skipped = [], Counter()
    for i, row in enumerate(read_jsonl(path, skipped)):
        try:
            middle = row.get("middle", row.get("canonical_solution"))
            task = FimTask(str(row.get("task_id", f"fim/{i}")), str(row["prefix"]),
                           str(row["suffix"]), str(middle).rstrip("\n"), str(row["language"]))
        except (KeyError, TypeError, AttributeError):
            skipped["bad row"] += 1
            continue
        if middle is None or "\n" in task.target:
            skipped["not a single line"] += 1
            continue
        tasks.append(task)
    return tasks, skipped


def fim_prompt(task: FimTask, sentinels: FimSentinels = FimSentinels()) -> str:
    """Prefix-suffix-middle order (the paper's PSM mode, Sec. 3.1)."""
    return f"{sentinels.begin}{task.prefix}{sentinels.hole}{task.suffix}{sentinels.end}"


def first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def line_matches(prediction: str, target: str) -> bool:
    """Exact match of the first generated line, ignoring surrounding whitespace."""
    return first_line(prediction).strip() == target.strip()


def line_exact_match(predictions: Sequence[str], tasks: Sequence[FimTask]) -> dict[str, float]:
    """Mean exact match overall and per language."""
    if len(predictions) != len(tasks):
        raise ValueError("predictions and tasks differ in length")
    per: dict[str, list[bool]] = {}
    for pred, task in zip(predictions, tasks):
        per.setdefault(task.language, []).append(line_matches(pred, task.target))
    out = {f"exact_match/{lang}": sum(v) / len(v) for lang, v in sorted(per.items())}
    hits = [h for v in per.values() for h in v]
    out["exact_match"] = sum(hits) / len(hits) if hits else 0.0
    return out


def evaluate_fim(model, tokenizer, tasks: Sequence[FimTask], *,
                 sentinels: FimSentinels = FimSentinels(),
                 config: GenerationSettings = GenerationSettings(max_new_tokens=64)):
    """Greedy one-line infills for every task; returns (metrics, predictions)."""
    prompts = [fim_prompt(t, sentinels) for t in tasks]
    preds = [c[0] for c in generate_completions(model, tokenizer, prompts, config, stop=["\n"])]
    return line_exact_match(preds, tasks), preds
