"""The library stands below orchestration: nothing in src/dscoder imports flows/ or stages/, or
edits sys.path to reach them."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "dscoder"


def test_library_imports_no_orchestration_and_leaves_sys_path_alone():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                if n.split(".")[0] in ("flows", "stages"):
                    offenders.append(f"{path.relative_to(SRC)}: imports {n}")
            if isinstance(node, ast.Attribute) and node.attr in ("insert", "append") \
                    and isinstance(node.value, ast.Attribute) and node.value.attr == "path" \
                    and isinstance(node.value.value, ast.Name) and node.value.value.id == "sys":
                offenders.append(f"{path.relative_to(SRC)}: edits sys.path")
    assert offenders == []
