"""CrossCodeEval's metrics against examples worked out by hand from their definitions."""

from __future__ import annotations

import pytest

from dscoder.eval.code_metrics import (
    edit_similarity,
    first_statement,
    identifier_f1,
    identifiers,
    mean_scores,
    normalize,
    remove_comments,
    score_one,
)


@pytest.mark.parametrize("code, language, statement", [
    # a statement spanning two lines is kept whole; what follows is cut
    ("    x = foo(a,\n        b)\n    y = 2\n", "python", "x = foo(a,\n    b)"),
    # an unfinished line (no error-free statement): the first line
    ("def f(x):\n", "python", "def f(x):"),
    # dedent stops where the enclosing block ends
    ("        return y\n    z = 3\n", "python", "return y"),
    ("int y = compute(x);\nreturn y;", "java", "int y = compute(x);"),
    ("const a = require('x'); b();", "javascript", "const a = require('x');"),
    ("anything at all\nsecond", "no-such-language", "anything at all"),
])
def test_first_statement(code, language, statement):
    assert first_statement(code, language) == statement


def test_remove_comments():
    assert remove_comments("x = 1  # one\n\n# gone\ny = 2", "python") == "x = 1\ny = 2"
    assert remove_comments("int a = 1; /* b */ // c", "java") == "int a = 1;"
    assert normalize("total = add(a, b)  # sum\nprint(total)\n", "python") == "total = add(a, b)"


def test_identifiers_in_order_without_keywords_or_literals():
    assert identifiers("self.total = add(a, b.c)", "python") == ["self", "total", "add", "a", "b", "c"]
    assert identifiers("return x if x else None", "python") == ["x", "x"]
    assert identifiers("int y = obj.compute(x, 3);", "java") == ["y", "obj", "compute", "x"]


def test_edit_similarity_is_the_indel_ratio():
    # Indel distance: each substitution costs a deletion and an insertion.
    assert edit_similarity("abc", "abd") == pytest.approx(100 * (1 - 2 / 6))
    assert edit_similarity("kitten", "sitting") == pytest.approx(100 * (1 - 5 / 13))
    assert edit_similarity("same", "same") == 100.0 and edit_similarity("ab", "cd") == 0.0


def test_identifier_f1_by_hand():
    # {add, a, b} vs {add, a, c}: tp 2, precision 2/3, recall 2/3
    assert identifier_f1(["add", "a", "b"], ["add", "a", "c"]) == pytest.approx(2 / 3)
    # sets: repeats count once; {x} vs {x, y}: P 1, R 1/2, F1 2/3
    assert identifier_f1(["x", "x"], ["x", "y"]) == pytest.approx(2 / 3)
    assert identifier_f1([], []) == 1.0 and identifier_f1(["a"], []) == 0.0


def test_score_one_by_hand():
    s = score_one("    return add(a, b)  # sum\nprint(1)\n", "    return add(a, c)", "python")
    # "return add(a, b)" vs "return add(a, c)": 16 characters each, Indel distance 2
    assert s == {"exact_match": 0.0, "edit_similarity": pytest.approx(100 * (1 - 2 / 32)),
                 "identifier_exact_match": 0.0, "identifier_f1": pytest.approx(2 / 3)}
    same = score_one("int y = f(x); // why\nnext();", "int y = f(x);", "java")
    assert same == {"exact_match": 1.0, "edit_similarity": 100.0, "identifier_exact_match": 1.0,
                    "identifier_f1": 1.0}
    assert mean_scores([s, same])["exact_match"] == 0.5
