"""Per-language edge extraction and resolution on small real-layout repositories.

Each fixture repository has the language's usual layout and, on purpose: a dependency
cycle, a self-import, an import of a missing file, standard-library / third-party imports,
a file that fails to parse, an import only the tree-sitter mode sees (`regex_misses`: e.g.
a second statement on one line) and an import-looking line inside a comment or a string
that only the regex mode takes (`regex_false`). `expected` is the true edge set.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dscoder.data.repo_docs import SUPPORTED_LANGUAGES, extract_refs
from dscoder.data.languages import detect_language
from dscoder.data.repo_docs.document import build_repo_doc

FIXTURES: dict[str, dict] = {
    "python": {
        "files": {
            "pyproject.toml": "[project]\nname = 'pkg'\n",
            "README.md": "# pkg\n",
            "src/pkg/__init__.py": "from .core import Engine\nfrom . import util\n",
            "src/pkg/core.py": (
                "import os\nfrom pkg.util import helper\nfrom .models import (\n    Model,\n    Other,\n)\n"
                "import pkg.core  # itself\n\nclass Engine:\n    pass\n"
            ),
            "src/pkg/util.py": "import os; import pkg.core\n\ndef helper():\n    return 1\n",
            "src/pkg/models/__init__.py": "from .base import Base\n",
            "src/pkg/models/base.py": "from ..util import helper\nimport missing_module\nfrom .gone import x\n",
            "src/pkg/broken.py": "from .util import helper\ndef f(:\n    pass\n",
            "tests/test_core.py": (
                'import pkg.core\nfrom pkg.models.base import Base\n"""Example:\n\nimport pkg.util\n"""\n'
            ),
            "scripts/run.py": "import helpers\n",
            "scripts/helpers.py": "X = 1\n",
        },
        "expected": {
            ("src/pkg/__init__.py", "src/pkg/core.py"),
            ("src/pkg/__init__.py", "src/pkg/util.py"),
            ("src/pkg/core.py", "src/pkg/util.py"),
            ("src/pkg/core.py", "src/pkg/models/__init__.py"),
            ("src/pkg/util.py", "src/pkg/core.py"),
            ("src/pkg/models/__init__.py", "src/pkg/models/base.py"),
            ("src/pkg/models/base.py", "src/pkg/util.py"),
            ("src/pkg/broken.py", "src/pkg/util.py"),
            ("tests/test_core.py", "src/pkg/core.py"),
            ("tests/test_core.py", "src/pkg/models/base.py"),
            ("scripts/run.py", "scripts/helpers.py"),
        },
        "regex_misses": {("src/pkg/util.py", "src/pkg/core.py")},
        "regex_false": {("tests/test_core.py", "src/pkg/util.py")},
        "broken": "src/pkg/broken.py",
    },
    "java": {
        "files": {
            "src/main/java/com/acme/app/App.java": (
                "package com.acme.app;\n\nimport com.acme.model.User;\nimport com.acme.util.*;\n"
                "import static com.acme.util.Strings.join;\nimport java.util.List;\nimport com.acme.missing.Gone;\n"
                "/*\nimport com.acme.model.Legacy;\n*/\npublic class App {}\n"
            ),
            "src/main/java/com/acme/model/User.java": (
                "package com.acme.model;\n\nimport com.acme.app.App;\nimport com.acme.model.User;\n\npublic class User {}\n"
            ),
            "src/main/java/com/acme/model/Legacy.java": "package com.acme.model;\n\nclass Legacy {}\n",
            "src/main/java/com/acme/util/Strings.java": (
                "package com.acme.util;\n\nimport com.acme.model.Legacy; import com.acme.model.User;\n\n"
                "public class Strings {}\n"
            ),
            "src/main/java/com/acme/util/Lists.java": "package com.acme.util;\n\npublic class Lists {}\n",
            "src/test/java/com/acme/AppTest.java": (
                "package com.acme;\n\nimport com.acme.app.App;\n\nclass AppTest { void f( { }\n"
            ),
        },
        "expected": {
            ("src/main/java/com/acme/app/App.java", "src/main/java/com/acme/model/User.java"),
            ("src/main/java/com/acme/app/App.java", "src/main/java/com/acme/util/Strings.java"),
            ("src/main/java/com/acme/app/App.java", "src/main/java/com/acme/util/Lists.java"),
            ("src/main/java/com/acme/model/User.java", "src/main/java/com/acme/app/App.java"),
            ("src/main/java/com/acme/util/Strings.java", "src/main/java/com/acme/model/Legacy.java"),
            ("src/main/java/com/acme/util/Strings.java", "src/main/java/com/acme/model/User.java"),
            ("src/test/java/com/acme/AppTest.java", "src/main/java/com/acme/app/App.java"),
        },
        "regex_misses": {("src/main/java/com/acme/util/Strings.java", "src/main/java/com/acme/model/User.java")},
        "regex_false": {("src/main/java/com/acme/app/App.java", "src/main/java/com/acme/model/Legacy.java")},
        "broken": "src/test/java/com/acme/AppTest.java",
    },
    "javascript": {
        "files": {
            "package.json": '{"name": "app", "main": "src/index.js"}\n',
            "src/index.js": (
                "import { a } from './a'; import d from './d';\nimport b from \"./lib\";\n"
                "const c = require('./c.json');\nimport React from 'react';\nimport m from './missing';\n"
            ),
            "src/a.js": "import {\n  fromIndex\n} from './index.js';\nexport const a = 1;\n",
            "src/d.js": "export default 4;\n",
            "src/lib/index.js": "export * from '../a';\n// const old = require('../index');\n",
            "src/c.json": '{"c": 3}\n',
            "src/self.js": "import s from './self.js';\n",
            "src/broken.js": "import a from './a';\nfunction ( {\n",
        },
        "expected": {
            ("src/index.js", "src/a.js"),
            ("src/index.js", "src/d.js"),
            ("src/index.js", "src/lib/index.js"),
            ("src/index.js", "src/c.json"),
            ("src/a.js", "src/index.js"),
            ("src/lib/index.js", "src/a.js"),
            ("src/broken.js", "src/a.js"),
        },
        "regex_misses": {("src/index.js", "src/d.js")},
        "regex_false": {("src/lib/index.js", "src/index.js")},
        "broken": "src/broken.js",
    },
    "typescript": {
        "files": {
            "tsconfig.json": '{"compilerOptions": {"strict": true}}\n',
            "src/main.ts": (
                "import { util } from './util';\nimport type { T } from './types';\nimport fs = require('fs');\n"
                "export { x } from './esm.js';\nimport { nope } from './nowhere';\nimport { main } from './main';\n"
                "export const main = 1;\n"
            ),
            "src/util.ts": "import { main } from './main';\nexport const util = main;\n",
            "src/types.d.ts": "export type T = number;\n",
            "src/esm.ts": "export const x = 1;\n",
            "src/components/Button.tsx": (
                "import React from 'react';\nimport { util } from '../util';\nexport const B = () => <div>{util}</div>;\n"
            ),
            "src/components/index.ts": "export * from './Button';\n",
            "src/app.ts": "import { B } from './components'; import { main } from './main';\n",
            "src/bad.ts": "import { util } from './util';\nlet x: = ;\n",
            "src/docs.ts": "export const s = `\nimport { util } from './util';\n`;\n",
        },
        "expected": {
            ("src/main.ts", "src/util.ts"),
            ("src/main.ts", "src/types.d.ts"),
            ("src/main.ts", "src/esm.ts"),
            ("src/util.ts", "src/main.ts"),
            ("src/components/Button.tsx", "src/util.ts"),
            ("src/components/index.ts", "src/components/Button.tsx"),
            ("src/app.ts", "src/components/index.ts"),
            ("src/app.ts", "src/main.ts"),
            ("src/bad.ts", "src/util.ts"),
        },
        "regex_misses": {("src/app.ts", "src/main.ts")},
        "regex_false": {("src/docs.ts", "src/util.ts")},
        "broken": "src/bad.ts",
    },
    "c": {
        "files": {
            "include/lib/api.h": '#include "lib/types.h"\n#include <stdio.h>\nint api(void);\n',
            "include/lib/types.h": '#include "api.h"\ntypedef int t;\n',
            "src/main.c": (
                '#include "lib/api.h"\n#include "local.h"\n#include "missing.h"\n#include <lib/types.h>\n'
                "#if defined(X)\n#  include \"local.h\"\n#endif\nint main(void) { return 0; }\n"
            ),
            "src/local.h": '#include "local.h"\nint local;\n',
            "src/broken.c": '#include "local.h"\nint main( {\n',
            "src/comment.c": '/* old:\n#include "local.h"\n*/\nint c;\n',
        },
        "expected": {
            ("include/lib/api.h", "include/lib/types.h"),
            ("include/lib/types.h", "include/lib/api.h"),
            ("src/main.c", "include/lib/api.h"),
            ("src/main.c", "src/local.h"),
            ("src/main.c", "include/lib/types.h"),
            ("src/broken.c", "src/local.h"),
        },
        "regex_misses": set(),
        "regex_false": {("src/comment.c", "src/local.h")},
        "broken": "src/broken.c",
    },
    "cpp": {
        "files": {
            "include/engine/engine.hpp": (
                '#pragma once\n#include "engine/math.hpp"\nnamespace engine { class Engine {}; }\n'
            ),
            "include/engine/math.hpp": "#pragma once\n#include <vector>\nnamespace engine { struct V {}; }\n",
            "src/engine.cpp": '#include "engine/engine.hpp"\n#include "detail.hpp"\n#include "engine.cpp"\n',
            "src/detail.hpp": '#include "../include/engine/math.hpp"\n#include "gone.hpp"\n',
            "src/gen.cpp": 'const char* s = R"(\n#include "detail.hpp"\n)";\n',
            "src/broken.cpp": '#include "detail.hpp"\nclass { int f( ;\n',
        },
        "expected": {
            ("include/engine/engine.hpp", "include/engine/math.hpp"),
            ("src/engine.cpp", "include/engine/engine.hpp"),
            ("src/engine.cpp", "src/detail.hpp"),
            ("src/detail.hpp", "include/engine/math.hpp"),
            ("src/broken.cpp", "src/detail.hpp"),
        },
        "regex_misses": set(),
        "regex_false": {("src/gen.cpp", "src/detail.hpp")},
        "broken": "src/broken.cpp",
        "no_cycle": True,
    },
    "csharp": {
        "files": {
            "App/Program.cs": (
                "using System;\nusing Acme.Models; using static Acme.Util.Strings;\nusing Alias = Acme.Util.Lists;\n"
                "using Acme.Missing;\nnamespace Acme.App { class Program {} }\n"
            ),
            "Models/User.cs": "using Acme.App;\nusing Acme.Models;\nnamespace Acme.Models { class User {} }\n",
            "Models/Order.cs": "namespace Acme.Models;\nclass Order {}\n",
            "Util/Strings.cs": "namespace Acme.Util { static class Strings {} }\n",
            "Util/Lists.cs": "namespace Acme.Util { class Lists {} }\n",
            "Tests/Broken.cs": "using Acme.Util;\nnamespace Acme.Tests { class B { void f( { } }\n",
            "Docs/Notes.cs": 'using Acme.Docs;\nnamespace Acme.Docs { class N { string s = @"\nusing Acme.Models;\n"; } }\n',
        },
        "expected": {
            ("App/Program.cs", "Models/User.cs"),
            ("App/Program.cs", "Models/Order.cs"),
            ("App/Program.cs", "Util/Strings.cs"),
            ("App/Program.cs", "Util/Lists.cs"),
            ("Models/User.cs", "App/Program.cs"),
            ("Models/User.cs", "Models/Order.cs"),
            ("Tests/Broken.cs", "Util/Strings.cs"),
            ("Tests/Broken.cs", "Util/Lists.cs"),
        },
        "regex_misses": {("App/Program.cs", "Util/Strings.cs")},
        "regex_false": {("Docs/Notes.cs", "Models/User.cs"), ("Docs/Notes.cs", "Models/Order.cs")},
        "broken": "Tests/Broken.cs",
    },
    "go": {
        "files": {
            "go.mod": "module example.com/shop\n\ngo 1.22\n",
            "main.go": (
                'package main\n\nimport (\n\t"fmt"\n\t"example.com/shop/internal/store"\n'
                '\tcfg "example.com/shop/config"\n)\n\nfunc main() { fmt.Println(store.X, cfg.Y) }\n'
            ),
            "internal/store/store.go": 'package store\n\nimport "example.com/shop/internal/store/db"\n',
            "internal/store/store_test.go": 'package store\n\nimport "testing"\n',
            "internal/store/db/db.go": 'package db\n\nimport "example.com/shop/internal/store"\n',
            "config/config.go": (
                'package config\n\nimport (\n\t"example.com/shop/config"\n\t"example.com/shop/missing"\n)\n'
            ),
            "broken/broken.go": 'package broken\n\nimport "example.com/shop/config"\n\nfunc f( {\n',
            "docs/doc.go": 'package docs\n\n/*\nimport "example.com/shop/config"\n*/\n',
        },
        "languages": {"go.mod": "text"},
        "expected": {
            ("main.go", "internal/store/store.go"),
            ("main.go", "config/config.go"),
            ("internal/store/store.go", "internal/store/db/db.go"),
            ("internal/store/db/db.go", "internal/store/store.go"),
            ("broken/broken.go", "config/config.go"),
        },
        "regex_misses": set(),
        "regex_false": {("docs/doc.go", "config/config.go")},
        "broken": "broken/broken.go",
    },
    "rust": {
        "files": {
            "Cargo.toml": '[package]\nname = "my-crate"\nversion = "0.1.0"\n',
            "src/lib.rs": (
                'pub mod net;\nmod util;\n#[cfg(feature = "x")] mod extra;\npub use crate::net::Client;\n'
            ),
            "src/extra.rs": "pub fn e() {}\n",
            "src/net/mod.rs": "mod http;\nmod missing;\nuse super::util::helper;\npub struct Client;\n",
            "src/net/http.rs": "use crate::{util, net::Client};\nuse std::io;\n",
            "src/util.rs": "use crate::net::http::Request;\nuse crate::util::helper;\nuse crate::gone::X;\n",
            "src/main.rs": "use my_crate::net::Client;\nmod cli;\nfn main() {}\n",
            "src/cli.rs": 'pub fn run() { let s = "\nuse crate::util::helper;\n"; }\n',
            "src/broken.rs": "use crate::util::helper;\nfn f( {\n",
        },
        "expected": {
            ("src/lib.rs", "src/net/mod.rs"),
            ("src/lib.rs", "src/util.rs"),
            ("src/lib.rs", "src/extra.rs"),
            ("src/net/mod.rs", "src/net/http.rs"),
            ("src/net/mod.rs", "src/util.rs"),
            ("src/net/http.rs", "src/util.rs"),
            ("src/net/http.rs", "src/net/mod.rs"),
            ("src/util.rs", "src/net/http.rs"),
            ("src/util.rs", "src/lib.rs"),  # `crate::gone::X`: no gone.rs, so `gone` is in lib.rs
            ("src/main.rs", "src/net/mod.rs"),
            ("src/main.rs", "src/cli.rs"),
            ("src/broken.rs", "src/util.rs"),
        },
        "regex_misses": {("src/lib.rs", "src/extra.rs")},
        "regex_false": {("src/cli.rs", "src/util.rs")},
        "broken": "src/broken.rs",
    },
    "php": {
        "files": {
            "composer.json": '{"autoload": {"psr-4": {"Acme\\\\": "src/"}}}\n',
            "src/Models/User.php": (
                "<?php\nnamespace Acme\\Models;\n\nuse Acme\\Services\\Mailer;\nuse Acme\\Models\\User;\n\nclass User {}\n"
            ),
            "src/Services/Mailer.php": (
                "<?php\nnamespace Acme\\Services;\n\nuse Acme\\Models\\{User, Missing};\nuse Psr\\Log\\LoggerInterface;\n"
                "\nclass Mailer {}\n"
            ),
            "src/Traits/Greets.php": "<?php\nnamespace Acme\\Traits;\n\ntrait Greets {}\n",
            "src/Controllers/Home.php": (
                "<?php\nnamespace Acme\\Controllers;\n\nuse Acme\\Traits\\Greets;\n\nclass Home { use Greets; }\n"
            ),
            "public/index.php": (
                "<?php\nrequire_once __DIR__ . '/../vendor/autoload.php';\nrequire __DIR__ . '/../src/bootstrap.php';\n"
                "$x = 1; require 'config.php';\n"
            ),
            "public/config.php": "<?php\nreturn [];\n",
            "src/bootstrap.php": "<?php\n/*\nuse Acme\\Models\\User;\n*/\n$booted = true;\n",
            "src/broken.php": "<?php\nuse Acme\\Models\\User;\nfunction f( {\n",
        },
        "expected": {
            ("src/Models/User.php", "src/Services/Mailer.php"),
            ("src/Services/Mailer.php", "src/Models/User.php"),
            ("src/Controllers/Home.php", "src/Traits/Greets.php"),
            ("public/index.php", "src/bootstrap.php"),
            ("public/index.php", "public/config.php"),
            ("src/broken.php", "src/Models/User.php"),
        },
        "regex_misses": {("public/index.php", "public/config.php")},
        "regex_false": {("src/bootstrap.php", "src/Models/User.php")},
        "broken": "src/broken.php",
    },
    "ruby": {
        "files": {
            "lib/shop.rb": "require 'shop/cart'\nrequire_relative 'shop/version'\nrequire 'json'\n",
            "lib/shop/cart.rb": "require_relative '../shop'\nrequire 'shop/cart'\n",
            "lib/shop/version.rb": "VERSION = '1.0'\n",
            "lib/shop/item.rb": "autoload :Cart, 'shop/cart'\n",
            "test/test_cart.rb": "require 'shop'; require 'shop/item'\nrequire_relative '../lib/shop/missing'\n",
            "lib/shop/broken.rb": "require 'shop/version'\ndef f(\n",
            "lib/shop/doc.rb": "DOC = <<~TXT\n  require 'shop/item'\nTXT\n",
        },
        "expected": {
            ("lib/shop.rb", "lib/shop/cart.rb"),
            ("lib/shop.rb", "lib/shop/version.rb"),
            ("lib/shop/cart.rb", "lib/shop.rb"),
            ("lib/shop/item.rb", "lib/shop/cart.rb"),
            ("test/test_cart.rb", "lib/shop.rb"),
            ("test/test_cart.rb", "lib/shop/item.rb"),
            ("lib/shop/broken.rb", "lib/shop/version.rb"),
        },
        "regex_misses": {("test/test_cart.rb", "lib/shop/item.rb")},
        "regex_false": {("lib/shop/doc.rb", "lib/shop/item.rb")},
        "broken": "lib/shop/broken.rb",
    },
}


def repo_files(lang: str) -> list[dict]:
    fx = FIXTURES[lang]
    overrides = fx.get("languages", {})
    return [
        {"path": p, "language": overrides.get(p) or detect_language(p, c), "content": c}
        for p, c in fx["files"].items()
    ]


@pytest.fixture(scope="module")
def docs():
    return {(lang, mode): build_repo_doc(repo_files(lang), mode=mode)
            for lang in FIXTURES for mode in ("regex", "tree-sitter")}


def test_every_required_language_has_a_fixture():
    required = {"python", "java", "javascript", "typescript", "c", "cpp", "csharp", "go", "rust", "php", "ruby"}
    assert required <= set(FIXTURES) and required <= set(SUPPORTED_LANGUAGES)


@pytest.mark.parametrize("lang", sorted(FIXTURES))
def test_tree_sitter_finds_exactly_the_true_edges(lang, docs):
    assert set(docs[lang, "tree-sitter"].edges) == FIXTURES[lang]["expected"]


@pytest.mark.parametrize("lang", sorted(FIXTURES))
def test_regex_misses_and_false_edges_are_the_known_ones(lang, docs):
    fx = FIXTURES[lang]
    assert set(docs[lang, "regex"].edges) == (fx["expected"] - fx["regex_misses"]) | fx["regex_false"]


@pytest.mark.parametrize("lang", sorted(FIXTURES))
def test_tree_sitter_resolves_at_least_the_true_regex_edges(lang, docs):
    true = FIXTURES[lang]["expected"]
    ts_true = set(docs[lang, "tree-sitter"].edges) & true
    regex_true = set(docs[lang, "regex"].edges) & true
    assert regex_true <= ts_true
    assert len(ts_true) >= len(regex_true)


@pytest.mark.parametrize("lang", sorted(FIXTURES))
def test_broken_file_is_counted_and_keeps_its_imports(lang, docs):
    doc = docs[lang, "tree-sitter"]
    broken = FIXTURES[lang]["broken"]
    assert (broken, lang, "parse_error") in doc.problems
    assert doc.per_language[lang].parse_errors >= 1
    assert any(a == broken for a, _ in doc.edges)
    assert docs[lang, "regex"].problems == []  # the regex mode never parses


@pytest.mark.parametrize("lang", sorted(FIXTURES))
def test_self_missing_and_cycles_are_counted_not_edges(lang, docs):
    doc = docs[lang, "tree-sitter"]
    stats = doc.per_language[lang]
    assert all(a != b for a, b in doc.edges)
    assert stats.edges_unresolved >= 1  # missing files, standard library, third party
    assert stats.edges_found == stats.edges_resolved + stats.edges_unresolved + stats.self_imports
    assert stats.self_imports >= 1  # every fixture has a file importing itself
    if not FIXTURES[lang].get("no_cycle"):
        assert doc.cycles_broken >= 1
        assert doc.order_quality is not None and doc.order_quality < 1.0
    assert doc.n_files == len(FIXTURES[lang]["files"])


def test_js_edge_to_json_is_resolved_but_not_an_ordering_edge(docs):
    doc = docs["javascript", "tree-sitter"]
    assert ("src/index.js", "src/c.json") in doc.edges
    assert doc.graph_edges == len(doc.edges) - 1


def test_without_go_mod_gopath_style_suffix_resolution():
    files = [f for f in repo_files("go") if f["path"] != "go.mod"]
    edges = set(build_repo_doc(files).edges)
    assert ("main.go", "internal/store/store.go") in edges
    assert ("internal/store/db/db.go", "internal/store/store.go") in edges


def test_php_without_composer_json_uses_path_suffixes():
    files = [f for f in repo_files("php") if f["path"] != "composer.json"]
    edges = set(build_repo_doc(files).edges)
    assert ("src/Services/Mailer.php", "src/Models/User.php") in edges


def test_python_flat_layout_and_missing_init():
    # Empty __init__.py files are often dropped by the filters: `import pkg.mod` still resolves.
    files = [
        {"path": "pkg/mod.py", "language": "python", "content": "X = 1\n"},
        {"path": "pkg/sub/deep.py", "language": "python", "content": "from pkg import mod\nimport pkg.mod\n"},
        {"path": "app.py", "language": "python", "content": "from pkg.sub.deep import X\n"},
    ]
    edges = set(build_repo_doc(files).edges)
    assert edges == {("pkg/sub/deep.py", "pkg/mod.py"), ("app.py", "pkg/sub/deep.py")}


def test_cython_uses_regexes_in_both_modes_without_a_problem():
    files = [
        {"path": "pkg/fast.pyx", "language": "cython",
         "content": "cimport numpy as np\nfrom pkg.defs cimport Thing\ninclude \"inc.pxi\"\n"},
        {"path": "pkg/defs.pxd", "language": "cython", "content": "cdef class Thing:\n    pass\n"},
        {"path": "pkg/inc.pxi", "language": "cython", "content": "cdef int k = 1\n"},
    ]
    for mode in ("regex", "tree-sitter"):
        doc = build_repo_doc(files, mode=mode)
        assert set(doc.edges) == {("pkg/fast.pyx", "pkg/defs.pxd"), ("pkg/fast.pyx", "pkg/inc.pxi")}
        assert doc.problems == []


def test_language_without_rules_has_no_references():
    assert extract_refs("import x\n", "haskell", "A.hs").refs == []


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="mode"):
        extract_refs("import x\n", "python", "a.py", mode="ast")


_SNIPPETS = st.sampled_from([
    "import ", "from . import x\n", "#include \"", "use crate::{a, b::{c", "require '", "<?php use A\\{",
    "import (\n\"a/b\"", "using static ", "mod m;\n", "\n", "'", '"', "(", "{", "}", ";", "..", "/", "\\", "\x00",
])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(_SNIPPETS, st.text(max_size=8)), max_size=30).map("".join))
def test_any_text_in_any_language_never_crashes(text):
    files = [{"path": f"d/f{i}.{lang[:2]}", "language": lang, "content": text}
             for i, lang in enumerate(SUPPORTED_LANGUAGES)]
    for mode in ("regex", "tree-sitter"):
        doc = build_repo_doc(files, mode=mode)
        assert doc.n_files == len(files)
        for s in doc.per_language.values():
            assert s.edges_found == s.edges_resolved + s.edges_unresolved + s.self_imports
        assert all(reason != "resolve_failed" for _, _, reason in doc.problems)
