"""HumanEval through the sandbox: canonical solutions all pass, broken ones all fail."""

from __future__ import annotations

import json
from math import comb

import pytest
from hypothesis import given, strategies as st

from dscoder.eval.humaneval import (
    evaluate_completions,
    extract_code,
    load_humaneval,
    load_mbpp,
    program_for,
)
from dscoder.eval.passk import mean_pass_at_k, pass_at_k
from dscoder.eval.sandbox import SandboxSettings

CONFIG = SandboxSettings(workers=4, timeout_s=20)


@pytest.fixture(scope="module")
def problems():
    return load_humaneval()


def test_all_164_canonical_solutions_pass(problems):
    assert len(problems) == 164
    report = evaluate_completions(problems, [[p.canonical_solution] for p in problems],
                                  config=CONFIG, allow_execution=True)
    failing = [t for t, s in report.per_problem.items() if s != ["passed"]]
    assert failing == []
    assert report.pass_at_k == {"pass@1": 1.0}


def test_broken_solutions_fail(problems):
    subset = problems[:20]
    broken = [["    return None\n"], ["    raise SystemExit(0)\n"], ["    import os; os._exit(0)\n"],
              ["    while True: pass\n"]]
    completions = [broken[i % len(broken)] for i in range(len(subset))]
    report = evaluate_completions(subset, completions, allow_execution=True,
                                  config=SandboxSettings(workers=4, timeout_s=1))
    assert report.pass_at_k == {"pass@1": 0.0}
    assert report.status_counts.get("timeout") == 5


def test_evaluation_is_opt_in(problems):
    with pytest.raises(PermissionError):
        evaluate_completions(problems[:1], [[problems[0].canonical_solution]])


def test_chat_answers_are_extracted(problems):
    p = problems[2]  # truncate_number
    answer = ("Sure!\n```python\ndef truncate_number(number: float) -> float:\n"
              "    return number % 1.0\n```\nDone.")
    report = evaluate_completions([p], [[answer]], chat=True, allow_execution=True)
    assert report.pass_at_k["pass@1"] == 1.0
    assert extract_code("no fence") == "no fence"
    assert "check(truncate_number)" in program_for(p, "x", chat=False)[1]


def test_mbpp_loading_counts_bad_rows(tmp_path):
    rows = [{"task_id": 1, "text": "Add two numbers.", "code": "def add(a, b):\n    return a + b",
             "test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]},
            {"task_id": 2, "text": "no tests", "code": "", "test_list": []},
            {"task_id": 3, "code": "x"}]
    path = tmp_path / "mbpp.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    problems, skipped = load_mbpp(path)
    assert [p.task_id for p in problems] == ["MBPP/1"]
    assert skipped == {"no tests": 1, "missing field": 1, "bad json": 1}
    good = evaluate_completions(problems, [[problems[0].canonical_solution, "def add(a, b):\n"
                                            "    return a - b"]], ks=(1, 2),
                                allow_execution=True)
    assert good.pass_at_k == {"pass@1": 0.5, "pass@2": 1.0}


def closed_form(n, c, k):
    return 1.0 - comb(n - c, k) / comb(n, k)


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n),
                                                      st.integers(1, n))))
def test_pass_at_k_matches_closed_form(nck):
    n, c, k = nck
    assert pass_at_k(n, c, k) == pytest.approx(closed_form(n, c, k), abs=1e-12)


def test_pass_at_k_edges():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert mean_pass_at_k([(2, 1), (2, 2)], [1, 2, 5]) == {"pass@1": 0.75, "pass@2": 1.0}
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_mbpp_prompt_is_three_shot(tmp_path):
    from dscoder.eval.humaneval import MBPP_SHOTS

    rows = [{"task_id": 4, "text": "A worked example.", "code": "x = 1", "test_list": ["assert x == 1"]},
            {"task_id": 11, "text": "Return one.", "code": "def one():\n    return 1",
             "test_list": ["assert one() == 1"], "test_setup_code": "import math"}]
    path = tmp_path / "mbpp.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (p,), skipped = load_mbpp(path)
    assert skipped == {"few-shot example": 1}  # task 4 is one of the three shots
    assert p.prompt.count("[BEGIN]") == 4 and p.prompt.count("[DONE]") == 3
    assert p.prompt.index(MBPP_SHOTS[2][1]) < p.prompt.index("Return one.")
    assert p.prompt.endswith("Your code should pass these tests:\n\nassert one() == 1\n[BEGIN]\n")
    (zero,), _ = load_mbpp(path, shots=0, task_ids=[11])
    assert zero.prompt.startswith("You are an expert Python programmer") and "[DONE]" not in zero.prompt
    program, tests = program_for(p, "def one():\n    return math.floor(1.5)\n")
    assert program.startswith("import math") and tests.startswith("import math")
    assert evaluate_completions([p], [["def one():\n    return math.floor(1.5)\n"]],
                                allow_execution=True).pass_at_k["pass@1"] == 1.0
