"""The import layers, checked on the source with `ast`:

- the library stands below orchestration: nothing in src/dscoder imports flows/ or stages/, or
  edits sys.path to reach them;
- no stage imports another: every module directly under stages/ is a DVC stage, and stage-layer
  code (those modules and the shared `stages.common` package) imports from stages/ only
  `stages.common` and its modules, and nothing from flows/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, base: Path) -> list[str]:
    """Every module a file imports, anywhere in it (lazy imports too), relative ones resolved;
    `from a import b` yields both `a` and `a.b` (b may be a submodule)."""
    name = _module_name(path, base)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(anchor + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append(mod)
            out += [f"{mod}.{a.name}" for a in node.names if a.name != "*"]
    return out


def _edits_sys_path(path: Path) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr in ("insert", "append")
               and isinstance(n.value, ast.Attribute) and n.value.attr == "path"
               and isinstance(n.value.value, ast.Name) and n.value.value.id == "sys"
               for n in ast.walk(ast.parse(path.read_text(), filename=str(path))))


def layering_offenses(root: Path) -> list[str]:
    """What breaks the layers in a project tree (src/dscoder, stages/): one line per offense."""
    offenses = []
    src = root / "src"
    for path in sorted((src / "dscoder").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for mod in imported_modules(path, src):
            if mod.split(".")[0] in ("flows", "stages"):
                offenses.append(f"{rel}: imports {mod}")
        if _edits_sys_path(path):
            offenses.append(f"{rel}: edits sys.path")
    for path in sorted((root / "stages").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for mod in sorted(set(imported_modules(path, root))):
            parts = mod.split(".")
            if parts[0] == "flows":
                offenses.append(f"{rel}: imports {mod}")
            elif parts[0] == "stages" and len(parts) > 1 and parts[1] != "common" and (root / "stages" / f"{parts[1]}.py").is_file():
                offenses.append(f"{rel}: imports the stage {'.'.join(parts[:2])}")
    return offenses


def test_library_stands_below_stages_and_no_stage_imports_another():
    assert (ROOT / "stages" / "common" / "__init__.py").is_file()
    assert layering_offenses(ROOT) == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


CLEAN = {
    "src/dscoder/__init__.py": "",
    "src/dscoder/lib.py": "import os\nfrom dscoder import other\n",
    "src/dscoder/other.py": "",
    "stages/__init__.py": "",
    "stages/common/__init__.py": "from dscoder.lib import os\n",
    "stages/common/progress.py": "from stages.common import helper\nfrom . import other\n",
    "stages/one.py": "from stages.common.progress import Progress\nfrom stages import common\nimport dscoder.lib\n",
    "stages/two.py": "def f(): pass\n",
}


def test_checker_passes_a_clean_tree(tmp_path):
    assert layering_offenses(_tree(tmp_path, CLEAN)) == []


@pytest.mark.parametrize("rel, code, offense", [
    ("stages/one.py", "from stages.two import f\n", "stages/one.py: imports the stage stages.two"),
    ("stages/one.py", "def g():\n    import stages.two\n", "stages/one.py: imports the stage stages.two"),
    ("stages/one.py", "from stages import two\n", "stages/one.py: imports the stage stages.two"),
    ("stages/one.py", "from . import two\n", "stages/one.py: imports the stage stages.two"),
    ("stages/common/progress.py", "from ..two import f\n", "stages/common/progress.py: imports the stage stages.two"),
    ("stages/common/__init__.py", "from stages.two import f\n", "stages/common/__init__.py: imports the stage stages.two"),
    ("stages/two.py", "from flows.pipeline import x\n", "stages/two.py: imports flows.pipeline"),
    ("src/dscoder/lib.py", "from stages.common import helper\n", "src/dscoder/lib.py: imports stages.common"),
    ("src/dscoder/other.py", "def f():\n    import flows.cli\n", "src/dscoder/other.py: imports flows.cli"),
    ("src/dscoder/other.py", "import sys\nsys.path.insert(0, '..')\n", "src/dscoder/other.py: edits sys.path"),
])
def test_checker_finds_a_planted_violation(tmp_path, rel, code, offense):
    root = _tree(tmp_path, CLEAN)
    (root / rel).write_text((root / rel).read_text() + code)
    assert offense in layering_offenses(root)
