"""Repository documents: headers, spans, placement of non-code files, the file-order ablation;
the document formats (deepseek, starcoder2, qwen2.5): exact text and FILE_SPAN offsets in every
format, file removal keeps the repository line, and a format's tokens reach the tokenizer as
single ids while the default format leaves the tokenizer unchanged."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dscoder.config import ConfigError
from dscoder.data.doc_formats import DOC_FORMATS, FORMATS, format_tokens
from dscoder.data.languages import path_header
from dscoder.data.repo_blocks import block_content, drop_files, spans_problem
from dscoder.data.repo_docs.document import RepoDocsSettings, assemble, build_repo_doc
from dscoder.schemas import FILE_SPAN

REPO = [
    {"path": "README.md", "language": "markdown", "content": "# demo\n"},
    {"path": "setup.cfg", "language": "ini", "content": "[metadata]\nname = demo"},
    {"path": "data/table.json", "language": "json", "content": '{"a": 1}\n'},
    {"path": "demo/__init__.py", "language": "python", "content": "from .b import B\n"},
    {"path": "demo/a.py", "language": "python", "content": "from demo.b import B\nfrom demo.c import C\n"},
    {"path": "demo/b.py", "language": "python", "content": "from demo.c import C\nclass B: ..."},
    {"path": "demo/c.py", "language": "python", "content": "class C: ...\n"},
    {"path": "ext/fast.c", "language": "c", "content": '#include "fast.h"\nint f(void) { return 1; }\n'},
    {"path": "ext/fast.h", "language": "c", "content": "int f(void);\n"},
    {"path": "tools/run.sh", "language": "shell", "content": "echo hi\n"},
]


def _paths(doc):
    return [f["path"] for f in doc.files]


def test_code_in_dependency_order_then_non_code_by_path():
    doc = build_repo_doc(REPO)
    order = _paths(doc)
    code = order[:7]
    assert order[7:] == ["README.md", "data/table.json", "setup.cfg"]  # languages.NON_CODE, by path
    assert code.index("demo/c.py") < code.index("demo/b.py") < code.index("demo/a.py")
    assert code.index("demo/b.py") < code.index("demo/__init__.py")
    assert code.index("ext/fast.h") < code.index("ext/fast.c")
    assert doc.cycles_broken == 0 and doc.order_quality == 1.0
    assert doc.graph_edges == 5 and doc.subgraphs == 3  # demo/*, ext/*, tools/run.sh


def test_file_order_ablation_only_sorts_the_code():
    dep, plain = build_repo_doc(REPO), build_repo_doc(REPO, order="file")
    assert _paths(plain)[:7] == sorted(_paths(dep)[:7])
    assert _paths(plain)[7:] == _paths(dep)[7:]
    assert len(plain.text) == len(dep.text) and plain.edges == dep.edges
    assert plain.cycles_broken == 0 and plain.order_quality < 1.0  # demo/a.py precedes its imports


def test_spans_headers_and_contents_are_exact():
    doc = build_repo_doc(REPO)
    by_path = {f["path"]: f for f in REPO}
    end = 0
    for span in doc.files:
        f = by_path[span["path"]]
        header = path_header(span["path"], f["language"])
        assert doc.text[span["start"] : span["start"] + span["header_chars"]] == header
        assert doc.text[span["start"] + span["header_chars"] : span["end"]] == f["content"]
        gap = doc.text[end : span["start"]]
        assert gap in ("", "\n")  # the newline added after a file that lacks one
        end = span["end"]
    assert pa.array(doc.files, type=FILE_SPAN).null_count == 0
    row = {"text": doc.text, "files": [dict(s) for s in doc.files]}
    assert spans_problem(row) is None


def test_headers_use_each_languages_comment_syntax():
    doc = build_repo_doc(REPO)
    heads = {s["path"]: doc.text[s["start"] : s["start"] + s["header_chars"]] for s in doc.files}
    assert heads["demo/a.py"] == "# demo/a.py\n"
    assert heads["ext/fast.c"] == "// ext/fast.c\n"
    assert heads["README.md"] == "<!-- README.md -->\n"
    assert heads["data/table.json"] == "<|file|> data/table.json\n"  # JSON has no comments


def test_counts_add_up():
    doc = build_repo_doc(REPO)
    stats = doc.per_language
    assert doc.n_files == len(REPO) == sum(s.files for s in stats.values())
    assert doc.edges_found == sum(s.edges_found for s in stats.values())
    assert doc.edges_resolved == sum(s.edges_resolved for s in stats.values())
    assert doc.cycles_broken == sum(s.cycles_broken for s in stats.values())
    assert doc.languages == sorted({f["language"] for f in REPO})
    assert stats["python"].edges_found == 4 and stats["python"].edges_resolved == 4


def test_cycles_broken_attributed_to_languages():
    files = [
        {"path": "a.py", "language": "python", "content": "import b\n"},
        {"path": "b.py", "language": "python", "content": "import a\n"},
        {"path": "x.h", "language": "c", "content": '#include "y.h"\n'},
        {"path": "y.h", "language": "c", "content": '#include "x.h"\n'},
    ]
    doc = build_repo_doc(files)
    assert doc.cycles_broken == 2
    assert doc.per_language["python"].cycles_broken == 1 and doc.per_language["c"].cycles_broken == 1
    assert doc.per_language["python"].order_quality == 0.5


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_same_files_in_any_input_order_give_identical_documents(rnd):
    shuffled = list(REPO)
    rnd.shuffle(shuffled)
    a, b = build_repo_doc(REPO), build_repo_doc(shuffled)
    assert (a.text, a.files, a.edges) == (b.text, b.files, b.edges)


def test_duplicate_path_kept_once_and_reported():
    dup = {"path": "demo/c.py", "language": "python", "content": "OTHER = 1\n"}
    doc = build_repo_doc([*REPO, dup])
    assert _paths(doc).count("demo/c.py") == 1
    assert ("demo/c.py", "python", "duplicate_path") in doc.problems
    assert "OTHER" not in doc.text


def test_empty_repository_and_empty_file():
    assert build_repo_doc([]).text == ""
    doc = build_repo_doc([{"path": "e.py", "language": "python", "content": ""}])
    assert doc.text == "# e.py\n" and doc.files[0]["end"] == len(doc.text)


def test_bad_parameters_name_themselves():
    with pytest.raises(ValueError, match="mode"):
        build_repo_doc(REPO, mode="ast")
    with pytest.raises(ValueError, match="order"):
        build_repo_doc(REPO, order="random")


def test_assemble_adds_newline_between_blocks_only_when_missing():
    files = {"a.py": {"language": "python", "content": "x = 1"}, "b.py": {"language": "python", "content": "y\n"}}
    text, spans = assemble(["a.py", "b.py"], files)
    assert text == "# a.py\nx = 1\n# b.py\ny\n"
    assert [(s["start"], s["end"]) for s in spans] == [(0, 12), (13, 22)]


def test_large_random_repository_is_fast_enough_to_build():
    rnd = random.Random(0)
    files = [
        {"path": f"p/m{i}.py", "language": "python",
         "content": "".join(f"import p.m{rnd.randrange(300)}\n" for _ in range(5))}
        for i in range(300)
    ]
    doc = build_repo_doc(files)
    assert doc.n_files == 300 and doc.graph_edges > 0
    assert sorted(_paths(doc)) == sorted(f["path"] for f in files)


def test_as_row_fits_the_repos_schema():
    from dscoder.schemas import REPOS

    doc = build_repo_doc(REPO)
    table = pa.Table.from_pylist([doc.as_row(repo_id="r1", repo_name="demo", source="test")], schema=REPOS)
    row = table.to_pylist()[0]
    assert row["text"] == doc.text and row["n_files"] == len(REPO)
    assert [f["path"] for f in row["files"]] == _paths(doc)


# ---------------------------------------------------------------------------- formats

SMALL = {"a.py": {"language": "python", "content": "x = 1"}, "b.py": {"language": "python", "content": "y\n"}}


def test_each_format_spells_the_document_as_its_recipe_does():
    assert assemble(["a.py", "b.py"], SMALL, repo_name="demo")[0] == "# a.py\nx = 1\n# b.py\ny\n"
    assert assemble(["a.py", "b.py"], SMALL, doc_format="starcoder2", repo_name="demo")[0] == (
        "<repo_name>demo<file_sep>a.py\nx = 1<file_sep>b.py\ny\n")
    assert assemble(["a.py", "b.py"], SMALL, doc_format="qwen2.5", repo_name="demo")[0] == (
        "<|repo_name|>demo\n<|file_sep|>a.py\nx = 1\n<|file_sep|>b.py\ny\n")


@pytest.mark.parametrize("fmt", DOC_FORMATS)
def test_spans_are_exact_in_every_format(fmt):
    doc = build_repo_doc(REPO, doc_format=fmt, repo_name="owner/demo")
    f = FORMATS[fmt]
    by_path = {r["path"]: r for r in REPO}
    assert doc.text[: doc.files[0]["start"]] == f.prefix("owner/demo")
    end = doc.files[0]["start"]
    for span in doc.files:
        src = by_path[span["path"]]
        assert doc.text[span["start"]: span["start"] + span["header_chars"]] == f.header(span["path"], src["language"])
        assert block_content(doc.text, span) == src["content"]
        assert doc.text[end: span["start"]] in ("", f.gap_after_unterminated)
        end = span["end"]
    assert doc.text[end:] in ("", f.gap_after_unterminated)
    assert pa.array(doc.files, type=FILE_SPAN).null_count == 0
    assert spans_problem({"text": doc.text, "files": doc.files}) is None


@pytest.mark.parametrize("fmt", DOC_FORMATS)
def test_dropping_a_file_keeps_the_repository_line_and_the_other_spans(fmt):
    doc = build_repo_doc(REPO, doc_format=fmt, repo_name="demo")
    row = {"text": doc.text, "files": doc.files, "n_files": doc.n_files, "languages": doc.languages}
    i = [s["path"] for s in doc.files].index("demo/b.py")
    out = drop_files(row, [i])
    assert out["text"].startswith(FORMATS[fmt].prefix("demo"))
    assert "class B" not in out["text"] and spans_problem(out) is None
    kept = {s["path"]: block_content(out["text"], s) for s in out["files"]}
    assert kept == {r["path"]: r["content"] for r in REPO if r["path"] != "demo/b.py"}


def test_default_format_is_todays_document_and_ignores_the_name():
    assert build_repo_doc(REPO).text == build_repo_doc(REPO, doc_format="deepseek", repo_name="x").text
    first = build_repo_doc(REPO).files[0]
    assert first["start"] == 0 and first["header_chars"] == len(path_header(first["path"], first["language"]))


def test_format_tokens():
    assert format_tokens("deepseek") == ()
    assert format_tokens("starcoder2") == ("<repo_name>", "<file_sep>")
    assert format_tokens("qwen2.5") == ("<|repo_name|>", "<|file_sep|>")
    with pytest.raises(ValueError, match="doc_format"):
        format_tokens("gpt")


def test_settings_come_from_params_and_name_bad_values():
    s = RepoDocsSettings.from_dict({"mode": "regex", "algorithm": "paper", "doc_format": "qwen2.5"}, "repo_docs")
    assert (s.mode, s.order, s.algorithm, s.doc_format) == ("regex", "dependency", "paper", "qwen2.5")
    assert RepoDocsSettings().algorithm == "scc" and RepoDocsSettings().doc_format == "deepseek"
    with pytest.raises(ConfigError, match="repo_docs.compare_modes"):
        RepoDocsSettings.from_dict({"compare_modes": True}, "repo_docs")
    with pytest.raises(ConfigError, match="repo_docs.algorithm"):
        RepoDocsSettings.from_dict({"algorithm": "random"}, "repo_docs")
    with pytest.raises(ValueError, match="algorithm"):
        build_repo_doc(REPO, algorithm="random")
    with pytest.raises(ValueError, match="doc_format"):
        build_repo_doc(REPO, doc_format="gpt")


def test_language_stats_split_edges_on_and_off_cycles():
    # b.py and c.py import each other; a.py imports c.py, an edge on no cycle that
    # Algorithm 1 breaks (all in-degrees are 1, a.py comes first by path).
    files = [{"path": "a.py", "language": "python", "content": "import c\n"},
             {"path": "b.py", "language": "python", "content": "import c\n"},
             {"path": "c.py", "language": "python", "content": "import b\n"}]
    paper = build_repo_doc(files, algorithm="paper").per_language["python"]
    scc = build_repo_doc(files, algorithm="scc").per_language["python"]
    for s in (paper, scc):
        assert (s.graph_edges, s.acyclic_edges, s.cycle_edges) == (3, 1, 2)
        assert s.cycle_in_order == 1 and s.as_dict()["cycle_quality"] == 0.5
    assert paper.acyclic_in_order == 0 and paper.cycles_broken == 2
    assert scc.acyclic_in_order == 1 and scc.acyclic_quality == 1.0 and scc.cycles_broken == 1


@pytest.fixture(scope="module")
def trained():
    from dscoder.tokens import tokenizer as tk

    params = tk.TokenizerSettings(vocab_size=400, min_frequency=1)
    texts = [build_repo_doc(REPO, doc_format=f, repo_name="demo").text for f in DOC_FORMATS] * 3
    plain = tk.train_tokenizer(iter(texts), params)[0]
    again = tk.train_tokenizer(iter(texts), params, extra_tokens=format_tokens("deepseek"))[0]
    toks = {f: tk.train_tokenizer(iter(texts), params, extra_tokens=format_tokens(f))[0] for f in ("starcoder2", "qwen2.5")}
    return tk, params, plain, again, toks


def test_default_format_leaves_the_tokenizer_unchanged(trained):
    _, _, plain, again, _ = trained
    assert plain.to_str() == again.to_str()
    assert plain.token_to_id("<file_sep>") is None and plain.token_to_id("<|file_sep|>") is None


@pytest.mark.parametrize("fmt", ["starcoder2", "qwen2.5"])
def test_format_tokens_take_the_ids_after_the_specials_and_encode_as_one_id(trained, tmp_path, fmt):
    tk, params, _, _, toks = trained
    tok = toks[fmt]
    repo, sep = format_tokens(fmt)
    n = len(tk.SPECIAL_TOKENS)
    assert [tok.token_to_id(t) for t in (repo, sep)] == [n, n + 1]
    assert {name: tok.token_to_id(t) for name, t in tk.SPECIAL_TOKENS.items()} == tk.SPECIAL_IDS  # 0-22 kept
    tk.save_tokenizer(tok, tmp_path / "tok", params)
    loaded = tk.load_tokenizer(tmp_path / "tok")  # as the packer loads it: specials in text stay bytes
    text = build_repo_doc(REPO, doc_format=fmt, repo_name="demo").text
    ids = loaded.encode(text, add_special_tokens=False).ids
    assert ids.count(n + 1) == len(REPO) and ids.count(n) == 1
    assert loaded.decode(ids) == text
    fim = tk.SPECIAL_TOKENS["fim_begin"]
    assert tk.SPECIAL_IDS["fim_begin"] not in loaded.encode(fim, add_special_tokens=False).ids


def _import_line(language: str, target: str) -> str:
    stem = target.rsplit(".", 1)[0]
    return {"python": f"import {stem.replace('/', '.')}\n", "c": f'#include "{target.split("/", 1)[1]}"\n',
            "javascript": f"const m = require('./{target.split('/', 1)[1]}');\n"}[language]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["python", "c", "javascript"]), st.integers(0, 7), st.integers(0, 7)),
                max_size=40))
def test_scc_keeps_every_acyclic_edge_of_every_language_and_never_fewer_in_cycles(imports):
    # 8 files per language, random imports among files of the same language (so every
    # component is one language's), extracted by tree-sitter like real code
    ext = {"python": "py", "c": "h", "javascript": "js"}
    folder = {"python": "pkg", "c": "inc", "javascript": "web"}
    content = {(lang, i): "" for lang in ext for i in range(8)}
    name = {k: f"{folder[k[0]]}/m{k[1]}.{ext[k[0]]}" for k in content}
    for lang, a, b in imports:
        if a != b:
            content[(lang, a)] += _import_line(lang, name[(lang, b)])
    files = [{"path": name[k], "language": k[0], "content": c} for k, c in content.items()]
    paper = build_repo_doc(files, algorithm="paper").per_language
    scc = build_repo_doc(files, algorithm="scc").per_language
    for lang in ext:
        assert scc[lang].graph_edges == paper[lang].graph_edges == len({(lg, a, b) for lg, a, b in imports
                                                                         if lg == lang and a != b})
        assert scc[lang].acyclic_in_order == scc[lang].acyclic_edges
        assert scc[lang].cycle_in_order >= paper[lang].cycle_in_order
