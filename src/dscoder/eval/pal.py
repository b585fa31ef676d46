"""Program-aided math (docs/recipe.md §3, paper Sec. 4.4, PAL): few-shot program-of-thought — the
model completes `def solution():` after three worked examples (PAL_SHOTS); the function runs
in the sandbox followed by `print(solution())` and the last printed number is compared with
the reference answer. Instruct models are asked for a program that prints the answer."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from dscoder.eval.humaneval import extract_code
from dscoder.eval.sandbox import SandboxSettings, run_programs

# Program-of-thought prompt after PAL (Gao et al. 2022): worked GSM8K-style questions, each
# answered by a `solution()` whose variables name the quantities and which returns the
# answer; the harness appends `print(solution())` to the model's function.
PAL_SHOTS = (
    ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "    money_initial = 23\n    bagels = 5\n    bagel_cost = 3\n"
     "    money_spent = bagels * bagel_cost\n    money_left = money_initial - money_spent\n"
     "    result = money_left\n    return result\n"),
    ("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 "
     "more. How many golf balls did he have at the end of wednesday?",
     "    golf_balls_initial = 58\n    golf_balls_lost_tuesday = 23\n"
     "    golf_balls_lost_wednesday = 2\n"
     "    golf_balls_left = golf_balls_initial - golf_balls_lost_tuesday - "
     "golf_balls_lost_wednesday\n    result = golf_balls_left\n    return result\n"),
    ("There were nine computers in the server room. Five more computers were installed each "
     "day, from monday to thursday. How many computers are now in the server room?",
     "    computers_initial = 9\n    computers_per_day = 5\n    num_days = 4\n"
     "    computers_added = computers_per_day * num_days\n"
     "    computers_total = computers_initial + computers_added\n    result = computers_total\n"
     "    return result\n"),
)
PAL_QUESTION = 'def solution():\n    """{question}"""\n'
PAL_TEMPLATE = "".join(PAL_QUESTION.format(question=q) + code + "\n\n" for q, code in PAL_SHOTS) \
    + PAL_QUESTION
PAL_STOP = ("\ndef ", "\n\n\n", "\nprint(", "\nif __name__")
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


def pal_program(problem: MathProblem, completion: str, *, chat: bool = False) -> str:
    """What runs: a chat answer's code as it is; a base model's body under the prompt's
    `def solution():` header, then the call that prints the answer."""
    if chat:
        return extract_code(completion)
    return PAL_QUESTION.format(question=problem.question) + completion + "\n\nprint(solution())\n"


def evaluate_pal(problems: Sequence[MathProblem], completions: Sequence[str], *,
                 config: SandboxSettings | None = None, chat: bool = False,
                 tolerance: float = 1e-4, allow_execution: bool = False) -> dict:
    """Accuracy of the programs' printed answers; executes model code (opt-in)."""
    if len(problems) != len(completions):
        raise ValueError("problems and completions differ in length")
    programs = [pal_program(p, c, chat=chat) for p, c in zip(problems, completions)]
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
