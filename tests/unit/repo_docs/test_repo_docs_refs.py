"""Captured text → references (shared by both modes), and adding a language as one table entry."""

from __future__ import annotations

import pytest

from dscoder.data.repo_docs import RULES, LanguageRules, Ref, extract, refs
from dscoder.data.repo_docs.document import build_repo_doc


def test_rust_use_trees_flatten():
    assert refs.rust_use("use crate::a::{b, c::{D, e as f}, self};") == [
        "crate::a::b", "crate::a::c::D", "crate::a::c::e", "crate::a::self"]
    assert refs.rust_use("pub(crate) use super::x as y;") == ["super::x"]


def test_php_use_groups_functions_and_traits():
    assert refs.php_use("use A\\B\\{C, D\\E as F};") == ["A\\B\\C", "A\\B\\D\\E"]
    assert refs.php_use("use function A\\f;") == ["A\\f"]
    assert refs.php_use("use T1, \\X\\T2;") == ["T1", "X\\T2"]


def test_php_require_forms():
    assert refs.php_require("require_once __DIR__ . '/lib/a.php'") == ["__DIR__/lib/a.php"]
    assert refs.php_require("include dirname(__FILE__) . \"/b.php\"") == ["__DIR__/b.php"]
    assert refs.php_require("require 'c.php'") == ["c.php"]
    assert refs.php_require("require $path") == []  # dynamic: not a reference


def test_java_csharp_go_python_normalisers():
    assert refs.java_import("import static a.b.C.m;") == ["a.b.C.m"]
    assert refs.java_import("import a.b.*;") == ["a.b.*"]
    assert refs.csharp_using("global using static Al = A.B.List<int>;") == ["A.B.List"]
    assert refs.go_import('(\n\t"a/b"\n\tx "c/d"\n)') == ["a/b", "c/d"]
    assert refs.python_import_list("a.b as c, d") == ["a.b", "d"]
    assert refs.names_list("(x,\n y as z, *)  # comment") == ("x", "y")


def test_both_modes_produce_identical_refs_on_plain_code():
    src = "import os, pkg.a as a\nfrom . import (b,\n    c)\nfrom ..d import *\n"
    got = {mode: extract.extract_refs(src, "python", "p/q.py", mode).refs for mode in ("regex", "tree-sitter")}
    assert got["regex"] == got["tree-sitter"] == [
        Ref("from", ".", ("b", "c")), Ref("from", "..d", ()), Ref("import", "os"), Ref("import", "pkg.a")]


def test_adding_a_language_is_adding_an_entry(monkeypatch):
    """Kotlin is not in the table; one entry (query, regex, resolver) makes it work."""

    def resolve_kotlin(ref, src, ix):
        parts = ref.spec.split(".")
        for k in range(len(parts), 1, -1):
            hits = ix.suffix("/".join(parts[:k]) + ".kt")
            if hits:
                return hits[:1]
        return []

    monkeypatch.setitem(RULES, "kotlin", LanguageRules(
        query="(import_header) @import",
        regexes=(("import", r"^[ \t]*import[ \t]+(?P<spec>[\w.]+)"),),
        resolve=resolve_kotlin,
        normalise={"import": refs.java_import},
    ))
    files = [
        {"path": "src/main/kotlin/a/App.kt", "language": "kotlin", "content": "package a\nimport a.util.Strings\n"},
        {"path": "src/main/kotlin/a/util/Strings.kt", "language": "kotlin", "content": "package a.util\n"},
    ]
    try:
        for mode in ("regex", "tree-sitter"):
            doc = build_repo_doc(files, mode=mode)
            assert doc.edges == [("src/main/kotlin/a/App.kt", "src/main/kotlin/a/util/Strings.kt")]
            assert [f["path"] for f in doc.files][0].endswith("Strings.kt")
    finally:
        extract._regexes.cache_clear()
        extract._query.cache_clear()


@pytest.mark.parametrize("lang", sorted(RULES))
def test_every_query_compiles_for_its_grammars(lang):
    from dscoder.data.treesitter import get_language, grammar_name

    if RULES[lang].query is None:
        assert get_language(grammar_name(lang)) is None  # only when the pack lacks the grammar
        return
    paths = ["x.tsx", "x.ts"] if lang == "typescript" else ["x"]
    for p in paths:
        assert extract._query(lang, grammar_name(lang, p)) is not None
