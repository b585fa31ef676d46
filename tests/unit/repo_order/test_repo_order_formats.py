"""Document formats (deepseek, starcoder2, qwen2.5): exact text, exact FILE_SPAN offsets in
every format, file removal keeps the repository line, and the format tokens reach the
tokenizer as single ids while the default format leaves the tokenizer unchanged."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dscoder.config import ConfigError
from dscoder.data.doc_formats import DOC_FORMATS, FORMATS, format_tokens
from dscoder.data.repo_blocks import block_content, drop_files, spans_problem
from dscoder.data.repo_order import RepoDocsSettings, assemble, build_repo_doc
from dscoder.schemas import FILE_SPAN

REPO = [
    {"path": "README.md", "language": "markdown", "content": "# demo\n"},
    {"path": "data/table.json", "language": "json", "content": '{"a": 1}'},
    {"path": "demo/a.py", "language": "python", "content": "from demo.b import B\n"},
    {"path": "demo/b.py", "language": "python", "content": "class B: ..."},
    {"path": "ext/fast.c", "language": "c", "content": '#include "fast.h"\nint f(void) { return 1; }'},
    {"path": "ext/fast.h", "language": "c", "content": ""},
]
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
    assert build_repo_doc(REPO).text.startswith("# demo/b.py\nclass B")  # a path comment first, no prefix


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
    from dscoder import tokenizer as tk

    params = tk.TokenizerParams(vocab_size=400, min_frequency=1)
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
