"""The independent judges of bench/repo_docs.py: the `ast` import extractor, the compiler's
include edges and the judge's own cycle finder, on synthetic repositories."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _load():
    spec = importlib.util.spec_from_file_location("bench_repo_docs", ROOT / "bench" / "repo_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rd = _load()


def _files(tree: dict[str, str], language: str) -> list[dict]:
    return [{"path": p, "language": language, "content": c} for p, c in tree.items()]


def test_ast_judge_resolves_absolute_relative_and_package_imports():
    files = _files({
        "pkg/__init__.py": "",
        "pkg/a.py": (
            '"""import pkg.c  (a docstring, not an import)"""\n'
            "from . import b\n"
            "from .c import thing\n"
            "import pkg.d\n"
            "from pkg.ext import y  # no pkg/ext: still runs pkg/__init__.py\n"
            "from . e import z\n"
            "import os, json\n"
            "def f():\n    from .sub import leaf\n"
        ),
        "pkg/b.py": "x = 1\n", "pkg/c.py": "thing = 1\n", "pkg/d.py": "", "pkg/e.py": "z = 2\n",
        "pkg/sub/__init__.py": "", "pkg/sub/leaf.py": "from .. import b\n",
        "broken.py": "def (:\n",
    }, "python")
    parsed: set[str] = set()
    edges = rd.ast_python_edges(files, parsed)
    assert {b for a, b in edges if a == "pkg/a.py"} == {
        "pkg/b.py", "pkg/c.py", "pkg/d.py", "pkg/__init__.py", "pkg/e.py", "pkg/sub/leaf.py"}
    assert ("pkg/sub/leaf.py", "pkg/b.py") in edges
    assert "broken.py" not in parsed and "pkg/a.py" in parsed


def test_judge_scc_finds_cycles_only_where_they_are():
    comp = rd.judge_scc(["a", "b", "c", "d"], {("a", "b"), ("b", "c"), ("c", "b"), ("c", "d")})
    assert comp["b"] == comp["c"] and len({comp["a"], comp["b"], comp["d"]}) == 3


def test_parse_make_deps_and_include_tree():
    assert rd.parse_make_deps("x: m.c a.h \\\n  dir/b\\ c.h\n") == ["m.c", "a.h", "dir/b c.h"]
    tree = ". b.h\n.. a.h\n. /usr/include/stdio.h\nMultiple include guards may be useful for:\n. q.h\n"
    assert rd.parse_include_tree(tree) == [(1, "b.h"), (2, "a.h"), (1, "/usr/include/stdio.h")]


@pytest.mark.skipif(shutil.which(rd.CC) is None, reason="no C compiler")
def test_compiler_judge_direct_and_read_edges():
    files = _files({
        "include/lib/x.h": "#pragma once\n#include \"lib/y.h\"\n",
        "include/lib/y.h": "#ifndef Y\n#define Y\n#endif\n",
        "src/m.c": (
            "#include \"lib/x.h\"\n#include \"lib/y.h\"\n#include \"local.h\"\n#include <stdio.h>\n"
            "#include \"missing.h\"\n#ifdef NOT_DEFINED\n#include \"gone.h\"\n#endif\nint main(void){return 0;}\n"
        ),
        "src/local.h": "", "src/gone.h": "",
        "src/bad.c": "#error never preprocessed\n",
    }, "c")
    judge = rd.compiler_judges(files, [])["c"]
    direct = {b for a, b in judge.direct if a == "src/m.c"}
    read = {b for a, b in judge.read if a == "src/m.c"}
    # lib/y.h was read through lib/x.h first, so the compiler shows it read, not direct
    assert direct == {"include/lib/x.h", "src/local.h"}
    assert read == {"include/lib/x.h", "include/lib/y.h", "src/local.h"}
    assert ("include/lib/x.h", "include/lib/y.h") in judge.direct
    assert judge.failed == 1 and "src/bad.c" not in judge.judged
