"""The sandbox's ordinary behaviour: opt-in, statuses, parallel order, config validation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dscoder.config import ConfigError
from dscoder.eval.sandbox import SandboxSettings, probe_layers, run_program, run_programs


def test_execution_is_opt_in():
    with pytest.raises(PermissionError):
        run_program("print(1)")
    with pytest.raises(PermissionError):
        run_programs(["print(1)"], allow_execution=False)


def test_statuses():
    ok = run_program("print('hi')", allow_execution=True)
    assert ok.status == "passed" and ok.passed and ok.stdout == "hi\n"
    bad = run_program("assert 1 == 2", allow_execution=True)
    assert bad.status == "failed" and "AssertionError" in bad.stderr
    syntax = run_program("def f(:\n", allow_execution=True)
    assert syntax.status == "failed" and "SyntaxError" in syntax.stderr


def test_parallel_results_keep_input_order():
    progs = [f"print({i})\nassert {i} % 2 == 0\n" for i in range(6)]
    results = run_programs(progs, SandboxSettings(workers=3), allow_execution=True)
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(6)]
    assert [r.passed for r in results] == [i % 2 == 0 for i in range(6)]


def test_programs_see_no_project_packages():
    # The sandbox runs the base interpreter with -I -S: the venv's packages are not importable.
    r = run_program("import dscoder", allow_execution=True)
    assert r.status == "failed" and "ModuleNotFoundError" in r.stderr


def test_layers_reported():
    r = run_program("pass", allow_execution=True)
    assert "rlimits" in r.layers and "audit_hook" in r.layers
    if probe_layers():
        assert {"mnt", "net", "pid"} <= set(r.layers)


@pytest.mark.parametrize("field,value", [("timeout_s", 0), ("workers", 0), ("isolation", "x"),
                                         ("memory_mb", -1), ("cpu_s", 0)])
def test_validate_names_the_bad_parameter(field, value):
    with pytest.raises(ConfigError, match=rf"^evaluate\.sandbox\.{field}: "):
        SandboxSettings(**{field: value}).validate()


def test_a_dead_zygote_is_reported_not_hung():
    from dscoder.eval.sandbox import _Zygote, _ZygoteGone, base_python

    z = _Zygote(base_python())
    z.proc.kill()
    z.proc.wait()
    r, w = os.pipe()
    with pytest.raises(_ZygoteGone):
        z.start(Path("/nonexistent"), w, w, w)
    os.close(r)
    os.close(w)
    z.close()


def test_random_state_is_not_shared_between_runs():
    prog = "import random\nprint(random.random())\n"
    a, b = run_programs([prog, prog], SandboxSettings(workers=1), allow_execution=True)
    assert a.passed and b.passed and a.stdout != b.stdout
