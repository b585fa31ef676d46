"""FIM single-line infilling and PAL math."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from dscoder.eval.fim_infill import (
    FimSentinels,
    evaluate_fim,
    fim_prompt,
    humaneval_fim_tasks,
    line_exact_match,
    mask_each_line,
    repo_fim_tasks,
)
from dscoder.eval.generate import GenerationSettings
from dscoder.eval.humaneval import load_humaneval
from dscoder.eval.pal import evaluate_pal, load_gsm8k, pal_prompt, parse_number


@given(st.lists(st.text(alphabet="ab \t:()=", max_size=12), min_size=1, max_size=8))
def test_masking_reassembles_the_code(lines):
    code = "\n".join(lines)
    for t in mask_each_line("t", code, head="H"):
        assert t.prefix + t.target + t.suffix == "H" + code
        assert "\n" not in t.target and t.target.strip()


def test_humaneval_tasks_and_prompt():
    problems = load_humaneval()[:3]
    tasks = humaneval_fim_tasks(problems)
    assert len(tasks) == sum(1 for p in problems for l in p.canonical_solution.split("\n")
                             if l.strip())
    s = FimSentinels(begin="<B>", hole="<H>", end="<E>")
    t = tasks[0]
    assert fim_prompt(t, s) == f"<B>{t.prefix}<H>{t.suffix}<E>"
    assert t.prefix.startswith(problems[0].prompt)
    perfect = line_exact_match([x.target + "\nmore" for x in tasks], tasks)
    assert perfect["exact_match"] == 1.0 and perfect["exact_match/python"] == 1.0
    assert line_exact_match(["nope"] * len(tasks), tasks)["exact_match"] == 0.0


def test_repo_tasks_are_seeded():
    files = [("a.js", "javascript", "let a = 1;\nlet b = 2;\n\nfunction f() { return a; }\n")]
    t1, t2 = repo_fim_tasks(files, per_file=2, seed=3), repo_fim_tasks(files, per_file=2, seed=3)
    assert t1 == t2 and len(t1) == 2 and {t.language for t in t1} == {"javascript"}


def test_evaluate_fim_runs_the_model(tiny_lm):
    model, tok = tiny_lm
    tasks = humaneval_fim_tasks(load_humaneval()[:1])[:3]
    metrics, preds = evaluate_fim(model, tok, tasks, config=GenerationSettings(max_new_tokens=6))
    assert len(preds) == 3 and all("\n" not in p for p in preds)
    assert 0.0 <= metrics["exact_match"] <= 1.0


def test_pal(tmp_path):
    rows = [{"question": "2+3?", "answer": "five\n#### 5"},
            {"question": "big?", "answer": "#### 1,200"},
            {"question": "none", "answer": "no marker"}, {"oops": 1}]
    path = tmp_path / "gsm.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    problems, skipped = load_gsm8k(path)
    assert [p.answer for p in problems] == [5.0, 1200.0]
    assert skipped == {"no '#### N' answer": 1, "bad row": 1}
    assert "2+3?" in pal_prompt(problems[0])
    assert parse_number("x = 3\nanswer: -1,234.50") == -1234.5 and parse_number("none") is None
    completions = ["print(2 + 3)", "```python\nprint(1000 + 100)\n```"]
    with pytest.raises(PermissionError):
        evaluate_pal(problems, completions)
    r = evaluate_pal(problems, completions, chat=True, allow_execution=True)
    assert r["accuracy"] == 0.5 and r["outcomes"] == {"correct": 1, "wrong": 1}


HELD_OUT = [  # a tiny held-out repository: (path, language, text)
    ("shop/Cart.java", "java", "public class Cart {\n    private int total = 0;\n"
     "    public void add(int price) {\n        total += price;\n    }\n}\n"),
    ("shop/ui.js", "javascript", "function show(cart) {\n  const label = 'Total: ' + cart.total;\n"
     "  return label;\n}\nmodule.exports = { show };\n"),
    ("shop/main.go", "go", "package main\n\nfunc main() {\n    println(\"hi\")\n}\n"),
    ("README.md", "markdown", "# Shop\n\nA shop.\n"),
]


def test_repo_tasks_for_java_and_javascript_from_a_held_out_repository():
    tasks = repo_fim_tasks(HELD_OUT, per_file=3, seed=0)
    assert {t.language for t in tasks} == {"java", "javascript"}  # Sec. 4.2's languages only
    assert sum(t.language == "java" for t in tasks) == 3 == sum(t.language == "javascript" for t in tasks)
    texts = dict((p, text) for p, _, text in HELD_OUT)
    for t in tasks:
        source = texts[t.task_id.rsplit("/L", 1)[0]]
        assert t.prefix + t.target + t.suffix == source  # the masked line, nothing else
        assert "\n" not in t.target and len(t.target.strip()) > 3
    java = next(t for t in tasks if t.language == "java")
    assert fim_prompt(java).startswith("<｜fim▁begin｜>") and fim_prompt(java).endswith("<｜fim▁end｜>")
    assert line_exact_match([t.target for t in tasks], tasks) == {
        "exact_match/java": 1.0, "exact_match/javascript": 1.0, "exact_match": 1.0}


def test_fim_benchmark_file(tmp_path):
    from dscoder.eval.fim_infill import load_fim_tasks

    rows = [{"task_id": "j/1", "prefix": "int a = 1;\n", "suffix": "\nint c = 3;", "middle": "int b = 2;",
             "language": "java"},
            {"prefix": "x", "suffix": "y", "canonical_solution": "two\nlines", "language": "python"},
            {"prefix": "only"}]
    path = tmp_path / "fim.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    tasks, skipped = load_fim_tasks(path)
    assert [(t.task_id, t.target, t.language) for t in tasks] == [("j/1", "int b = 2;", "java")]
    assert skipped == {"not a single line": 1, "bad row": 1}


def test_pal_prompt_is_few_shot_program_of_thought():
    from dscoder.eval.pal import PAL_SHOTS, MathProblem, pal_program

    p = MathProblem("q/1", "Ann has 2 pens and buys 3. How many pens?", 5.0)
    prompt = pal_prompt(p)
    assert prompt.count("def solution():") == len(PAL_SHOTS) + 1 == 4
    assert prompt.endswith('def solution():\n    """Ann has 2 pens and buys 3. How many pens?"""\n')
    assert all(q in prompt for q, _ in PAL_SHOTS)
    body = "    pens = 2 + 3\n    return pens\n"
    assert pal_program(p, body).endswith(body + "\n\nprint(solution())\n")


def test_pal_base_model_completion_runs_as_solution():
    from dscoder.eval.pal import MathProblem

    problems = [MathProblem("a", "2 and 3 together?", 5.0), MathProblem("b", "ten?", 10.0)]
    r = evaluate_pal(problems, ["    return 2 + 3\n", "    return 9\n"], allow_execution=True)
    assert r["per_item"] == {"a": "correct", "b": "wrong"} and r["accuracy"] == 0.5
