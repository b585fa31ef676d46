from __future__ import annotations


from dscoder.data.decontam import BenchmarkIndex, BenchmarkString, DecontamSettings
from dscoder.instruct.dataset import InstructDataSettings, build_instruct_data, read_examples, write_instruct_data
from dscoder.instruct.mining import MiningSettings, clean_comment, mine_repos

from .conftest import repo_row

PY = '''"""Module docstring."""
import math


def area(r):
    """Return the area of a circle of radius r."""
    radius = float(r)
    return math.pi * radius ** 2


def undocumented(x):
    y = x + 1
    return y * 2


def stub():
    """This one has only a docstring body."""


class Shape:
    @staticmethod
    def scale(v, k):
        """Multiply every component of v by k."""
        out = [c * k for c in v]
        return out
'''

C = '''#include <stdio.h>

/* Compute the greatest common divisor
 * of two positive integers. */
static int gcd(int a, int b)
{
    while (b) { int t = a % b; a = b; b = t; }
    return a;
}

int no_comment(int a)
{
    return a + 1;
}

int x; /* trailing comment, not documentation */
int after_trailing(void)
{
    return 2;
}
'''

RS = '''/// Add two numbers together and return their sum.
pub fn add(a: i32, b: i32) -> i32 {
    let s = a + b;
    s
}

// a plain comment is not a doc comment in Rust
fn hidden(a: i32) -> i32 {
    let s = a * 2;
    s
}
'''

JS = '''/** Greet a person by their given name. */
export function greet(name) {
  const msg = "hi " + name;
  return msg;
}
'''


def _rows():
    return [
        repo_row("r1", {"pkg/geo.py": ("python", PY), "src/gcd.c": ("c", C)}),
        repo_row("r2", {"src/lib.rs": ("rust", RS), "web/greet.js": ("javascript", JS), "README.md": ("markdown", "# x\n")}),
    ]


def test_mining_finds_the_documented_functions():
    res = mine_repos(_rows(), MiningSettings(min_doc_words=3))
    found = {(e.language, e.path, e.messages[1]["content"].split("\n")[1]) for e in res.examples}
    assert found == {
        ("python", "pkg/geo.py", "def area(r):"),
        ("python", "pkg/geo.py", "@staticmethod"),
        ("c", "src/gcd.c", "static int gcd(int a, int b)"),
        ("rust", "src/lib.rs", "pub fn add(a: i32, b: i32) -> i32 {"),
        ("javascript", "web/greet.js", "export function greet(name) {"),
    }
    by_lang = {e.language: e for e in res.examples}
    assert "Return the area of a circle of radius r." in res.examples[0].messages[0]["content"]
    assert "def area(r)" in res.examples[0].messages[0]["content"]  # the signature is in the request
    c = by_lang["c"].messages[0]["content"]
    assert "greatest common divisor\nof two positive integers." in c and "/*" not in c
    assert res.examples[0].messages[1]["content"].startswith("```python\n") and res.examples[0].messages[1]["content"].endswith("```")
    scale = [e for e in res.examples if "scale" in e.messages[1]["content"]][0]
    assert "Shape" in scale.messages[0]["content"] and "\n    def scale" not in scale.messages[1]["content"]  # dedented
    assert res.stats["skipped:answer_too_short"] == 1  # stub()


def test_cap_and_determinism():
    rows = _rows()
    a = mine_repos(rows, MiningSettings(min_doc_words=3, max_per_repo=1))
    b = mine_repos(rows, MiningSettings(min_doc_words=3, max_per_repo=1))
    assert [e.to_json() for e in a.examples] == [e.to_json() for e in b.examples]
    assert sorted(e.repo_id for e in a.examples) == ["r1", "r2"]
    assert a.stats["skipped:repo_cap"] == 3


def test_clean_comment():
    assert clean_comment("/**\n * Hello\n * world.\n */") == "Hello\nworld."
    assert clean_comment("/// Adds.") == "Adds."


def test_build_splits_by_repo_decontaminates_and_writes(tmp_path):
    rows = [replace_id(r, f"{r['repo_id']}-{k}") for k in range(6) for r in _rows()]
    user = tmp_path / "u.jsonl"
    user.write_text('{"instruction": "Explain closures in Python.", "output": "A closure captures variables."}\n{"bad"\n')
    strings = [BenchmarkString("bench", "task/1", "docstring", "Return the area of a circle of radius r")]
    index = BenchmarkIndex(strings, DecontamSettings(benchmarks=()))
    params = InstructDataSettings.from_dict({"files": [{"name": "user", "path": str(user)}], "val_fraction": 0.3,
                                           "mining": {"min_doc_words": 3}}, "instruct_data")
    data = build_instruct_data(rows, params, index)
    train_repos = {e.repo_id for e in data.train}
    val_repos = {e.repo_id for e in data.validation}
    assert train_repos and val_repos and not (train_repos & val_repos)
    all_ex = data.train + data.validation
    assert not any("area of a circle" in e.text() for e in all_ex)
    reasons = [a["reason"] for a in data.audit]
    assert reasons.count("benchmark:bench") == 1  # the first copy; the other five are duplicates of it
    assert reasons.count("duplicate") == 5 * 5 and reasons.count("bad_json") == 1
    assert any(e.source == "user" for e in all_ex)
    write_instruct_data(tmp_path / "out", data, params)
    assert [e.to_json() for e in read_examples(tmp_path / "out" / "train.jsonl")] == [e.to_json() for e in data.train]
    again = tmp_path / "again"
    write_instruct_data(again, build_instruct_data(rows, params, index), params)
    for name in ("train.jsonl", "validation.jsonl", "audit.parquet", "meta.json"):
        assert (tmp_path / "out" / name).read_bytes() == (again / name).read_bytes()


def replace_id(row, repo_id):
    return {**row, "repo_id": repo_id, "repo_name": repo_id}
