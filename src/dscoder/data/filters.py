"""File-level filtering: the StarCoder rules of Sec. 2.1 plus the parse check of Sec. 2.4.

Each rule is a function `(text, language, settings) -> reason | None`; `filter_file` applies
them in order and returns the first reason that drops the file (datatrove's filter shape:
keep, or drop with a reason). Every threshold is a parameter of `FilterSettings`.
"""

from __future__ import annotations

import __future__
import ast
import functools
import operator
import re
import warnings
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Callable, ClassVar, NamedTuple

import pyarrow as pa

from dscoder.config import Settings, check
from dscoder.data.step import Step, StepContext
from dscoder.data.stream import Batch
from dscoder.schemas import FILES
from dscoder.data.treesitter import error_share, grammar_name


@dataclass(frozen=True, kw_only=True)
class FilterSettings(Settings):
    section: ClassVar[str] = "filter"

    max_avg_line_length: float = 100.0
    """Sec. 2.1: drop a file whose average line length exceeds this (characters)."""
    max_line_length: int = 1000
    """Sec. 2.1: drop a file whose longest line exceeds this (characters)."""
    min_alpha_fraction: float = 0.25
    """Sec. 2.1: drop a file with a smaller share of alphabetic characters."""
    xml_header_window: int = 100
    """Sec. 2.1: drop a non-XSLT file with `<?xml version=` in its first this-many characters."""
    html_min_visible_fraction: float = 0.20
    """Sec. 2.1: HTML keeps files whose visible text is at least this share of the code..."""
    html_min_visible_chars: int = 100
    """...and at least this many characters."""
    data_min_chars: int = 50
    """Sec. 2.1: JSON/YAML files keep only 50 to 5000 characters (lower bound)."""
    data_max_chars: int = 5000
    """Sec. 2.1: JSON/YAML upper bound."""
    data_languages: list[str] = field(default_factory=lambda: ["json", "yaml"])
    """Languages the JSON/YAML size rule applies to."""
    python_compile: bool = True
    """Sec. 2.4 (quality screening): Python files must compile."""
    max_parse_error_share: float = 0.05
    """Sec. 2.4: files of `parse_languages` whose bytes inside tree-sitter ERROR/MISSING
    nodes exceed this share are dropped."""
    parse_languages: list[str] = field(default_factory=lambda: [
        "c", "cpp", "csharp", "go", "java", "javascript", "typescript", "rust", "php", "ruby",
        "css", "shell", "lua", "json", "yaml", "toml", "sql"])
    """Languages checked with tree-sitter (Python is checked by compiling instead)."""

    def validate(self) -> None:
        for name in ("min_alpha_fraction", "html_min_visible_fraction", "max_parse_error_share"):
            v = getattr(self, name)
            check(0.0 <= v <= 1.0, f"filter.{name}", f"must be in [0, 1], got {v}")
        for name in ("max_avg_line_length", "max_line_length", "xml_header_window", "html_min_visible_chars",
                     "data_min_chars", "data_max_chars"):
            check(getattr(self, name) >= 0, f"filter.{name}", f"must be >= 0, got {getattr(self, name)}")
        check(self.data_min_chars <= self.data_max_chars, "filter.data_min_chars",
              f"must be <= data_max_chars ({self.data_max_chars})")


class Drop(NamedTuple):
    """Why a file is dropped: the rule id, and what was measured (for the audit)."""

    reason: str
    detail: str | None = None


def rule_line_length(text: str, language: str, s: FilterSettings) -> Drop | None:
    lines = text.splitlines() or [""]
    longest = max(map(len, lines))
    if longest > s.max_line_length:
        return Drop("max_line_length", f"{longest} > {s.max_line_length}")
    avg = sum(map(len, lines)) / len(lines)
    if avg > s.max_avg_line_length:
        return Drop("avg_line_length", f"{avg:.1f} > {s.max_avg_line_length}")
    return None


def rule_alpha_fraction(text: str, language: str, s: FilterSettings) -> Drop | None:
    if not text:
        return None  # empty files (e.g. __init__.py) carry package structure; keep them
    share = sum(c.isalpha() for c in text) / len(text)
    return Drop("alpha_fraction", f"{share:.3f} < {s.min_alpha_fraction}") if share < s.min_alpha_fraction else None


def rule_xml_header(text: str, language: str, s: FilterSettings) -> Drop | None:
    if language != "xslt" and "<?xml version=" in text[: s.xml_header_window]:
        return Drop("xml_header", f"<?xml version= in the first {s.xml_header_window} characters")
    return None


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    p = _VisibleText()
    try:
        p.feed(html)
        p.close()
    except Exception:  # html.parser is lenient; anything it still rejects counts as no text
        return ""
    return " ".join(" ".join(p.parts).split())


def rule_html(text: str, language: str, s: FilterSettings) -> Drop | None:
    if language != "html":
        return None
    vis = visible_text(text)
    if len(vis) < s.html_min_visible_chars or len(vis) < s.html_min_visible_fraction * max(len(text), 1):
        return Drop("html_visible_text", f"{len(vis)} visible of {len(text)} characters")
    return None


def rule_data_size(text: str, language: str, s: FilterSettings) -> Drop | None:
    if language in s.data_languages and not (s.data_min_chars <= len(text) <= s.data_max_chars):
        return Drop("data_file_size", f"{len(text)} characters, outside [{s.data_min_chars}, {s.data_max_chars}]")
    return None


#: Python source longer than this is compiled a run of top-level statements at a time
#: (`python_compiles`): compiling costs ~100 bytes of memory per source byte (the parser's
#: tokens and memo, the AST, the code objects), +41 MB for one 346 KB test module of sympy.
COMPILE_CHUNK_CHARS = 1 << 16

# A line that starts at column 0 with something that can begin a statement: where one run of
# top-level statements may end and the next begin (a guess, checked by compiling: see below).
_TOP_LEVEL_LINE = re.compile(r"\n(?=[^\s#)\]}])(?!(?:else|elif|except|finally)\b)")
_MODULE_GLOBAL = re.compile(r"^[ \t]*global\b", re.M)
# The `from __future__` features a file's first run passes on to the others: all but
# barry_as_FLUFL, which a compile flag turns on in the parser but an import in the file
# itself does not (the file is parsed before its imports are read), so passing it on would
# accept `<>` that the whole file rejects.
_FUTURE_FLAGS = functools.reduce(operator.or_, (getattr(__future__, n).compiler_flag
                                                for n in __future__.all_feature_names if n != "barry_as_FLUFL"))


def _compile(text: str, path: str, flags: int = 0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes is not an error
        return compile(text, path or "<file>", "exec", flags=flags, dont_inherit=True)


def _declares_module_global(tree: ast.Module) -> bool:
    """Whether a `global` statement runs in module scope (not inside a def, lambda or class)."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Global):
            return True
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stack += [c for c in ast.iter_child_nodes(node) if isinstance(c, (ast.stmt, ast.excepthandler, ast.match_case))]
    return False


def _chunks_compile(text: str, path: str, chunk: int) -> bool:
    """Whether `text` compiles, found by compiling runs of top-level statements of about
    `chunk` characters; False also where that cannot tell (the caller compiles it whole).

    A run ends before a line that starts at column 0 with code. That is a guess (the line may
    be inside a string or brackets), but only a run that compiles alone is accepted, and a
    run that compiles alone ends outside every string and bracket, so the whole file's
    statements are the runs' statements in turn: the whole compiles exactly when every run
    does, given the two things a statement sees of the others at module level:
    - `from __future__` features: those of the first run are passed to the others, and a
      later run that mentions `__future__` is not judged here (the import would be legal at
      its run's start but not at its place in the file);
    - a `global` declaration in module scope, which is an error after an earlier use of the
      name at module level: a run that has one is not judged here (one inside a function is
      judged: it concerns that function's own statements).
    A run that fails is retried twice as long (a guessed end inside a string makes it fail),
    so a file with an error costs a few compiles before the caller's exact one."""
    flags, start, size = 0, 0, chunk
    while start < len(text):
        m = _TOP_LEVEL_LINE.search(text, start + size) if start + size < len(text) else None
        end = m.start() + 1 if m else len(text)
        piece = text[start:end]
        try:
            code = _compile(piece, path, flags)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            if end == len(text):
                return False
            size *= 2
            continue
        if start == 0:
            flags = code.co_flags & _FUTURE_FLAGS
        elif "__future__" in piece:
            return False
        if _MODULE_GLOBAL.search(piece) and _declares_module_global(_compile(piece, path, flags | ast.PyCF_ONLY_AST)):
            return False
        del code, piece
        start, size = end, chunk
    return True


def python_syntax_error(text: str, path: str = "", chunk: int = COMPILE_CHUNK_CHARS) -> Drop | None:
    """The Sec. 2.4 check for Python: None if `text` compiles, else why not (the first error
    `compile` reports for the whole file). Files longer than `chunk` characters are compiled
    in runs of top-level statements (`_chunks_compile`), so the memory this needs is set by
    `chunk` and the longest statement, not the file; only a file they cannot clear is compiled
    whole, for its exact error."""
    if len(text) > chunk and _chunks_compile(text, path, chunk):
        return None
    try:
        _compile(text, path)
    except SyntaxError as e:
        return Drop("python_syntax", f"line {e.lineno}: {e.msg}")
    except (ValueError, RecursionError, MemoryError, OverflowError) as e:
        return Drop("python_syntax", type(e).__name__)
    return None


def rule_parse(text: str, language: str, s: FilterSettings, path: str = "") -> Drop | None:
    if language == "python" and s.python_compile:
        return python_syntax_error(text, path)
    if language in s.parse_languages:
        share = error_share(text.encode("utf-8"), grammar_name(language, path))
        if share is not None and share > s.max_parse_error_share:
            return Drop("parse_errors", f"{share:.3f} of bytes in error nodes > {s.max_parse_error_share}")
    return None


#: The rules in the order they are tried: cheap text rules first, parsing last.
RULES: tuple[Callable[[str, str, FilterSettings], Drop | None], ...] = (
    rule_line_length, rule_alpha_fraction, rule_xml_header, rule_html, rule_data_size,
)


def filter_decision(text: str, language: str, path: str, s: FilterSettings) -> Drop | None:
    """None to keep the file, else the first rule that drops it and what it measured."""
    for rule in RULES:
        drop = rule(text, language, s)
        if drop:
            return drop
    return rule_parse(text, language, s, path)


def filter_file(text: str, language: str, path: str, s: FilterSettings) -> str | None:
    """None to keep the file, else the id of the first rule that drops it."""
    drop = filter_decision(text, language, path, s)
    return drop.reason if drop else None


@dataclass(frozen=True)
class FilterStep(Step):
    """The filter as a streaming step over rows of schemas.FILES: kept rows pass through
    unchanged; each dropped file is counted by language and rule and audited."""

    settings: FilterSettings
    stage: ClassVar[str] = "filter"
    schema: ClassVar[pa.Schema] = FILES

    def process(self, batch: Batch, ctx: StepContext) -> None:
        t = batch.table
        keep = []
        for row in t.select(["repo_id", "repo_name", "path", "language", "content", "size"]).to_pylist():
            drop = filter_decision(row["content"], row["language"], row["path"], self.settings)
            lang = row["language"]
            keep.append(drop is None)
            ctx.count(("in", lang))
            if drop is None:
                ctx.count(("kept", lang))
                ctx.count(("kept_bytes", lang), row["size"])
                continue
            ctx.count(("dropped", lang, drop.reason))
            ctx.count(("dropped_bytes", lang), row["size"])
            ctx.audit(drop.reason, repo_id=row["repo_id"], repo_name=row["repo_name"], path=row["path"],
                      language=lang, detail=drop.detail, size=row["size"])
        ctx.write(t.filter(pa.array(keep, pa.bool_())))
