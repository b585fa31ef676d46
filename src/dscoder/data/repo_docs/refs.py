"""What an import reference is, and how a captured piece of source text becomes references.

Both extraction modes (regex and tree-sitter) only *locate* an import statement or its
specifier; the text they capture goes through the same normaliser here, so the two modes
differ only in what they find, never in how a find is read. That keeps the regex vs
tree-sitter comparison (bench/repo_docs.py `modes`) about extraction alone: resolution is shared too.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Ref(NamedTuple):
    """One import reference found in a file, before resolution.

    `kind` tells the language's resolver how to read `spec` (e.g. "include" vs
    "include_sys" for C, "mod" vs "use" for Rust). `names` is only used by Python's
    `from M import a, b` (sorted), where `a` may be a submodule file of package `M`.
    """

    kind: str
    spec: str
    names: tuple[str, ...] = ()


_QUOTES = "\"'`<>"


def clean(text: str) -> list[str]:
    """Default normaliser: a string literal or a name, stripped of quotes and blanks."""
    spec = text.strip().strip(_QUOTES).strip()
    return [spec] if spec else []


def names_list(text: str) -> tuple[str, ...]:
    """Python `from M import` names: `(a, b as c)` → ("a", "b"), sorted; `*` dropped."""
    text = text.split("#", 1)[0]
    out = set()
    for part in text.replace("(", " ").replace(")", " ").replace("\\", " ").split(","):
        name = part.split(" as ", 1)[0].strip()
        if name and name != "*":
            out.add(name)
    return tuple(sorted(out))


def python_import_list(text: str) -> list[str]:
    """`a.b, c as d` → ["a.b", "c"] (regex captures the whole list; tree-sitter one name)."""
    return list(names_list(text))


def java_import(text: str) -> list[str]:
    """`import static a.b.C.m;` → ["a.b.C.m"]; `import a.b.*;` → ["a.b.*"]."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"^\s*import\b|\bstatic\b|;", "", text)
    spec = re.sub(r"\s+", "", text)
    return [spec] if spec else []


def csharp_using(text: str) -> list[str]:
    """`global using static Alias = A.B.C;` → ["A.B.C"]."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"^\s*(global\s+)?using\s+(static\s+)?(unsafe\s+)?", "", text)
    text = text.split("=", 1)[-1].replace(";", "")
    text = re.sub(r"<.*>", "", text, flags=re.S)  # `using L = List<int>;`: the generic type
    spec = re.sub(r"\s+", "", text).removeprefix("global::")
    return [spec] if spec else []


def go_import(text: str) -> list[str]:
    """Every quoted path in `"a/b"` or in a whole `import ( ... )` block."""
    return [a or b for a, b in re.findall(r'"([^"\n]+)"|`([^`\n]+)`', text)]


def _flatten_tree(text: str, open_: str, close: str) -> list[str]:
    """Flatten a use tree: `a::{b, c::{d, e as f}, self}` → a::b, a::c::d, a::c::e, a::self."""
    out: list[str] = []

    def walk(prefix: str, s: str) -> None:
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(s):
            if ch == open_:
                depth += 1
            elif ch == close:
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:i])
                start = i + 1
        parts.append(s[start:])
        for part in parts:
            part = part.strip()
            if not part:
                continue
            brace = part.find(open_)
            if brace >= 0 and part.endswith(close):
                walk(prefix + part[:brace], part[brace + 1 : -1])
            else:
                part = re.split(r"\s+as\s+", part)[0].strip()
                out.append(prefix + part)

    walk("", text)
    return out


def rust_use(text: str) -> list[str]:
    """`use crate::a::{b, c::D};` (or its argument) → ["crate::a::b", "crate::a::c::D"]."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"^\s*(pub(\([^)]*\))?\s+)?use\s+", "", text).rstrip().rstrip(";")
    text = re.sub(r"\s+", " ", text).replace(" ::", "::").replace(":: ", "::")
    return [p for p in _flatten_tree(text, "{", "}") if p]


def php_use(text: str) -> list[str]:
    """`use A\\{B, C as D};`, `use function A\\f;`, `use T1, T2;` → ["A\\B", "A\\C"], ..."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"^\s*use\s+((function|const)\s+)?", "", text).rstrip().rstrip(";")
    text = re.sub(r"\s+", " ", text)
    out = []
    for p in _flatten_tree(text, "{", "}"):
        p = re.sub(r"^(function|const)\s+", "", p.strip()).lstrip("\\")
        if p and "{" not in p:
            out.append(p)
    return out


def php_require(text: str) -> list[str]:
    """`require_once __DIR__ . '/b.php'` → ["__DIR__/b.php"]; a dynamic path → []."""
    text = re.sub(r"^\s*(require|require_once|include|include_once)\b", "", text.strip())
    literals = re.findall(r"'([^'\n]*)'|\"([^\"\n$]*)\"", text)
    path = "".join(a or b for a, b in literals)
    if not path:
        return []
    if re.search(r"__DIR__|dirname\s*\(\s*__FILE__\s*\)", text):
        path = "__DIR__/" + path.lstrip("/")
    return [path]
