"""Temporaries and scratch folders of killed runs are removed by the next run, never a live one's."""

from __future__ import annotations

import os
import subprocess

from dscoder.io import atomic_path, remove_dead_temps
from stages.common import remove_dead_scratch, scratch


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_atomic_path_removes_temporaries_of_dead_processes(tmp_path):
    dead = tmp_path / f".tokens.tmp-{_dead_pid()}-x1"
    dead.mkdir()
    (dead / "train.bin").write_bytes(b"half")
    live = subprocess.Popen(["sleep", "30"])
    try:
        alive = tmp_path / f".tokens.tmp-{live.pid}-x2"
        alive.mkdir()
        other = tmp_path / f".other.tmp-{_dead_pid()}-x3"
        other.write_text("not ours")
        with atomic_path(tmp_path / "tokens", is_dir=True) as tmp:
            (tmp / "meta.json").write_text("{}")
        assert not dead.exists() and alive.exists() and other.exists()
        assert (tmp_path / "tokens/meta.json").read_text() == "{}"
        assert remove_dead_temps(tmp_path / "other") == [other]
    finally:
        live.kill()
        live.wait()


def test_scratch_removes_folders_of_dead_runs_only(tmp_path):
    out = tmp_path / "data" / "files.parquet"
    out.parent.mkdir()
    dead = out.parent / f".filter-{_dead_pid()}-abc"
    dead.mkdir()
    mine = out.parent / f".filter-{os.getpid()}-keep"
    mine.mkdir()
    with scratch(out, "filter") as work:
        assert os.path.isdir(work) and os.path.isabs(work)
        assert not dead.exists() and mine.exists()
    assert not os.path.exists(work)
    assert remove_dead_scratch(out.parent, "filter") == []
