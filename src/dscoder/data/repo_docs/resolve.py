"""Resolve import references to files of the same repository, one small function per language.

A resolver takes a `Ref`, the importing file's path and the repository's `RepoIndex`, and
returns the repository files the reference names (possibly none: standard library and
third-party imports are counted as unresolved by the caller, never turned into edges).
Resolution is shared by both extraction modes, so they are compared on extraction alone.

Every resolver follows the language's own lookup rules as far as the repository alone
shows them (no build files are executed, no environment is known); where a build system
would add search paths we cannot see (C include flags, Go's GOPATH, PHP autoloaders without
composer.json) a *suffix* match stands in: the shallowest repository file whose path ends
with the imported path, component-wise.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
from collections import defaultdict
from typing import Callable, Iterable, Mapping, Sequence

from dscoder.data.repo_docs.refs import Ref


def join(*parts: str) -> str | None:
    """A normalised repository path, or None when it climbs out of the repository."""
    p = posixpath.normpath("/".join(x for x in parts if x))
    if p == ".":
        return ""
    if p == ".." or p.startswith("../") or p.startswith("/"):
        return None
    return p


def _depth_key(path: str) -> tuple[int, str]:
    return (path.count("/"), path)


class RepoIndex:
    """Lookup tables over one repository's files, built once and shared by all resolvers.

    `files` holds (path, language, content); content is the text, or a mapping whose
    `["content"]` gives it (a spooled file reads it from disk), or a zero-argument reader.
    Contents are read only for the few files that declare a project's layout (go.mod,
    Cargo.toml, composer.json) and for C# namespace declarations; tables for one language
    are built on first use.
    """

    def __init__(self, files: Iterable[tuple[str, str, str | Mapping[str, str] | Callable[[], str]]]):
        self.language: dict[str, str] = {}
        self.canonical: dict[str, str] = {}
        """Each path to itself: the index's copy of a path equal to a resolver's hit."""
        self._content: dict[str, str | Mapping[str, str] | Callable[[], str]] = {}
        by_dir: dict[str, list[str]] = defaultdict(list)
        by_name: dict[str, list[str]] = defaultdict(list)
        by_tail2: dict[str, list[str]] = defaultdict(list)  # "parent/name" → paths
        dirs: set[str] = {""}
        for path, language, content in files:
            self.language[path] = language
            self.canonical[path] = path
            self._content[path] = content
            d = posixpath.dirname(path)
            by_dir[d].append(path)
            by_name[posixpath.basename(path)].append(path)
            if d:
                by_tail2[f"{posixpath.basename(d)}/{posixpath.basename(path)}"].append(path)
            while d and d not in dirs:
                dirs.add(d)
                d = posixpath.dirname(d)
        self.by_dir = {d: sorted(v) for d, v in by_dir.items()}
        self.by_name = {n: sorted(v, key=_depth_key) for n, v in by_name.items()}
        self.by_tail2 = {n: sorted(v, key=_depth_key) for n, v in by_tail2.items()}
        dirs_by_name: dict[str, list[str]] = defaultdict(list)
        for d in dirs:
            if d:
                dirs_by_name[posixpath.basename(d)].append(d)
        self.dirs = dirs
        self.dirs_by_name = {n: sorted(v, key=_depth_key) for n, v in dirs_by_name.items()}

    def text(self, path: str) -> str:
        """A file's content; read on demand when the index was given a reader (so a large
        repository's contents need not all be held at once)."""
        c = self._content[path]
        if isinstance(c, str):
            return c
        return c["content"] if isinstance(c, Mapping) else c()

    # ---- generic lookups ----
    def has(self, path: str | None) -> bool:
        return path is not None and path in self.language

    def first(self, candidates: Iterable[str | None]) -> str | None:
        """The first candidate that is a file of the repository."""
        for c in candidates:
            if c is not None and c in self.language:
                return c
        return None

    def suffix(self, rel: str) -> list[str]:
        """Files whose path is `rel` or ends with `/rel`, shallowest first."""
        rel = rel.strip("/")
        parts = rel.rsplit("/", 2)
        bucket = self.by_tail2.get("/".join(parts[-2:]), ()) if len(parts) > 1 else self.by_name.get(rel, ())
        return [p for p in bucket if p == rel or p.endswith("/" + rel)]

    def dirs_with_suffix(self, rel: str) -> list[str]:
        """Folders whose path is `rel` or ends with `/rel`, shallowest first."""
        rel = rel.strip("/")
        if not rel:
            return [""]
        return [d for d in self.dirs_by_name.get(posixpath.basename(rel), ()) if d == rel or d.endswith("/" + rel)]

    def files_in(self, d: str, ext: str) -> list[str]:
        return [p for p in self.by_dir.get(d, ()) if p.endswith(ext)]

    # ---- per-language tables, built on first use ----
    @functools.cached_property
    def python_roots(self) -> list[str]:
        """Folders that hold a top-level package (a package whose parent is not one)."""
        roots = set()
        for p in self.by_name.get("__init__.py", ()):
            pkg = posixpath.dirname(p)
            if pkg and not self.has(join(posixpath.dirname(pkg), "__init__.py")):
                roots.add(posixpath.dirname(pkg))
        return sorted(roots, key=_depth_key)

    def python_search_path(self, src_dir: str) -> tuple[str, ...]:
        """sys.path as a file in `src_dir` would see it: its own source root (the folder
        above its top-level package, or its own folder for a script), the repo root,
        `src/` (the src layout), then every other package root of the repository."""
        cache = self.__dict__.setdefault("_py_search_path", {})
        if src_dir not in cache:
            d = src_dir
            while d and self.has(join(d, "__init__.py")):
                d = posixpath.dirname(d)
            cache[src_dir] = tuple(dict.fromkeys([d, "", "src", *self.python_roots]))
        return cache[src_dir]

    @functools.cached_property
    def c_include_dirs(self) -> list[str]:
        """The repo root, then every `include`/`inc` folder (shallowest first), then `src`."""
        inc = [d for name in ("include", "inc", "includes") for d in self.dirs_by_name.get(name, ())]
        return ["", *sorted(inc, key=_depth_key), "src"]

    @functools.cached_property
    def go_modules(self) -> list[tuple[str, str]]:
        """(module path, folder) of every go.mod, longest module path first."""
        out = []
        for p in self.by_name.get("go.mod", ()):
            m = re.search(r"^\s*module\s+\"?([^\s\"]+)", self.text(p), re.M)
            if m:
                out.append((m.group(1), posixpath.dirname(p)))
        return sorted(out, key=lambda mp: (-len(mp[0]), mp))

    @functools.cached_property
    def rust_crates(self) -> dict[str, str]:
        """Crate name (with `-` as `_`) → the folder holding its lib.rs, from Cargo.toml."""
        out = {}
        for p in self.by_name.get("Cargo.toml", ()):
            m = re.search(r"^\[package\][^\[]*?^\s*name\s*=\s*\"([^\"]+)\"", self.text(p), re.M | re.S)
            if m:
                out.setdefault(m.group(1).replace("-", "_"), join(posixpath.dirname(p), "src") or "")
        return out

    @functools.cached_property
    def php_psr4(self) -> list[tuple[str, str]]:
        """(namespace prefix, folder) from every composer.json's autoload psr-4 map."""
        out = []
        for p in self.by_name.get("composer.json", ()):
            try:
                doc = json.loads(self.text(p))
            except ValueError:
                continue
            for section in ("autoload", "autoload-dev"):
                part = doc.get(section) if isinstance(doc, dict) else None
                psr4 = part.get("psr-4") if isinstance(part, dict) else None
                for prefix, dirs in sorted(psr4.items()) if isinstance(psr4, dict) else ():
                    for d in [dirs] if isinstance(dirs, str) else dirs if isinstance(dirs, list) else ():
                        folder = join(posixpath.dirname(p), str(d))
                        if folder is not None:
                            out.append((str(prefix).strip("\\"), folder))
        return sorted(out, key=lambda pd: (-len(pd[0]), pd))

    @functools.cached_property
    def csharp_namespaces(self) -> dict[str, list[str]]:
        """Namespace → the C# files that declare it (block or file-scoped declarations)."""
        out: dict[str, list[str]] = defaultdict(list)
        for path, lang in self.language.items():
            if lang == "csharp":
                for ns in sorted(set(re.findall(r"^[ \t]*namespace[ \t]+([\w.]+)", self.text(path), re.M))):
                    out[ns].append(path)
        return {ns: sorted(v) for ns, v in out.items()}

    @functools.cached_property
    def ruby_load_path(self) -> list[str]:
        """Every `lib` folder (shallowest first), then the repository root."""
        return [*self.dirs_by_name.get("lib", ()), ""]


# ---------------------------------------------------------------------------------------
# Python: absolute and relative imports, packages (__init__.py), src layouts, stubs.
_PY_SUFFIXES = (".py", "/__init__.py", ".pyi", "/__init__.pyi", ".pyx", ".pxd")


def _py_module(ix: RepoIndex, base: str | None, parts: Sequence[str]) -> str | None:
    if base is None:
        return None
    if not parts:
        return ix.first([join(base, "__init__.py"), join(base, "__init__.pyi")])
    stem = join(base, *parts)
    return None if stem is None else ix.first(stem + s for s in _PY_SUFFIXES)


def _py_suffix(ix: RepoIndex, parts: Sequence[str]) -> str | None:
    # Empty __init__.py files are often filtered out of the corpus (Sec. 2.1 rules), which
    # hides package roots; a path ending in two or more of the module's components stands in.
    if len(parts) < 2:
        return None
    stem = "/".join(parts)
    for s in (".py", "/__init__.py"):
        hits = ix.suffix(stem + s)
        if hits:
            return hits[0]
    return None


def resolve_python(ref: Ref, src: str, ix: RepoIndex) -> list[str]:
    src_dir = posixpath.dirname(src)
    spec = ref.spec
    level = len(spec) - len(spec.lstrip("."))
    parts = [p for p in spec[level:].split(".") if p]
    if level:  # `from ..a import b`: relative to the importing file's package
        base: str | None = src_dir
        for _ in range(level - 1):
            base = None if not base else posixpath.dirname(base)
        bases: Sequence[str | None] = [base]
    else:
        bases = ix.python_search_path(src_dir)
    if ref.kind != "from":  # `import a.b.c` also runs a/b/__init__.py: longest module prefix
        for k in range(len(parts), 0, -1):
            hit = ix.first(_py_module(ix, base, parts[:k]) for base in bases) or _py_suffix(ix, parts[:k])
            if hit:
                return [hit]
        return []
    names = ref.names
    for base in bases:
        pkg = join(base, *parts) if base is not None else None
        subs = [h for n in names if (h := _py_module(ix, pkg, [n]))]
        module = _py_module(ix, base, parts)
        if module and (len(subs) < len(names) or not names):
            subs.append(module)
        if subs:
            return subs
    if level:
        return []
    subs = [h for n in names if (h := _py_suffix(ix, [*parts, n]))]
    if subs:
        return subs
    for k in range(len(parts), 0, -1):
        hit = _py_suffix(ix, parts[:k]) if k == len(parts) else (
            ix.first(_py_module(ix, base, parts[:k]) for base in bases) or _py_suffix(ix, parts[:k]))
        if hit:
            return [hit]
    return []


def resolve_cython(ref: Ref, src: str, ix: RepoIndex) -> list[str]:
    """Python's rules for (c)imports; `include "x.pxi"` is textual, relative to the file."""
    if ref.kind != "include":
        return resolve_python(ref, src, ix)
    hit = ix.first([join(posixpath.dirname(src), ref.spec), join(ref.spec)])
    return [hit] if hit else []


# ---------------------------------------------------------------------------------------
# JavaScript / TypeScript: relative specifiers, extension and index resolution.
_JS_EXTS = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".d.ts")
_TS_EXTS = (".ts", ".tsx", ".mts", ".cts", ".d.ts", ".js", ".jsx", ".mjs", ".cjs")


def _js_candidates(base: str, exts: Sequence[str]) -> Iterable[str]:
    yield base
    for e in (*exts, ".json"):
        yield base + e
    stem, ext = posixpath.splitext(base)
    if ext in (".js", ".jsx", ".mjs", ".cjs"):  # TS ESM style: `./x.js` names x.ts
        for e in exts:
            yield stem + e
    for e in exts:
        yield f"{base}/index{e}"


def resolve_javascript(ref: Ref, src: str, ix: RepoIndex) -> list[str]:
    spec = ref.spec.split("?", 1)[0].split("#", 1)[0]
    if not spec:
        return []
    exts = _TS_EXTS if ix.language.get(src) == "typescript" else _JS_EXTS
    if spec.startswith("."):
        bases = [join(posixpath.dirname(src), spec)]
    elif spec.startswith("/"):
        bases = [join(spec.lstrip("/"))]
    elif spec.startswith(("@/", "~/")):  # the common `src` alias of bundlers
        bases = [join("src", spec[2:]), join(spec[2:])]
    else:  # baseUrl-style specifier; a bare package name seldom matches a repository file
        bases = [join(spec), join("src", spec)]
    for base in bases:
        if base:
            hit = ix.first(_js_candidates(base, exts))
            if hit:
                return [hit]
    return []


# ---------------------------------------------------------------------------------------
# C / C++: #include "..." against the including file's folder, then the include folders.
def resolve_c(ref: Ref, src: str, ix: RepoIndex) -> list[str]:
    spec = ref.spec
    bases = ([posixpath.dirname(src)] if ref.kind == "include" else []) + ix.c_include_dirs
    hit = ix.first(join(b, spec) for b in bases)
    if hit:
        return [hit]
    # Search paths set by the build system (-I) are unknown: a suffix match stands in, but
    # an angle include needs a folder in it (`<numpy/x.h>`, not `<stdio.h>`).
    rel = join(spec)
    if rel and (ref.kind == "include" or "/" in rel):
        return ix.suffix(rel)[:1]
    return []


# ---------------------------------------------------------------------------------------
# Java: package path → folder path (any source root: src/main/java, src, ...).
def resolve_java(ref: Ref, src: str, ix: RepoIndex) -> list[str]:
    parts = [p for p in ref.spec.split(".") if p]
    if parts and parts[-1] == "*":
        parts = parts[:-1]
        files = [f for d in ix.dirs_with_suffix("/".join(parts)) for f in ix.files_in(d, ".java")]
        if files:  # `import a.b.*`: every class of package a.b
            return files
    for k in range(len(parts), 1, -1):  # `import static a.b.C.m`: drop members until a class
        hits = ix.suffix("/".join(parts[:k]) + ".java")
        if hits:
            return hits[:1]
    return []


# ---------------------------------------------------------------------------------------
# C#: namespace → the files declaring it; `using static`/aliases name a type file.
def resolve_csharp(ref: Ref, src: str, ix: RepoIndex) -> list[str]:
    spec = ref.spec
    ns = ix.csharp_namespaces
    if spec in ns:
        return ns[spec]
    head, _, last = spec.rpartition(".")
    hits = [f for f in ns.get(head, ()) if posixpath.basename(f).split(".")[0] == last]
    if hits:
        return hits
    rel = spec.replace(".", "/")
    files = [f for d in ix.dirs_with_suffix(rel) for f in ix.files_in(d, ".cs")]
    return files or ix.suffix(rel + ".cs")[:1]


# ---------------------------------------------------------------------------------------
# Go: import path → package folder, through go.mod's module path when the repo has one.
def _go_package(ix: RepoIndex, d: str) -> list[str]:
    files = ix.files_in(d, ".go")
    return [f for f in files if not f.endswith("_test.go")] or files


def resolve_go(ref: Ref, src: str, ix: RepoIndex) -> list[str]:
    spec = ref.spec.strip("/")
    for module, mdir in ix.go_modules:
        if spec == module or spec.startswith(module + "/"):
            d = join(mdir, spec[len(module) :].lstrip("/"))
            return _go_package(ix, d) if d is not None else []
    parts = spec.split("/")
    # No go.mod claims it: vendored (`vendor/<full path>`) when the repo has a go.mod;
    # GOPATH-era repos (no go.mod) import themselves by a path whose tail is a folder.
    shortest = len(parts) if ix.go_modules else min(2, len(parts))
    for k in range(len(parts), shortest - 1, -1):
        for d in ix.dirs_with_suffix("/".join(parts[-k:])):
            files = _go_package(ix, d)
            if files:
                return files
    return []


# ---------------------------------------------------------------------------------------
# Rust: `mod x;` → x.rs / x/mod.rs; `use crate::`, `self::`, `super::`, workspace crates.
def _rust_child_dir(src: str) -> str:
    d, name = posixpath.dirname(src), posixpath.basename(src)
    return d if name in ("lib.rs", "main.rs", "mod.rs") else join(d, name[:-3]) or ""


def _rust_module_file(ix: RepoIndex, root: str, parts: Sequence[str]) -> str | None:
    if not parts:
        return ix.first([join(root, "lib.rs"), join(root, "main.rs")])
    stem = join(root, *parts)
    return None if stem is None else ix.first([stem + ".rs", stem + "/mod.rs"])


def _rust_crate_root(ix: RepoIndex, src: str) -> tuple[str | None, list[str]]:
    """The folder holding the crate root file (lib.rs/main.rs) above `src`, and src's
    module path inside that crate."""
    d = posixpath.dirname(src)
    while True:
        if ix.has(join(d, "lib.rs")) or ix.has(join(d, "main.rs")):
            rel = src[len(d) + 1 :] if d else src
            parts = rel[:-3].split("/") if rel.endswith(".rs") else rel.split("/")
            if parts[-1] == "mod" or (len(parts) == 1 and parts[0] in ("lib", "main")):
                parts = parts[:-1]
            return d, parts
        if not d:
            return None, []
        d = posixpath.dirname(d)


def resolve_rust(ref: Ref, src: str, ix: RepoIndex) -> list[str]:
    if ref.kind == "mod":
        hit = _rust_module_file(ix, _rust_child_dir(src), [ref.spec])
        return [hit] if hit else []
    parts = [p for p in ref.spec.split("::") if p]
    if not parts:
        return []
    root, modpath = _rust_crate_root(ix, src)
    head = parts[0]
    if head == "crate":
        base, rest = [], parts[1:]
    elif head in ("self", "super"):
        base, i = list(modpath), 0
        while i < len(parts) and parts[i] in ("self", "super"):
            base = base[:-1] if parts[i] == "super" else base
            i += 1
        rest = parts[i:]
    elif head in ix.rust_crates:
        root, base, rest = ix.rust_crates[head], [], parts[1:]
    elif root is not None and _rust_module_file(ix, root, [*modpath, head]):
        base, rest = list(modpath), parts  # 2018 edition: a child module named without `self::`
    else:
        return []  # std or an external crate
    if root is None:
        return []
    rest = [p for p in rest if p not in ("*", "self")]
    for k in range(len(rest), -1, -1):  # drop trailing items (types, functions) until a module
        hit = _rust_module_file(ix, root, [*base, *rest[:k]])
        if hit:
            return [hit]
    return []


# ---------------------------------------------------------------------------------------
# PHP: require/include paths; `use` names through composer.json psr-4, else path suffix.
def resolve_php(ref: Ref, src: str, ix: RepoIndex) -> list[str]:
    src_dir = posixpath.dirname(src)
    if ref.kind == "require":
        spec = ref.spec
        if spec.startswith("__DIR__/"):
            cands = [join(src_dir, spec[len("__DIR__/") :])]
        else:  # include_path is unknown: the including file's folder, then the repo root
            cands = [join(src_dir, spec), join(spec.lstrip("/"))]
        hit = ix.first(cands)
        return [hit] if hit else []
    name = ref.spec.strip("\\")
    for prefix, folder in ix.php_psr4:
        if name.startswith(prefix + "\\") or not prefix:
            rest = name[len(prefix) :].strip("\\").replace("\\", "/")
            hit = ix.first([join(folder, rest + ".php")])
            if hit:
                return [hit]
    parts = name.split("\\")
    for k in range(len(parts), min(2, len(parts)) - 1, -1):
        hits = ix.suffix("/".join(parts[-k:]) + ".php")
        if hits:
            return hits[:1]
    return []


# ---------------------------------------------------------------------------------------
# Ruby: require_relative against the file's folder; require against lib/ folders and root.
def resolve_ruby(ref: Ref, src: str, ix: RepoIndex) -> list[str]:
    spec = ref.spec
    rel = spec if spec.endswith(".rb") else spec + ".rb"
    if ref.kind == "require_relative":
        hit = ix.first([join(posixpath.dirname(src), rel)])
        return [hit] if hit else []
    hit = ix.first(join(d, rel) for d in ix.ruby_load_path)
    if hit:
        return [hit]
    return ix.suffix(rel)[:1] if "/" in spec.strip("/") else []

