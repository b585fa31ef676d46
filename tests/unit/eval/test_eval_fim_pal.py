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
from dscoder.eval.generate import GenerationConfig
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
    metrics, preds = evaluate_fim(model, tok, tasks, config=GenerationConfig(max_new_tokens=6))
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
