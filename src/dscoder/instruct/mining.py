"""Instructions mined from the clean corpus: a documented function becomes a request and its code.

The paper's instruction data is not public (Sec. 3.7); so the default profile has real data,
a function with documentation is turned into an Alpaca-style pair:

  Python (`ast`): a function or method with a docstring; instruction = a templated request
    built from its signature and docstring, answer = the function's source (decorators and
    docstring included) in a ```python fence.
  C, C++, Java, JavaScript, TypeScript, Rust, Go, C#, PHP (tree-sitter, from
    tree-sitter-language-pack 0.13.0): a function whose definition is directly preceded by a
    comment (`/** ... */`, `///`; in C, C++ and Go any comment, which is their convention);
    instruction from the cleaned comment and the signature (text before the body), answer =
    the definition.

Kept only when the documentation has at least `min_doc_words` words and the answer
`min_answer_lines`..`max_answer_lines` lines (a body of just `pass`, `...` or nothing teaches
nothing). Per repository at most `max_per_repo` examples, chosen by a seeded hash (not
position), then put back in (path, line) order. The template phrasing is a seeded hash of
the function's signature and documentation, so the output is a pure function of (rows, params).

`docstrings(rows)` (every Python module/class/function docstring and every doc comment) is
reused by the v1.5 mixture and the general-LM corpus as "natural language about code".
"""

from __future__ import annotations

import ast
import hashlib
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Iterator, Mapping

from dscoder.config import Settings
from dscoder.data.repo_blocks import block_content, spans_problem
from dscoder.instruct.records import Example

#: language id -> (tree-sitter grammar, function node types, comment must be doc-style).
DOC_COMMENT_LANGUAGES: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "c": ("c", ("function_definition",), False),
    "cpp": ("cpp", ("function_definition",), False),
    "go": ("go", ("function_declaration", "method_declaration"), False),
    "java": ("java", ("method_declaration", "constructor_declaration"), True),
    "javascript": ("javascript", ("function_declaration", "generator_function_declaration", "method_definition"), True),
    "typescript": ("typescript", ("function_declaration", "generator_function_declaration", "method_definition"), True),
    "rust": ("rust", ("function_item",), True),
    "csharp": ("csharp", ("method_declaration", "constructor_declaration"), True),
    "php": ("php", ("function_definition", "method_declaration"), True),
}
#: Wrappers whose leading comment documents the function inside them.
_WRAPPERS = {"export_statement", "template_declaration", "decorated_definition"}
_COMMENT_TYPES = {"comment", "line_comment", "block_comment"}
#: Markdown fence names of the languages.
FENCE = {"cpp": "cpp", "csharp": "csharp", "javascript": "javascript", "typescript": "typescript"}

TEMPLATES = (
    "Write a {lang} function `{sig}` that does the following:\n{doc}",
    "Implement the {lang} function below according to its documentation.\n\nSignature: `{sig}`\n\n{doc}",
    "{doc}\n\nWrite this as a {lang} function with the signature `{sig}`.",
)
METHOD_TEMPLATES = (
    "Write the {lang} method `{sig}` of class `{cls}`. It should do the following:\n{doc}",
    "Implement `{cls}.{name}` in {lang} (signature `{sig}`) according to its documentation:\n\n{doc}",
)
LANG_NAMES = {"python": "Python", "cython": "Cython", "c": "C", "cpp": "C++", "go": "Go", "java": "Java",
              "javascript": "JavaScript", "typescript": "TypeScript", "rust": "Rust", "csharp": "C#", "php": "PHP"}


@dataclass(frozen=True, kw_only=True)
class MiningSettings(Settings):
    section: ClassVar[str] = "instruct_data.mining"

    languages: tuple[str, ...] = ("python", "c", "cpp", "go", "java", "javascript", "typescript", "rust", "csharp", "php")
    """Languages to mine (python via `ast`, the others via tree-sitter doc comments)."""
    min_doc_words: int = 4
    """Documentation shorter than this (words) is not an instruction."""
    min_answer_lines: int = 3
    """Answers shorter than this (lines of the definition) are skipped (trivial bodies)."""
    max_answer_lines: int = 80
    """Answers longer than this are skipped (keeps examples within a training window)."""
    max_doc_chars: int = 2000
    """Documentation longer than this (characters) is skipped."""
    max_per_repo: int = 200
    """At most this many examples per repository (a seeded choice when there are more)."""
    include_methods: bool = True
    """Also mine methods (Python: functions inside a class body)."""
    fence_answers: bool = True
    """Wrap answers in a Markdown code fence, as the released Instruct models answer."""
    seed: int = 0
    """Seeds the per-repository choice and the template phrasing."""

    def validate(self) -> None:
        known = {"python", *DOC_COMMENT_LANGUAGES}
        bad = sorted(set(self.languages) - known)
        self.require(not bad, "languages", f"unsupported {bad}; choose from {sorted(known)}")
        self.require(self.min_doc_words >= 1, "min_doc_words", f"must be >= 1, got {self.min_doc_words}")
        self.require(1 <= self.min_answer_lines <= self.max_answer_lines, "max_answer_lines",
              f"need 1 <= min_answer_lines <= max_answer_lines, got {self.min_answer_lines}, {self.max_answer_lines}")
        self.require(self.max_doc_chars >= 1, "max_doc_chars", f"must be >= 1, got {self.max_doc_chars}")
        self.require(self.max_per_repo >= 1, "max_per_repo", f"must be >= 1, got {self.max_per_repo}")


@dataclass(frozen=True)
class Documented:
    """A documented function found in a file."""

    path: str
    language: str
    line: int
    name: str
    signature: str
    doc: str
    code: str
    cls: str | None = None


def _hash(*parts: Any) -> int:
    return int.from_bytes(hashlib.blake2b("\0".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


# ---------------------------------------------------------------------------- Python

def _python_signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    ret = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){ret}"


def python_functions(source: str, path: str, stats: Counter, include_methods: bool = True) -> list[Documented]:
    """Functions (and methods) with a docstring in a Python file, in source order."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in old code
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        stats["python_parse_error"] += 1
        return []
    lines = source.splitlines(keepends=True)
    out: list[Documented] = []

    def visit(body: list[ast.stmt], cls: str | None) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and include_methods:
                visit(node.body, node.name)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=True)
                if not doc:
                    continue
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                code = "".join(lines[first - 1: node.end_lineno])
                # dedent a method by its own indentation, so the answer is valid on its own
                indent = len(code) - len(code.lstrip(" \t"))
                code = "".join(l[indent:] if l[:indent].strip() == "" else l for l in code.splitlines(keepends=True))
                out.append(Documented(path, "python", first, node.name, _python_signature(node), doc,
                                      code.rstrip() + "\n", cls))

    visit(tree.body, None)
    return out


def python_docstrings(source: str) -> list[str]:
    """Every module, class and function docstring of a Python file (empty on a parse error)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                out.append(doc)
    return out


# ---------------------------------------------------------------------------- doc comments

_COMMENT_LINE = re.compile(r"^\s*(?:/\*+!?|\*+/|\*(?!/)|//[/!]?|#)?\s?", re.M)


def clean_comment(text: str) -> str:
    """A comment's prose: markers (`/** */`, leading `*`, `///`, `//`) removed, lines kept."""
    text = re.sub(r"\s*\*+/\s*$", "", text.strip())
    lines = [_COMMENT_LINE.sub("", line, count=1).rstrip() for line in text.splitlines()]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def _is_doc_style(text: str) -> bool:
    return text.startswith("/**") or text.startswith("///") or text.startswith("//!")


def _leading_comment(anchor, src: bytes, doc_style: bool) -> str | None:
    """The comment block that ends on the line before (or the line of) `anchor`, or None."""
    parts = []
    node, start_row = anchor.prev_sibling, anchor.start_point[0]
    while node is not None and node.type in _COMMENT_TYPES:
        end_row = node.end_point[0] - (1 if node.end_point[1] == 0 else 0)  # Rust line comments end with "\n"
        if end_row not in (start_row - 1, start_row) or node.end_byte > anchor.start_byte:
            break
        line_start = src.rfind(b"\n", 0, node.start_byte) + 1
        if src[line_start: node.start_byte].strip():
            break  # a trailing comment of the previous statement
        parts.append(src[node.start_byte: node.end_byte].decode("utf-8", "replace"))
        start_row = node.start_point[0]
        node = node.prev_sibling
    if not parts:
        return None
    parts.reverse()
    if doc_style and not _is_doc_style(parts[0].lstrip()):
        return None
    return "\n".join(clean_comment(p) for p in parts).strip() or None


def doc_comment_functions(source: str, path: str, language: str, stats: Counter) -> list[Documented]:
    """Functions preceded by a (doc) comment, via tree-sitter, in source order."""
    from dscoder.data.treesitter import get_parser, grammar_name

    grammar, kinds, doc_style = DOC_COMMENT_LANGUAGES[language]
    parser = get_parser(grammar_name(language, path) if language == "typescript" else grammar)
    if parser is None:
        stats[f"no_grammar:{language}"] += 1
        return []
    src = source.encode("utf-8")
    tree = parser.parse(src)
    out: list[Documented] = []
    stack = [tree.root_node]
    found = []
    while stack:
        node = stack.pop()
        if node.type in kinds:
            found.append(node)
            continue  # nested functions are not mined
        stack.extend(reversed(node.children))
    for node in found:
        body = node.child_by_field_name("body")
        if body is None:
            continue  # a declaration without a body
        anchor = node
        while anchor.parent is not None and anchor.parent.type in _WRAPPERS:
            anchor = anchor.parent
        doc = _leading_comment(anchor, src, doc_style)
        if doc is None:
            continue
        name_node = node.child_by_field_name("name") or node.child_by_field_name("declarator")
        name = name_node.text.decode("utf-8", "replace") if name_node is not None else "?"
        name = re.split(r"[(\s]", name.strip(), maxsplit=1)[0] or "?"
        sig = " ".join(src[anchor.start_byte: body.start_byte].decode("utf-8", "replace").split())
        code = src[anchor.start_byte: node.end_byte].decode("utf-8", "replace")
        col = anchor.start_point[1]
        if col:  # dedent a method by its first line's column
            code = "\n".join(l[col:] if l[:col].strip() == "" else l for l in code.split("\n"))
        out.append(Documented(path, language, anchor.start_point[0] + 1, name, sig, doc, code.rstrip() + "\n"))
    return out


# ---------------------------------------------------------------------------- examples

def file_functions(content: str, path: str, language: str, params: MiningSettings, stats: Counter) -> list[Documented]:
    if language == "python":
        return python_functions(content, path, stats, params.include_methods)
    if language in DOC_COMMENT_LANGUAGES:
        return doc_comment_functions(content, path, language, stats)
    return []


def keep_reason(fn: Documented, params: MiningSettings) -> str | None:
    """Why a documented function is not made into an example, or None to keep it."""
    if len(fn.doc.split()) < params.min_doc_words:
        return "doc_too_short"
    if len(fn.doc) > params.max_doc_chars:
        return "doc_too_long"
    n_lines = fn.code.count("\n")
    if n_lines < params.min_answer_lines:
        return "answer_too_short"
    if n_lines > params.max_answer_lines:
        return "answer_too_long"
    return None


def to_example(fn: Documented, repo_id: str, params: MiningSettings) -> Example:
    lang = LANG_NAMES.get(fn.language, fn.language)
    # phrasing from the function itself, not its repository: a vendored copy gives the same
    # example, which the data set then removes as a duplicate
    h = _hash(params.seed, fn.language, fn.signature, fn.doc)
    if fn.cls is not None:
        template = METHOD_TEMPLATES[h % len(METHOD_TEMPLATES)]
    else:
        template = TEMPLATES[h % len(TEMPLATES)]
    instruction = template.format(lang=lang, sig=fn.signature, doc=fn.doc, cls=fn.cls, name=fn.name)
    answer = f"```{FENCE.get(fn.language, fn.language)}\n{fn.code}```" if params.fence_answers else fn.code.rstrip("\n")
    return Example(id=f"mined:{repo_id}:{fn.path}:{fn.line}", source=f"mined:{fn.language}",
                   messages=({"role": "user", "content": instruction}, {"role": "assistant", "content": answer}),
                   repo_id=repo_id, path=fn.path, language=fn.language)


@dataclass
class MiningResult:
    examples: list[Example] = field(default_factory=list)
    stats: Counter = field(default_factory=Counter)
    """found / kept per language, skipped by reason, repos with bad spans, capped examples."""


def mine_repo(row: Mapping[str, Any], params: MiningSettings) -> MiningResult:
    """Examples of one REPOS row (capped, in (path, line) order)."""
    res = MiningResult()
    problem = spans_problem(dict(row))
    if problem is not None:
        res.stats[f"bad_repo:{problem}"] += 1
        return res
    repo_id = row["repo_id"]
    kept: list[Documented] = []
    for span in row["files"]:
        lang = span["language"]
        if lang not in params.languages:
            continue
        for fn in file_functions(block_content(row["text"], span), span["path"], lang, params, res.stats):
            res.stats[f"found:{lang}"] += 1
            reason = keep_reason(fn, params)
            if reason:
                res.stats[f"skipped:{reason}"] += 1
            else:
                kept.append(fn)
    if len(kept) > params.max_per_repo:
        res.stats["skipped:repo_cap"] += len(kept) - params.max_per_repo
        kept = sorted(kept, key=lambda f: (_hash(params.seed, repo_id, f.path, f.line), f.path, f.line))[: params.max_per_repo]
    kept.sort(key=lambda f: (f.path, f.line))
    for fn in kept:
        res.stats[f"kept:{fn.language}"] += 1
    res.examples = [to_example(fn, repo_id, params) for fn in kept]
    return res


def mine_repos(rows: Iterable[Mapping[str, Any]], params: MiningSettings) -> MiningResult:
    """`mine_repo` over REPOS rows, in row order; stats summed."""
    params.validate()
    total = MiningResult()
    for row in rows:
        r = mine_repo(row, params)
        total.examples.extend(r.examples)
        total.stats.update(r.stats)
    return total


def docstrings(rows: Iterable[Mapping[str, Any]], languages: Iterable[str] = ("python", *DOC_COMMENT_LANGUAGES)
               ) -> Iterator[tuple[str, str, str]]:
    """(repo_id, path, text) of every Python docstring and every function doc comment."""
    langs = set(languages)
    stats: Counter = Counter()
    for row in rows:
        if spans_problem(dict(row)) is not None:
            continue
        for span in row["files"]:
            lang = span["language"]
            if lang not in langs:
                continue
            content = block_content(row["text"], span)
            if lang == "python":
                texts = python_docstrings(content)
            elif lang in DOC_COMMENT_LANGUAGES:
                texts = [f.doc for f in doc_comment_functions(content, span["path"], lang, stats)]
            else:
                continue
            for t in texts:
                yield row["repo_id"], span["path"], t
