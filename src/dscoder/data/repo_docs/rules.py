"""The per-language table: how to find imports (regex and tree-sitter) and how to resolve them.

The paper extracts dependencies with regular expressions and names language-aware parsing
as future work because per-language parsing is hard to extend (Sec. 2.2). Here a language is
one `LanguageRules` entry: a tree-sitter query, the equivalent regexes, a text normaliser
per reference kind (shared by both modes, see refs.py) and a resolver (resolve.py).
Adding a language is adding an entry.

Conventions for both finders:
- a tree-sitter capture named `@<kind>` marks the text of one reference of that kind;
  `@name` captures (Python `from M import a, b`) are the names imported from it; captures
  starting with `_` only serve predicates;
- a regex's group `spec` (else the whole match) is the text of one reference of its kind,
  its optional group `names` the imported names.
Regexes are line-anchored (`^`, re.MULTILINE) like the paper's simple static patterns; they
cannot tell code from comments and strings, which tree-sitter can.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from dscoder.data.repo_docs import refs as R
from dscoder.data.repo_docs import resolve as V
from dscoder.data.repo_docs.refs import Ref
from dscoder.data.repo_docs.resolve import RepoIndex

Normaliser = Callable[[str], list[str]]
Resolver = Callable[[Ref, str, RepoIndex], list[str]]


@dataclass(frozen=True)
class LanguageRules:
    query: str | None
    """Tree-sitter query (grammar from `dscoder.data.treesitter.grammar_name`); None for a
    language the grammar pack lacks: it then uses its regexes in both modes."""
    regexes: tuple[tuple[str, str], ...]
    """(kind, pattern) pairs for the regex mode, compiled with re.MULTILINE."""
    resolve: Resolver
    """Maps one reference of a file to repository files (resolve.py)."""
    normalise: Mapping[str, Normaliser] = field(default_factory=dict)
    """kind → captured text to reference specs; kinds not listed use `refs.clean`."""

    def normaliser(self, kind: str) -> Normaliser:
        return self.normalise.get(kind, R.clean)


_PUB = r"(?:pub(?:\([^)\n]*\))?[ \t]+)?"
_JS_QUERY = """
(import_statement source: (string (string_fragment) @import))
(export_statement source: (string (string_fragment) @import))
(call_expression function: (identifier) @_f arguments: (arguments . (string (string_fragment) @import))
  (#eq? @_f "require"))
(call_expression function: (import) arguments: (arguments . (string (string_fragment) @import)))
"""
_JS_REGEXES = (
    ("import", r"""^[ \t]*import[ \t]+(?:[\w*{}\s,$]+?[\s}]from[ \t]*)?['"](?P<spec>[^'"\n]+)['"]"""),
    ("import", r"""^[ \t]*export[ \t]+[\w*{}\s,$]+?[\s}]from[ \t]*['"](?P<spec>[^'"\n]+)['"]"""),
    ("import", r"""\brequire[ \t]*\([ \t]*['"](?P<spec>[^'"\n]+)['"][ \t]*\)"""),
    ("import", r"""\bimport[ \t]*\([ \t]*['"](?P<spec>[^'"\n]+)['"][ \t]*\)"""),
)
_C_QUERY = """
(preproc_include path: (string_literal) @include)
(preproc_include path: (system_lib_string) @include_sys)
"""
_C_REGEXES = (
    ("include", r'^[ \t]*#[ \t]*include[ \t]*(?P<spec>"[^"\n]+")'),
    ("include_sys", r"^[ \t]*#[ \t]*include[ \t]*(?P<spec><[^>\n]+>)"),
)

RULES: dict[str, LanguageRules] = {
    "python": LanguageRules(
        query="""
        (import_statement name: (dotted_name) @import)
        (import_statement name: (aliased_import name: (dotted_name) @import))
        (import_from_statement module_name: (_) @from name: (dotted_name) @name)
        (import_from_statement module_name: (_) @from name: (aliased_import name: (dotted_name) @name))
        (import_from_statement module_name: (_) @from (wildcard_import))
        (future_import_statement "__future__" @from name: (dotted_name) @name)
        """,
        regexes=(
            ("import", r"^[ \t]*import[ \t]+(?P<spec>[\w.]+(?:[ \t]+as[ \t]+\w+)?(?:[ \t]*,[ \t]*[\w.]+(?:[ \t]+as[ \t]+\w+)?)*)"),
            ("from", r"^[ \t]*from[ \t]+(?P<spec>\.+[\w.]*|[\w.]+)[ \t]+import[ \t]+(?P<names>\([^)]*\)|[^\n#;]+)"),
        ),
        resolve=V.resolve_python,
        normalise={"import": R.python_import_list},
    ),
    "java": LanguageRules(
        query="(import_declaration) @import",
        regexes=(("import", r"^[ \t]*import[ \t]+(?:static[ \t]+)?(?P<spec>[\w.]+(?:\.\*)?)[ \t]*;"),),
        resolve=V.resolve_java,
        normalise={"import": R.java_import},
    ),
    "javascript": LanguageRules(query=_JS_QUERY, regexes=_JS_REGEXES, resolve=V.resolve_javascript),
    "typescript": LanguageRules(
        query=_JS_QUERY + "(import_require_clause source: (string (string_fragment) @import))",
        regexes=_JS_REGEXES,
        resolve=V.resolve_javascript,
    ),
    "c": LanguageRules(query=_C_QUERY, regexes=_C_REGEXES, resolve=V.resolve_c),
    "cpp": LanguageRules(query=_C_QUERY, regexes=_C_REGEXES, resolve=V.resolve_c),
    "cuda": LanguageRules(query=_C_QUERY, regexes=_C_REGEXES, resolve=V.resolve_c),
    "csharp": LanguageRules(
        query="(using_directive) @using",
        regexes=(
            ("using", r"^[ \t]*(?:global[ \t]+)?using[ \t]+(?:static[ \t]+)?(?:\w+[ \t]*=[ \t]*)?(?P<spec>[\w.]+)[ \t]*;"),
        ),
        resolve=V.resolve_csharp,
        normalise={"using": R.csharp_using},
    ),
    "go": LanguageRules(
        query="(import_spec path: (_) @import)",
        regexes=(
            ("import", r'^[ \t]*import[ \t]+(?:[\w.]+[ \t]+)?(?P<spec>"[^"\n]+")'),
            ("import", r"^[ \t]*import[ \t]*\((?P<spec>[^)]*)\)"),
        ),
        resolve=V.resolve_go,
        normalise={"import": R.go_import},
    ),
    "rust": LanguageRules(
        query="""
        (mod_item !body name: (identifier) @mod)
        (use_declaration argument: (_) @use)
        """,
        regexes=(
            ("mod", rf"^[ \t]*{_PUB}mod[ \t]+(?P<spec>\w+)[ \t]*;"),
            ("use", rf"^[ \t]*{_PUB}use[ \t]+(?P<spec>[^;]+);"),
        ),
        resolve=V.resolve_rust,
        normalise={"use": R.rust_use},
    ),
    "php": LanguageRules(
        query="""
        [(require_expression) (require_once_expression) (include_expression) (include_once_expression)] @require
        (namespace_use_declaration) @use
        (use_declaration) @use
        """,
        regexes=(
            ("require", r"^[ \t]*(?:require|require_once|include|include_once)\b(?P<spec>[^;\n]+);"),
            ("use", r"^[ \t]*use[ \t]+(?P<spec>[^;(]+);"),
        ),
        resolve=V.resolve_php,
        normalise={"require": R.php_require, "use": R.php_use},
    ),
    "ruby": LanguageRules(
        query="""
        (call method: (identifier) @_m arguments: (argument_list . (string (string_content) @require))
          (#any-of? @_m "require" "load"))
        (call method: (identifier) @_m arguments: (argument_list . (string (string_content) @require_relative))
          (#eq? @_m "require_relative"))
        (call method: (identifier) @_m arguments: (argument_list (simple_symbol) . (string (string_content) @require))
          (#eq? @_m "autoload"))
        """,
        regexes=(
            ("require", r"""^[ \t]*(?:require|load)[ \t(]+['"](?P<spec>[^'"\n]+)['"]"""),
            ("require_relative", r"""^[ \t]*require_relative[ \t(]+['"](?P<spec>[^'"\n]+)['"]"""),
            ("require", r"""^[ \t]*autoload[ \t(]+:\w+[ \t]*,[ \t]*['"](?P<spec>[^'"\n]+)['"]"""),
        ),
        resolve=V.resolve_ruby,
    ),
    # No Cython grammar in tree-sitter-language-pack 0.13.0: regexes in both modes.
    "cython": LanguageRules(
        query=None,
        regexes=(
            ("import", r"^[ \t]*c?import[ \t]+(?P<spec>[\w.]+(?:[ \t]+as[ \t]+\w+)?(?:[ \t]*,[ \t]*[\w.]+(?:[ \t]+as[ \t]+\w+)?)*)"),
            ("from", r"^[ \t]*from[ \t]+(?P<spec>\.+[\w.]*|[\w.]+)[ \t]+c?import[ \t]+(?P<names>\([^)]*\)|[^\n#;]+)"),
            ("include", r"""^[ \t]*include[ \t]+(?P<spec>['"][^'"\n]+['"])"""),
        ),
        resolve=V.resolve_cython,
        normalise={"import": R.python_import_list},
    ),
}

SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(sorted(RULES))
