"""The `dscoder` command line: help, DAG status, presets, the UI server, external subcommands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from flows import cli
from tests.integration.dvc_repo import ROOT, make_dvc_repo

pytestmark = pytest.mark.integration

DSCODER = str(Path(sys.executable).parent / "dscoder")


def test_help_lists_every_command_with_an_example():
    out = subprocess.run([DSCODER, "--help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for cmd in ("status", "run", "preset", "ui", "sweep"):
        assert f"\n    {cmd} " in out, cmd  # one line each, with its help
        assert f"\n  dscoder {cmd}" in out, cmd  # and an example


def test_status_reports_every_stage_of_the_dag(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    repo = make_dvc_repo(tmp_path / "proj", params)
    (repo / "sub").mkdir()
    out = subprocess.run([DSCODER, "status"], cwd=repo / "sub", capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    dag = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    stages = [f"{name}@{item}" if "foreach" in st else name  # foreach stages expand to name@item
              for name, st in dag.items() for item in (st.get("foreach") or [None])]
    shown = [line.split()[0] for line in lines[:-1]]
    assert sorted(shown) == sorted(stages) and shown.index("ingest") < shown.index("filter") < shown.index("repo_docs")
    assert all(" stale " in line for line in lines[:-1])  # nothing has run: every stage is stale
    assert lines[-1].startswith(f"{len(stages)} of {len(stages)} stages stale")


PARAMS = """\
# the profile
runner:
  kind: process   # keep me
  shards: 4
filter:
  max_line_length: 1000
  parse_languages: [c, go]
"""


def test_preset_deep_merges_and_keeps_comments(tmp_path, monkeypatch, capsys):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text(PARAMS)
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets/big.yaml").write_text("runner: {shards: 64}\nfilter: {parse_languages: [rust]}\ndedup: {threshold: 0.8}\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["preset", "big", "--dry-run"]) == 0
    assert (tmp_path / "params.yaml").read_text() == PARAMS
    assert cli.main(["preset", "big"]) == 0
    text = (tmp_path / "params.yaml").read_text()
    assert "# keep me" in text and text.startswith("# the profile")
    assert yaml.safe_load(text) == {"runner": {"kind": "process", "shards": 64},
                                    "filter": {"max_line_length": 1000, "parse_languages": ["rust"]},
                                    "dedup": {"threshold": 0.8}}
    assert "changed 3 parameters" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="presets: big"):
        cli.main(["preset", "nope"])


def test_deep_merge_replaces_lists_and_records_changes():
    changed = []
    out = cli.deep_merge({"a": {"b": 1, "c": [1]}, "d": 2}, {"a": {"b": 1, "c": [2]}, "e": {"f": 3}}, changed=changed)
    assert out == {"a": {"b": 1, "c": [2]}, "d": 2, "e": {"f": 3}}
    assert changed == ["a.c", "e"]


def test_external_subcommand_is_registered(tmp_path, monkeypatch, capsys):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "fake_trace_cmd.py").write_text(
        '"""Trace a row."""\nHELP = "trace a training row"\nEXAMPLE = "dscoder trace --step 3"\n'
        "def add_arguments(p):\n    p.add_argument('--step', type=int)\n"
        "def main(args):\n    print('step', args.step)\n    return 0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "EXTERNAL", {"trace": "fake_trace_cmd"})
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.syspath_prepend(str(tmp_path))  # subcommand modules come from the import path
    assert "dscoder trace --step 3" in cli.build_parser().format_help()
    assert cli.main(["trace", "--step", "3"]) == 0
    assert "step 3" in capsys.readouterr().out


def test_ui_serves_prefect_on_localhost():
    from flows.server import free_port

    port = free_port()
    proc = subprocess.Popen([DSCODER, "ui", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PREFECT_API_URL": ""})
    try:
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert lines[:2] == [f"Prefect UI: http://127.0.0.1:{port}", f"export PREFECT_API_URL=http://127.0.0.1:{port}/api"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as r:
            assert r.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
