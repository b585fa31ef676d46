"""Build a temporary git + DVC repository holding this project's pipeline, for `dvc repro` tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def sh(cwd: Path, *cmd: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **(env or {})}
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=full_env, timeout=900)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def make_dvc_repo(dest: Path, params: dict) -> Path:
    """Copy the DAG and code into `dest`, write `params`, `git init`, `dvc init`, commit."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in ("dvc.yaml", "requirements.lock", "pyproject.toml"):
        shutil.copy2(ROOT / rel, dest / rel)
    for rel in ("stages", "flows", "src"):
        shutil.copytree(ROOT / rel, dest / rel, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (dest / ".gitignore").write_text("/data/\n/artifacts/\n/checkpoints/\n__pycache__/\n")
    sh(dest, "git", "init", "-q")
    sh(dest, "git", "config", "user.email", "t@t")
    sh(dest, "git", "config", "user.name", "t")
    sh(dest, "dvc", "init", "-q")
    sh(dest, "dvc", "config", "core.analytics", "false")
    commit(dest, "init")
    return dest


def commit(repo: Path, msg: str) -> None:
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", msg, "--allow-empty")


def set_param(repo: Path, dotted: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    node = params
    *head, last = dotted.split(".")
    for k in head:
        node = node[k]
    node[last] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def ran_stages(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]
