"""dvc.yaml's code deps are current (CI runs `python -m flows.deps --check` here), and DVC sees
an edit to any project file a stage imports, its training subprocess and sandbox launcher included."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from flows.deps import LOCK, Project, _yaml, check, cmd_entries, derive, load, stage_bodies, write
from tests.integration.dvc_repo import ROOT, make_dvc_repo, sh

pytestmark = pytest.mark.integration


def test_check_passes_on_the_repository():
    out = subprocess.run([sys.executable, "-m", "flows.deps", "--check"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, f"dvc.yaml is stale; run `python -m flows.deps --write`:\n{out.stderr}"


def test_check_fails_naming_stage_and_file_when_a_dep_is_removed(tmp_path):
    dvc_yaml = tmp_path / "dvc.yaml"
    dvc_yaml.write_text((ROOT / "dvc.yaml").read_text())
    write(ROOT, dvc_yaml)  # current for the code as it is now, whatever test_check_passes says
    assert check(ROOT, dvc_yaml) == []
    project = Project.at(ROOT)
    doc = load(dvc_yaml)
    bodies = stage_bodies(doc)
    assert len(bodies) >= 14
    removed = {}
    for name, body in bodies:
        stage_module = project.rel(cmd_entries(project, body["cmd"])[-1])
        victim = next(d for d in body["deps"] if isinstance(d, str) and d.endswith(".py") and d != stage_module)
        body["deps"].remove(victim)
        removed[name] = victim
    with dvc_yaml.open("w") as f:
        _yaml().dump(doc, f)
    problems = check(ROOT, dvc_yaml)
    for name, victim in removed.items():
        assert f"{name}: missing {victim} (imported by the stage's code)" in problems

    out = subprocess.run([sys.executable, "-m", "flows.deps", "--check", "--file", str(dvc_yaml)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert f"ingest: missing {removed['ingest']}" in out.stderr

    # the lock file, too
    no_lock = "\n".join(ln for ln in dvc_yaml.read_text().splitlines() if ln.split("#")[0].strip() != f"- {LOCK}")
    dvc_yaml.write_text(no_lock + "\n")
    assert f"pack: missing {LOCK} (library versions decide the stage's bytes)" in check(ROOT, dvc_yaml)


def _fake_outputs(repo: Path) -> list[str]:
    """Stand-ins for every stage output and input, so `dvc commit` records dvc.lock without
    running anything; returns the stages as DVC names them (`evaluate@base`, ...)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        stages = list(dvc.index.stages)
        names = [st.name for st in stages]
        paths = {Path(o.fs_path) for st in stages for o in [*st.outs, *st.deps]}
    for p in sorted(paths):
        if p.exists() or repo not in p.parents:
            continue
        if p.suffix:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("stand-in\n")
        else:
            p.mkdir(parents=True, exist_ok=True)
            (p / "stand-in").write_text("stand-in\n")
    return names


def _changed_deps(status: dict, stage: str) -> set[str]:
    return {path for entry in status.get(stage, []) if isinstance(entry, dict)
            for path in entry.get("changed deps", {})}


def test_dvc_status_sees_an_edit_to_any_imported_file_of_each_stage(tmp_path):
    repo = make_dvc_repo(tmp_path / "proj", yaml.safe_load((ROOT / "params.yaml").read_text()))
    write(repo)  # the deps as generated (test_check_passes_on_the_repository: the same as committed)
    runs = _fake_outputs(repo)
    sh(repo, "dvc", "commit", "-f", "-q")
    assert json.loads(sh(repo, "dvc", "status", "--json").stdout) == {}

    project = Project.at(repo)
    closures = {}
    for name, body in stage_bodies(load(repo / "dvc.yaml")):
        stage_module = project.rel(cmd_entries(project, body["cmd"])[-1])
        closures[name] = (set(derive(project, body["cmd"])), stage_module)
    assert {run.split("@")[0] for run in runs} == set(closures)
    users = Counter(f for files, _ in closures.values() for f in files)
    # per stage, the imported file the fewest other stages import (never the stage module itself),
    # plus what only the training subprocess (`-m dscoder.train`) and the sandbox launcher reach
    reached_otherwise = {"src/dscoder/train/__main__.py", "src/dscoder/eval/_sandbox_launcher.py"}
    picks = {name: {min(files - {stage_module}, key=lambda f: (users[f], f))} | (files & reached_otherwise)
             for name, (files, stage_module) in closures.items()}
    for stage in ("pretrain", "long_context", "instruct", "general_lm", "continue_pretrain"):
        assert "src/dscoder/train/__main__.py" in picks[stage]
    assert "src/dscoder/eval/_sandbox_launcher.py" in picks["evaluate"]
    # and the pinned library versions, which every stage depends on
    for f in set().union(*picks.values()) | {LOCK}:
        with (repo / f).open("a") as fh:
            fh.write("\n# edited by test_dvc_deps\n")

    status = json.loads(sh(repo, "dvc", "status", "--json").stdout)
    assert sorted(status) == sorted(runs)
    for run in runs:
        files = picks[run.split("@")[0]] | {LOCK}
        assert files <= _changed_deps(status, run), (run, sorted(files), status[run])
