"""Evil programs: each must be contained, scored as a failure, leave no
process behind, and leave the host and the project as they were.

Every evil program is written so that it *passes* only if it escaped; containment therefore
shows up as a non-passing status, and the test then checks the host side independently.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import textwrap
from pathlib import Path

import pytest

import dscoder
from dscoder.eval.sandbox import (
    SandboxSettings,
    probe_layers,
    processes_of_uid,
    run_program,
    surviving_processes,
)

PROJECT = Path(dscoder.__file__).resolve().parents[2]
PROJECT_FILE = PROJECT / "pyproject.toml"
NAMESPACES = "mnt" in probe_layers()
MODES = (["namespaces"] if NAMESPACES else []) + ["basic"]


def _fingerprint() -> tuple:
    names = sorted(p.name for p in PROJECT.iterdir())
    return names, hashlib.sha256(PROJECT_FILE.read_bytes()).hexdigest()


@pytest.fixture
def host(tmp_path):
    """A canary outside the sandbox, the project's fingerprint, and a SIGUSR1 trap."""
    canary = tmp_path / "canary" / "canary.txt"
    canary.parent.mkdir()
    canary.write_text("untouched")
    got_signal = []
    old = signal.signal(signal.SIGUSR1, lambda *a: got_signal.append(a))
    before = _fingerprint()
    yield {"canary": canary, "signals": got_signal}
    signal.signal(signal.SIGUSR1, old)
    assert canary.read_text() == "untouched"
    assert sorted(p.name for p in canary.parent.iterdir()) == ["canary.txt"]
    assert _fingerprint() == before
    assert got_signal == []


def run_evil(source: str, mode: str, **overrides):
    config = SandboxSettings(isolation=mode, timeout_s=overrides.pop("timeout_s", 1.0),
                           **overrides)
    result = run_program(textwrap.dedent(source), config, allow_execution=True)
    assert surviving_processes(result.sandbox_id) == [], "a sandbox process survived"
    if "uid" in result.layers:
        assert processes_of_uid(config.uid_base) == []
    return result


def fmt(source: str, **values) -> str:
    source = textwrap.dedent(source)
    for key, value in values.items():
        source = source.replace(key, repr(str(value)))
    return source


@pytest.mark.parametrize("mode", MODES)
def test_infinite_loop_times_out(mode, host):
    r = run_evil("while True:\n    pass\n", mode)
    assert r.status == "timeout"


@pytest.mark.parametrize("mode", MODES)
def test_sleep_forever_times_out(mode, host):
    r = run_evil("import time\ntime.sleep(10**6)\n", mode)
    assert r.status == "timeout"


@pytest.mark.parametrize("mode", MODES)
def test_fork_bomb_is_contained(mode, host):
    bomb = """
    import os
    while True:
        try:
            os.fork()
        except OSError:
            pass
    """
    r = run_evil(bomb, mode)
    assert r.status == "timeout"  # every fork fails (NPROC, or the audit hook in basic mode)


@pytest.mark.skipif(not NAMESPACES, reason="needs namespaces")
def test_fork_bomb_without_audit_hook_is_stopped_by_the_kernel(host):
    # Kernel layers alone (no audit hook): NPROC caps the count, the PID namespace kills all.
    bomb = """
    import os, sys, time
    n = 0
    try:
        while True:
            if os.fork() == 0:
                time.sleep(1000)
            n += 1
    except OSError:
        print(n)
        sys.exit(1)
    """
    r = run_evil(bomb, "namespaces", audit_hook=False, max_processes=16)
    assert r.status == "failed"
    assert 0 < int(r.stdout) < 16


@pytest.mark.skipif(not NAMESPACES, reason="needs namespaces")
def test_setsid_escapee_is_killed(host):
    # The program "passes" but leaves a daemon that left the process group: it must still die.
    daemon = """
    import os, time
    if os.fork() == 0:
        os.setsid()
        time.sleep(1000)
    """
    r = run_evil(daemon, "namespaces", audit_hook=False, allow_subprocesses=True)
    assert r.status == "passed"  # survivors are checked in run_evil


@pytest.mark.parametrize("mode", MODES)
def test_memory_blowup_fails(mode, host):
    r = run_evil("x = []\nwhile True:\n    x.append(bytearray(16 * 1024 * 1024))\n", mode,
                 memory_mb=128, timeout_s=10)
    assert r.status == "failed"
    assert "MemoryError" in r.stderr


@pytest.mark.parametrize("mode", MODES)
def test_unbounded_output_is_cut(mode, host):
    r = run_evil("while True:\n    print('x' * 1000)\n", mode, max_output_bytes=10_000)
    assert r.status == "failed" and r.truncated
    assert len(r.stdout) <= 10_000


@pytest.mark.parametrize("mode", MODES)
def test_writing_outside_the_temp_dir_fails(mode, host):
    evil = fmt("""
    open(CANARY, "w").write("pwned")
    open(PROJECT_DIR + "/PWNED", "w").write("pwned")
    """, CANARY=host["canary"], PROJECT_DIR=PROJECT)
    r = run_evil(evil, mode)
    assert r.status == "failed"
    assert not (PROJECT / "PWNED").exists()


@pytest.mark.parametrize("mode", MODES)
def test_reading_the_project_fails(mode, host):
    secret = PROJECT_FILE.read_text()[:40]
    r = run_evil(fmt("print(open(FILE).read())", FILE=PROJECT_FILE), mode)
    assert r.status == "failed"
    assert secret not in r.stdout + r.stderr


@pytest.mark.parametrize("mode", MODES)
def test_listing_the_project_fails(mode, host):
    r = run_evil(fmt("import os\nprint(os.listdir(DIR))", DIR=PROJECT), mode)
    assert r.status == "failed"
    assert "pyproject.toml" not in r.stdout


@pytest.mark.parametrize("mode", MODES)
def test_socket_cannot_reach_the_host(mode, host):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.3)
    port = server.getsockname()[1]
    evil = f"""
    import socket
    s = socket.create_connection(("127.0.0.1", {port}), timeout=1)
    s.sendall(b"exfiltrated")
    """
    r = run_evil(evil, mode)
    assert r.status == "failed"
    with pytest.raises(socket.timeout):
        server.accept()
    server.close()


@pytest.mark.skipif(not NAMESPACES, reason="needs namespaces")
def test_socket_without_audit_hook_finds_no_network(host):
    r = run_evil("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)\n",
                 "namespaces", audit_hook=False)
    assert r.status == "failed" and "unreachable" in r.stderr.lower()


@pytest.mark.parametrize("mode", MODES)
def test_killing_the_parent_fails(mode, host):
    evil = f"""
    import os, signal, time
    os.kill({os.getpid()}, signal.SIGUSR1)   # the evaluator (the host fixture traps SIGUSR1)
    parent = os.getppid()
    os.kill(parent, signal.SIGKILL)
    time.sleep(0.2)
    os.kill(parent, 0)                       # still alive -> ProcessLookupError not raised
    raise SystemExit(1)
    """
    r = run_evil(evil, mode)
    assert not r.passed
    assert host["signals"] == []


@pytest.mark.parametrize("mode", MODES)
def test_deleting_files_fails(mode, host):
    evil = fmt("""
    import os, shutil
    shutil.rmtree(DIR)
    os.remove(FILE)
    """, DIR=host["canary"].parent, FILE=PROJECT_FILE)
    r = run_evil(evil, mode)
    assert r.status == "failed"


@pytest.mark.parametrize("mode", MODES)
def test_closed_stdout_is_not_a_pass_and_cannot_hang_the_evaluator(mode, host):
    r = run_evil("import os, time\nos.closerange(0, 1024)\ntime.sleep(1000)\n", mode)
    assert r.status == "timeout"
    r = run_evil("import os\nos.closerange(0, 1024)\n", mode)
    assert r.status == "failed"  # it also closed its line to the judge: no verdict


@pytest.mark.parametrize("mode", MODES)
def test_reading_stdin_gets_eof(mode, host):
    r = run_evil("x = input()\nprint('read', x)\n", mode, timeout_s=5)
    assert r.status == "failed" and "EOFError" in r.stderr


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("exit_call", ["import sys; sys.exit(0)", "import os; os._exit(0)"])
def test_early_exit_zero_is_not_a_pass(mode, exit_call, host):
    r = run_evil(f"{exit_call}\nassert False, 'the tests below never ran'\n", mode)
    assert r.status == "failed"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("hook", [True, False])
def test_subclasses_escape_gains_nothing(mode, hook, host):
    if mode == "basic" and not hook:
        pytest.skip("basic mode without the audit hook is not meant to contain this")
    evil = fmt("""
    wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "_wrap_close"][0]
    g = wrap.__init__.__globals__
    g["system"]("cat " + FILE + " > /dev/null && echo pwned > " + CANARY)
    assert open(CANARY).read().strip() == "pwned"
    """, FILE=PROJECT_FILE, CANARY=host["canary"])
    r = run_evil(evil, mode, audit_hook=hook, allow_subprocesses=not hook)
    assert r.status == "failed"


def test_project_canary_outside_is_intact_after_all(host):
    # The fixture's teardown does the checking; this run only exercises a clean pass.
    r = run_evil("print(sum(range(10)))\n", MODES[0])
    assert r.status == "passed" and r.stdout == "45\n"
