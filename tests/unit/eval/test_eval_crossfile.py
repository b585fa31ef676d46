"""Cross-file completion points, BM25 retrieval (bm25s), and prompts; the metrics themselves
are checked in test_eval_code_metrics.py."""

from __future__ import annotations

from dscoder.eval.crossfile import (
    code_tokens,
    completion_points,
    crossfile_prompts,
    defined_names,
    evaluate_crossfile,
    fit_prompt,
    retrieve_context,
    score,
)

GEOM = ("import math\n\n\ndef circle_area(radius):\n    return math.pi * radius ** 2\n\n\n"
        "class Polygon:\n    def __init__(self, sides):\n        self.sides = sides\n")
UTIL = "def slugify(text):\n    return text.lower().replace(' ', '-')\n"
MAIN = ("from geom import circle_area, Polygon\nfrom util import slugify\n\n\n"
        "def report(r):\n    area = circle_area(r)\n    name = slugify('Area Report')\n"
        "    shape = Polygon(4)\n    return name, area, shape\n")
REPO = [("geom.py", "python", GEOM), ("util.py", "python", UTIL), ("main.py", "python", MAIN)]


def test_defined_names():
    assert defined_names(GEOM, "python") == {"circle_area", "Polygon"}
    assert defined_names("def (:", "python") == set()
    assert "makeThing" in defined_names("export function makeThing() {}", "javascript")
    java = "class Shop {\n  int total(int a) { return a; }\n  String name;\n}\n"
    assert {"Shop", "total", "name"} <= defined_names(java, "java")
    assert defined_names("func Run() {}\ntype Box struct{}\n", "go") >= {"Run", "Box"}
    assert defined_names("anything", "no-such-language") == set()


def test_completion_points_use_other_files():
    points = completion_points([("r", REPO)], per_file=5)
    assert points and all(p.path == "main.py" for p in points)
    targets = {p.target.strip() for p in points}
    assert "area = circle_area(r)" in targets and "shape = Polygon(4)" in targets
    assert all(p.prefix.endswith("\n") and p.target not in p.prefix for p in points)
    assert completion_points([("r", REPO)], per_file=2, seed=1) == \
        completion_points([("r", REPO)], per_file=2, seed=1)


def test_bm25_ranks_the_defining_file_first(tiny_lm):
    _, tok = tiny_lm
    point = next(p for p in completion_points([("r", REPO)], per_file=5)
                 if "circle_area" in p.symbols)
    ctx = retrieve_context(point, REPO, tok, max_tokens=512)
    assert ctx.startswith("# the below code fragment can be found in: geom.py")
    assert "main.py" not in ctx
    assert len(tok(retrieve_context(point, REPO, tok, max_tokens=40))["input_ids"]) <= 40
    assert code_tokens("getUserName(max_len, 42)") == ["getusername", "get", "user", "name",
                                                       "max_len", "max", "len", "42"]


def test_fit_prompt_keeps_context_and_the_end_of_the_prefix(tiny_lm):
    _, tok = tiny_lm
    prefix = "".join(f"x{i} = {i}\n" for i in range(200))
    out = fit_prompt("# ctx\n", prefix, tok, 120)
    assert out.startswith("# ctx\n") and out.endswith("x199 = 199\n")
    assert len(tok(out)["input_ids"]) <= 120


def test_score_and_evaluate(tiny_lm):
    points = completion_points([("r", REPO)], per_file=2)
    perfect = score([p.target.strip() + "  # same\nrest()" for p in points], points)
    assert perfect["exact_match"] == 1.0 and perfect["edit_similarity"] == 100.0
    assert perfect["identifier_exact_match"] == 1.0 and perfect["identifier_f1"] == 1.0
    assert perfect["per_language"]["python"]["n"] == len(points)
    model, tok = tiny_lm
    out = evaluate_crossfile(model, tok, {"r": REPO}, points, max_new_tokens=4,
                             max_prompt_tokens=256, retrieved_tokens=64)
    assert set(out) == {"in_file", "bm25"} and out["bm25"]["n"] == len(points)
    assert 0.0 <= out["bm25"]["edit_similarity"] <= 100.0


def test_prompts_fit_the_budget(tiny_lm):
    _, tok = tiny_lm
    points = completion_points([("r", REPO)], per_file=2)
    in_file = crossfile_prompts(tok, {"r": REPO}, points, "in_file", max_prompt_tokens=60,
                                max_new_tokens=10, retrieved_tokens=30)
    bm25 = crossfile_prompts(tok, {"r": REPO}, points, "bm25", max_prompt_tokens=60,
                             max_new_tokens=10, retrieved_tokens=30)
    for a, b in zip(in_file, bm25):
        assert len(tok(b, add_special_tokens=False)["input_ids"]) <= 60 - 10 - 1  # BOS kept
        assert b.endswith(a[-20:]) and ("can be found in" in b or a == b)
