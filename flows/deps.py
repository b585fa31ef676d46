"""Each stage's code deps in dvc.yaml, derived from what its code imports (never typed by hand).

    python -m flows.deps            print each stage's derived code deps
    python -m flows.deps --check    exit 1, naming stage and file, when dvc.yaml is not current
    python -m flows.deps --write    rewrite the code part of every stage's `deps:` in dvc.yaml

A stage's code is what its `cmd` runs (`python -m <module>` or `python <file>.py`) and,
transitively, every project module that code imports, parsed with `ast`:

- `import a.b` / `from a.b import c` (absolute or relative) anywhere in a module, inside
  functions and `try` blocks too (lazy imports run as well); a package's `__init__.py` counts
  for every module imported from it. Imports under `if TYPE_CHECKING:` never run and are left out.
- a process the code starts with an argv list holding `"-m", "<module>"` (the training stages'
  `torchrun ... -m dscoder.train`: the package's `__init__.py`, `__main__.py` and their
  closure), and `importlib.import_module("<module>")` / `runpy.run_module("<module>")` with a
  literal name.
- a script the code runs by file name: a string literal ending in `.py` that names a file next
  to the module (the evaluation sandbox's `_sandbox_launcher.py`), with its own imports.

This is static, so where it cannot tell it lists: a module that builds a `-m` argv counts for
every stage importing it, called or not (evaluate imports `dscoder.train`, so it lists the
trainer's `__main__.py`); an import whose name is computed at run time is not seen.

Project modules are the packages under src/ (`dscoder`) and the `stages` and `flows`
packages at the root. The code part of `deps:` is every dep under src/, stages/ or flows/
that is a `.py` file or a folder; `--write` replaces it with the derived files, sorted, one a
line, followed by requirements.lock (installed library versions decide every stage's output
bytes), and keeps every other dep (data, artifacts, `${...}`, other files), its comment, and
the rest of dvc.yaml as they are. A stage whose cmd runs no project code is left alone.
"""

from __future__ import annotations

import argparse
import ast
import io
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("src", "stages", "flows")
ROOT_PACKAGES = ("stages", "flows")  # importable from the repository root; src/ holds the rest
LOCK = "requirements.lock"
LOCK_COMMENT = "# library versions decide the bytes (see the top)"


# --------------------------------------------------------------------------- import closure

@dataclass
class Project:
    """Where project modules live: top-level package name → folder holding it."""

    root: Path
    tops: dict[str, Path] = field(default_factory=dict)
    parsed: dict[Path, "Refs"] = field(default_factory=dict)  # each file is parsed once

    @classmethod
    def at(cls, root: Path) -> "Project":
        root = Path(root).resolve()
        tops: dict[str, Path] = {}
        src = root / "src"
        if src.is_dir():
            for p in sorted(src.iterdir()):
                if (p / "__init__.py").is_file():
                    tops[p.name] = src
                elif p.suffix == ".py" and p.is_file():
                    tops[p.stem] = src
        for name in ROOT_PACKAGES:
            if (root / name / "__init__.py").is_file():
                tops[name] = root
        return cls(root, tops)

    def module_file(self, name: str) -> Path | None:
        """The file that `import name` executes last (`pkg/__init__.py` for a package)."""
        parts = name.split(".")
        base = self.tops.get(parts[0])
        if base is None or not all(p.isidentifier() for p in parts):
            return None
        stem = base.joinpath(*parts)
        if (stem / "__init__.py").is_file():
            return stem / "__init__.py"
        if stem.with_suffix(".py").is_file():
            return stem.with_suffix(".py")
        return None

    def files_for_import(self, name: str) -> list[Path]:
        """Every file `import name` executes: each package on the way, then the module."""
        parts = name.split(".")
        files = []
        for i in range(1, len(parts) + 1):
            f = self.module_file(".".join(parts[:i]))
            if f is None:
                break
            files.append(f)
        return files

    def module_name(self, path: Path) -> str | None:
        """Dotted name of a project file, or None for a file outside the packages (a script)."""
        path = path.resolve()
        for top, base in self.tops.items():
            try:
                rel = path.relative_to(base)
            except ValueError:
                continue
            if rel.parts[0] != top and rel.parts[0] != f"{top}.py":
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join(parts)
        return None

    def rel(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _docstring_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and _str(body[0].value) is not None:
                out.add(id(body[0].value))
    return out


def _walk_running(tree: ast.AST):
    """ast.walk, minus the bodies of `if TYPE_CHECKING:` (imports for type checkers only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


@dataclass
class Refs:
    imports: list[str] = field(default_factory=list)   # dotted names, `import` semantics
    run_modules: list[str] = field(default_factory=list)  # `-m name`: also the package's __main__
    scripts: list[Path] = field(default_factory=list)    # .py files run by path


def references(project: Project, path: Path) -> Refs:
    """What running `path` may import or start, from its source alone."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = project.module_name(path)
    is_pkg = path.name == "__init__.py"
    package = (name if is_pkg else name.rpartition(".")[0]) if name else ""
    docstrings = _docstring_nodes(tree)
    refs = Refs()
    for node in _walk_running(tree):
        if isinstance(node, ast.Import):
            refs.imports += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if not package and not name:
                    continue  # a relative import in a script outside the packages
                base_parts = package.split(".") if package else []
                up = node.level - 1
                if up > len(base_parts):
                    continue
                base_parts = base_parts[: len(base_parts) - up]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not base:
                continue
            refs.imports.append(base)
            # `from pkg import sub` imports pkg.sub when sub is a module
            refs.imports += [f"{base}.{a.name}" for a in node.names if a.name != "*" and project.module_file(f"{base}.{a.name}")]
        elif isinstance(node, (ast.List, ast.Tuple)):
            elts = node.elts
            for a, b in zip(elts, elts[1:]):
                if _str(a) == "-m" and _str(b):
                    refs.run_modules.append(_str(b))
        elif isinstance(node, ast.Call):
            fn = node.func
            fname = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            if fname in ("import_module", "__import__") and node.args and _str(node.args[0]):
                refs.imports.append(_str(node.args[0]))
            elif fname == "run_module" and node.args and _str(node.args[0]):
                refs.run_modules.append(_str(node.args[0]))
        s = _str(node)
        if s and id(node) not in docstrings and s.endswith(".py") and "\n" not in s:
            script = path.parent / s
            if script.is_file() and script.resolve() != path.resolve():
                refs.scripts.append(script)
    return refs


def closure(project: Project, entries: list[Path]) -> set[Path]:
    """Every project file reached from `entries` (files), transitively."""
    seen: set[Path] = set()
    todo = [p.resolve() for p in entries]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path not in project.parsed:
            project.parsed[path] = references(project, path)
        refs = project.parsed[path]
        for name in refs.imports:
            todo += project.files_for_import(name)
        for name in refs.run_modules:
            todo += project.files_for_import(name)
            main = project.module_file(f"{name}.__main__")
            if main is not None and project.module_file(name).name == "__init__.py":
                todo += [main]
        todo += [s.resolve() for s in refs.scripts]
    return seen


def cmd_entries(project: Project, cmd) -> list[Path]:
    """The project files a stage's `cmd` runs: `python -m module` and `python path.py`."""
    entries: list[Path] = []
    for line in [cmd] if isinstance(cmd, str) else list(cmd or []):
        try:
            argv = shlex.split(str(line))
        except ValueError:
            argv = str(line).split()
        for i, arg in enumerate(argv):
            if arg == "-m" and i + 1 < len(argv):
                name = argv[i + 1]
                entries += project.files_for_import(name)
                main = project.module_file(f"{name}.__main__")
                if main is not None:
                    entries.append(main)
            elif arg.endswith(".py") and (project.root / arg).is_file() and "-m" not in argv[max(0, i - 1):i]:
                entries.append(project.root / arg)
    return entries


def derive(project: Project, cmd) -> list[str] | None:
    """Sorted code deps (paths relative to the root) of a stage with this cmd; None if it runs no project code."""
    entries = cmd_entries(project, cmd)
    if not entries:
        return None
    return sorted(project.rel(p) for p in closure(project, entries))


# --------------------------------------------------------------------------- dvc.yaml

def is_code_dep(dep, root: Path) -> bool:
    """A dep this tool owns: a `.py` file or a folder under src/, stages/ or flows/."""
    if not isinstance(dep, str) or "${" in dep:
        return False
    p = PurePosixPath(dep.strip())
    if not p.parts or p.parts[0] not in CODE_DIRS or p.is_absolute():
        return False
    return p.suffix == ".py" or (root / p).is_dir() or not p.suffix


def _yaml():
    from ruamel.yaml import YAML

    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def stage_bodies(doc) -> list[tuple[str, dict]]:
    """(name, the mapping holding cmd/deps) per stage; `foreach` stages have theirs under `do`."""
    out = []
    for name, stage in (doc.get("stages") or {}).items():
        body = stage.get("do") if isinstance(stage, dict) and "do" in stage else stage
        if isinstance(body, dict) and "cmd" in body:
            out.append((str(name), body))
    return out


def _expand(project: Project, dep: str) -> set[str]:
    """The files a declared code dep covers (a folder: every .py under it)."""
    p = project.root / dep
    if p.is_dir():
        return {project.rel(f) for f in p.rglob("*.py") if "__pycache__" not in f.parts}
    return {PurePosixPath(dep).as_posix()}


@dataclass
class StageDeps:
    stage: str
    declared: list[str]        # code deps as written
    derived: list[str]         # what they should be
    has_lock: bool

    def problems(self, project: Project) -> list[str]:
        out = []
        covered: set[str] = set()
        for dep in self.declared:
            covered |= _expand(project, dep)
        want = set(self.derived)
        for f in sorted(want - covered):
            out.append(f"{self.stage}: missing {f} (imported by the stage's code)")
        for dep in self.declared:
            extra = sorted(_expand(project, dep) - want)
            if not (project.root / dep).is_dir() and extra:
                out.append(f"{self.stage}: extra {dep} (not imported by the stage's code"
                           f"{'' if (project.root / dep).exists() else '; no such file'})")
            elif extra:
                out.append(f"{self.stage}: extra {dep}/ (a folder: over-declares {', '.join(extra)})")
        if not out and self.declared != self.derived:
            out.append(f"{self.stage}: code deps not in generated form (sorted files, one a line)")
        if not self.has_lock:
            out.append(f"{self.stage}: missing {LOCK} (library versions decide the stage's bytes)")
        return out


def analyse(project: Project, doc) -> list[tuple[StageDeps, object]]:
    result = []
    for name, body in stage_bodies(doc):
        derived = derive(project, body["cmd"])
        if derived is None:
            continue
        deps = body.get("deps") or []
        declared = [str(d).strip() for d in deps if is_code_dep(d, project.root)]
        has_lock = any(isinstance(d, str) and d.strip() == LOCK for d in deps)
        result.append((StageDeps(name, declared, derived, has_lock), body))
    return result


def _rewrite_deps(body, derived: list[str], root: Path) -> None:
    """Replace the code part of body['deps'] by `derived`, then the lock file, then the other deps.

    Each dep keeps its end-of-line comment (and any comment lines below it); what follows the
    last dep (blank lines, comments before the next key) stays at the end of the list.
    """
    from ruamel.yaml.comments import CommentedSeq
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    old = body.get("deps")
    if not isinstance(old, CommentedSeq):
        old = CommentedSeq(old or [])
    own: dict[int, tuple[str, str, object]] = {}  # old index → (eol comment, lines below, mark)
    tail = ""
    for i, entry in old.ca.items.items():
        tok = entry[0] if entry else None
        if tok is None:
            continue
        head, nl, rest = tok.value.partition("\n")
        if i == len(old) - 1:
            rest, tail = "", rest
        own[i] = (head + nl, rest, tok.start_mark)

    first = {}
    for i, dep in enumerate(old):
        if isinstance(dep, str):
            first.setdefault(dep.strip(), i)
    lock_idx = next((i for i, d in enumerate(old) if isinstance(d, str) and d.strip() == LOCK), None)
    sources: list[tuple[object, int | None]] = [(f, first.get(f)) for f in derived]
    sources.append((old[lock_idx], lock_idx) if lock_idx is not None else (LOCK, None))
    sources += [(d, i) for i, d in enumerate(old) if not is_code_dep(d, root) and i != lock_idx]

    new = CommentedSeq()
    for j, (dep, i) in enumerate(sources):
        new.append(dep)
        if i is not None and i in own:
            head, rest, mark = own[i]
        elif i is None and dep == LOCK:
            col = old.lc.data[0][1] if old.lc.data else 8  # the column deps start at
            head, rest, mark = f"{LOCK_COMMENT}\n", "", CommentMark(col + len(LOCK) + 5)
        else:
            head, rest, mark = "\n", "", CommentMark(0)
        if j == len(sources) - 1:
            rest += tail
        if head.strip() or rest:
            new.ca.items[j] = [CommentToken(head + rest, mark, None), None, None, None]
    new.fa.set_block_style()
    if old.ca.comment:
        new.ca.comment = old.ca.comment
    body["deps"] = new


def load(path: Path):
    return _yaml().load(path.read_text(encoding="utf-8"))


def check(root: Path = ROOT, dvc_yaml: Path | None = None) -> list[str]:
    """Every way dvc.yaml's code deps differ from the derived ones (empty: current)."""
    project = Project.at(root)
    doc = load(dvc_yaml or project.root / "dvc.yaml")
    problems = []
    for sd, _ in analyse(project, doc):
        problems += sd.problems(project)
    return problems


def write(root: Path = ROOT, dvc_yaml: Path | None = None) -> list[str]:
    """Rewrite the code deps of every stage in dvc.yaml; return the stages that changed."""
    project = Project.at(root)
    path = dvc_yaml or project.root / "dvc.yaml"
    y = _yaml()
    text = path.read_text(encoding="utf-8")
    doc = y.load(text)
    changed = []
    for sd, body in analyse(project, doc):
        if sd.problems(project):
            _rewrite_deps(body, sd.derived, project.root)
            changed.append(sd.stage)
    if changed:
        buf = io.StringIO()
        y.dump(doc, buf)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(buf.getvalue(), encoding="utf-8")
        tmp.replace(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.deps", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 when dvc.yaml's code deps are not current")
    mode.add_argument("--write", action="store_true", help="rewrite the code deps in dvc.yaml")
    ap.add_argument("--root", type=Path, default=ROOT, help="project root (default: this repository)")
    ap.add_argument("--file", type=Path, default=None, help="the dvc.yaml to read (default: ROOT/dvc.yaml)")
    args = ap.parse_args(argv)
    if args.check:
        problems = check(args.root, args.file)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print(f"dvc.yaml is not current ({len(problems)} problem(s)): run `python -m flows.deps --write`",
                  file=sys.stderr)
            return 1
        print("dvc.yaml code deps are current")
        return 0
    if args.write:
        changed = write(args.root, args.file)
        print(f"rewrote deps of {', '.join(changed)}" if changed else "dvc.yaml code deps already current")
        return 0
    project = Project.at(args.root)
    for sd, _ in analyse(project, load(args.file or project.root / "dvc.yaml")):
        print(f"{sd.stage}:")
        for f in sd.derived:
            print(f"  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
