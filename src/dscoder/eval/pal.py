"""Program-aided math (RECIPE.md §3, paper Sec. 4.4, PAL): the model writes Python that prints
the answer; the program runs in the sandbox and its last printed number is compared."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from dscoder.eval.humaneval import extract_code
from dscoder.eval.sandbox import SandboxConfig, run_programs

PAL_TEMPLATE = (
    "# Write Python code that solves the question and prints the final answer.\n"
    "# Question: Tom has 3 apples and buys 2 bags of 4 apples. How many apples does he have?\n"
    "apples = 3 + 2 * 4\nprint(apples)\n\n"
    "# Question: {question}\n")
PAL_STOP = ("\n# Question:", "\n\n\n")
_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*(?:[eE][-+]?\d+)?|-?\.\d+")


@dataclass(frozen=True)
class MathProblem:
    task_id: str
    question: str
    answer: float


def parse_number(text: str) -> float | None:
    """The last number in `text` ('1,234.5' -> 1234.5), or None."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def load_gsm8k(path: str | os.PathLike) -> tuple[list[MathProblem], Counter]:
    """GSM8K-layout JSONL: question, answer ending in '#### N'. Bad rows are counted."""
    problems, skipped = [], Counter()
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                question, answer = row["question"], row["answer"]
            except (json.JSONDecodeError, KeyError, TypeError):
                skipped["bad row"] += 1
                continue
            _, sep, final = str(answer).rpartition("####")
            value = parse_number(final) if sep else None
            if value is None:
                skipped["no '#### N' answer"] += 1
                continue
            problems.append(MathProblem(str(row.get("task_id", f"gsm8k/{i}")), question, value))
    return problems, skipped


def pal_prompt(problem: MathProblem, template: str = PAL_TEMPLATE) -> str:
    return template.format(question=problem.question)


def evaluate_pal(problems: Sequence[MathProblem], completions: Sequence[str], *,
                 config: SandboxConfig | None = None, chat: bool = False,
                 tolerance: float = 1e-4, allow_execution: bool = False) -> dict:
    """Accuracy of the programs' printed answers; executes model code (opt-in)."""
    if len(problems) != len(completions):
        raise ValueError("problems and completions differ in length")
    programs = [extract_code(c) if chat else c for c in completions]
    results = run_programs(programs, config, allow_execution=allow_execution)
    correct, statuses, per_item = 0, Counter(), {}
    for p, r in zip(problems, results):
        value = parse_number(r.stdout) if r.passed else None
        ok = value is not None and abs(value - p.answer) <= tolerance * max(1.0, abs(p.answer))
        correct += ok
        per_item[p.task_id] = r.status if r.status != "passed" else ("correct" if ok else "wrong")
        statuses[per_item[p.task_id]] += 1
    return {"accuracy": correct / len(problems) if problems else 0.0,
            "outcomes": dict(statuses), "n": len(problems), "per_item": per_item,
            "layers": results[0].layers if results else ()}
