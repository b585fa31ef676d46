"""flows.deps on a small project: which imports count, how dvc.yaml's deps are rewritten and checked."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flows.deps import LOCK, Project, check, derive, main, write

FILES = {
    "src/pkg/__init__.py": "",
    "src/pkg/a.py": """
        '''Docstring naming `python -m pkg.docsonly` and notes.py: neither runs.'''
        import json

        def later():
            from pkg import b   # a lazy import inside a function
            return b
    """,
    "src/pkg/b.py": "from .sub.c import value\n",
    "src/pkg/sub/__init__.py": "",
    "src/pkg/sub/c.py": "value = 1\n",
    "src/pkg/typed.py": "from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
                        "if TYPE_CHECKING:\n    from pkg import hints\nelse:\n    import pkg.runtime\n",
    "src/pkg/hints.py": "",
    "src/pkg/runtime.py": "",
    "src/pkg/unused.py": "import pkg.never\n",
    "src/pkg/never.py": "",
    "src/pkg/docsonly/__init__.py": "",
    "src/pkg/notes.py": "",
    "src/pkg/launch.py": """
        import sys
        from pathlib import Path

        SCRIPT = Path(__file__).with_name("_script.py")

        def command(cfg):
            return [sys.executable, "-m", "pkg.trainer", "--config", cfg]
    """,
    "src/pkg/_script.py": "import os\n",
    "src/pkg/trainer/__init__.py": "",
    "src/pkg/trainer/__main__.py": "from pkg.trainer.loop import run\n",
    "src/pkg/trainer/loop.py": "import pkg.sub\ndef run(): pass\n",
    "stages/__init__.py": "",
    "stages/one.py": "import pkg.a\nfrom pkg import launch, typed\nfrom stages.common import helper\n",
    "stages/common/__init__.py": "def helper(): pass\n",
    "stages/two.py": "import pkg.sub.c\n",
    "flows/__init__.py": "",
}

ONE = sorted([
    "src/pkg/__init__.py", "src/pkg/a.py", "src/pkg/b.py", "src/pkg/sub/__init__.py", "src/pkg/sub/c.py",
    "src/pkg/launch.py", "src/pkg/_script.py", "src/pkg/trainer/__init__.py", "src/pkg/trainer/__main__.py",
    "src/pkg/trainer/loop.py", "src/pkg/typed.py", "src/pkg/runtime.py",
    "stages/__init__.py", "stages/common/__init__.py", "stages/one.py",
])

DVC_YAML = """\
# top comment
stages:
  one:
    cmd: python -m stages.one
    deps:
      - stages/one.py       # the stage
      - data/in.parquet     # its input
      - ${paths.raw_files}  # a templated input (params.yaml's paths)
      - src/pkg/never.py
      - ${paths.src}/extra.py
    params:
      - one
    outs:
      - data/one.parquet
      - ${paths.models}/one:
          persist: true

  two:
    foreach: [x, y]   # two runs
    do:
      cmd: python -m stages.two --item ${item}
      deps:
        - src/pkg
        - requirements.lock
        - data/${item}.txt
      outs:
        - data/two-${item}.txt

  shell:
    cmd: cp a b
    deps:
      - src/pkg/a.py
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for rel, text in FILES.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    return tmp_path


def test_closure_follows_lazy_relative_subprocess_and_script_references_only(project):
    assert derive(Project.at(project), "python -m stages.one") == ONE
    assert derive(Project.at(project), "python -m stages.two --item ${item}") == [
        "src/pkg/__init__.py", "src/pkg/sub/__init__.py", "src/pkg/sub/c.py", "stages/__init__.py", "stages/two.py"]
    assert derive(Project.at(project), "cp a b") is None


def test_check_names_stage_and_file(project):
    problems = check(project)
    assert "one: missing src/pkg/b.py (imported by the stage's code)" in problems
    assert "one: missing src/pkg/trainer/__main__.py (imported by the stage's code)" in problems
    assert any(p.startswith("one: extra src/pkg/never.py") for p in problems)
    assert f"one: missing {LOCK} (library versions decide the stage's bytes)" in problems
    assert any(p.startswith("two: extra src/pkg/ (a folder: over-declares") and "src/pkg/never.py" in p for p in problems)
    assert not any(p.startswith("shell:") for p in problems)
    assert main(["--check", "--root", str(project)]) == 1


def test_write_rewrites_only_code_deps_and_keeps_comments(project):
    assert write(project) == ["one", "two"]
    assert check(project) == []
    assert main(["--check", "--root", str(project)]) == 0
    text = (project / "dvc.yaml").read_text()
    lines = text.splitlines()
    assert lines[0] == "# top comment"
    one = lines[lines.index("  one:") + 3: lines.index("    params:")]
    assert [ln.split("#")[0].strip() for ln in one] == [f"- {f}" for f in ONE] + [
        f"- {LOCK}", "- data/in.parquet", "- ${paths.raw_files}", "- ${paths.src}/extra.py"]
    assert "      - stages/one.py       # the stage" in lines        # a kept file keeps its comment
    assert "      - data/in.parquet     # its input" in lines        # data deps as they were
    assert "      - ${paths.raw_files}  # a templated input (params.yaml's paths)" in lines  # templated: kept as written
    assert "      - ${paths.models}/one:\n          persist: true" in text
    assert "src/pkg/never.py" not in text                           # what nothing imports is gone
    assert "    foreach: [x, y]   # two runs" in lines
    assert "        - data/${item}.txt" in lines
    assert text.count(f"- {LOCK}") == 2                             # added to one, kept once in two
    assert "  shell:\n    cmd: cp a b\n    deps:\n      - src/pkg/a.py\n" in text  # runs no project code: untouched
    assert write(project) == []                                     # idempotent
    assert (project / "dvc.yaml").read_text() == text


def test_a_new_import_makes_check_fail_until_written(project):
    write(project)
    (project / "src/pkg/sub/c.py").write_text("import pkg.never\nvalue = 1\n")
    problems = check(project)
    assert problems == ["one: missing src/pkg/never.py (imported by the stage's code)",
                        "two: missing src/pkg/never.py (imported by the stage's code)"]
    write(project)
    assert check(project) == []
