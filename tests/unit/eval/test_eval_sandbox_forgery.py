"""Verdict forgery: programs that try to score a pass without the test code running to its end.

Each program defines `f()` returning the wrong answer and then attacks the verdict instead:
the only way any of them passes is a forged verdict. The tests assert a secret that the
program would need to know to answer correctly; several attacks hunt for it (in memory, in
frames, in other processes) and print what they found, which must be nothing. A correct
program with the same tests passes (the control), so "not passed" is never vacuous.
"""

from __future__ import annotations

import secrets
import textwrap

import pytest

from dscoder.eval.sandbox import SandboxSettings, probe_layers, run_program, surviving_processes

NAMESPACES = "mnt" in probe_layers()
MODES = (["namespaces"] if NAMESPACES else []) + ["basic"]

WRONG = "def f():\n    return 'wrong'\n"

# Written to every file descriptor and pipe the attacks can reach: the host's old "done"
# marker, the judge's verdict line, and a framed "ready" message of the judge's wire format.
FORGE_LINES = '''
# The tests' text; the pattern's own source has backslashes, so it never matches itself.
HUNT = re.compile(rb"assert f\\(\\) == '[0-9a-f]{24}'")
LINES = [b"verdict:passed\\n", b"exit:0\\n", b"done:" + b"0" * 32 + b"\\n"]
def spray(fd):
    for line in LINES:
        try:
            os.write(fd, line)
        except OSError:
            pass
'''


def forge(body: str, mode: str, **overrides):
    secret = secrets.token_hex(12)
    config = SandboxSettings(isolation=mode, timeout_s=overrides.pop("timeout_s", 3.0),
                           **overrides)
    program = WRONG + "import os, re, sys\n" + FORGE_LINES + textwrap.dedent(body)
    r = run_program(program, config, tests=f"assert f() == {secret!r}\n", allow_execution=True)
    assert surviving_processes(r.sandbox_id) == []
    assert secret not in r.stdout + r.stderr, "the program saw the expected answer"
    return r


@pytest.mark.parametrize("mode", MODES)
def test_control_a_correct_program_passes_and_a_wrong_one_fails(mode):
    tests = "assert f() == 'right'\n"
    ok = run_program("def f():\n    return 'right'\n", SandboxSettings(isolation=mode),
                     tests=tests, allow_execution=True)
    bad = run_program(WRONG, SandboxSettings(isolation=mode), tests=tests, allow_execution=True)
    assert ok.passed, ok
    assert bad.status == "failed" and "AssertionError" in bad.stderr


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ending", ["os._exit(0)", "sys.exit(0)", "raise SystemExit",
                                    "os.kill(os.getpid(), 9)"])
def test_ending_early_with_a_clean_status(mode, ending):
    assert not forge(ending, mode).passed


@pytest.mark.parametrize("mode", MODES)
def test_printing_the_markers(mode):
    r = forge("""
    for line in LINES:
        sys.stdout.write(line.decode()); sys.stderr.write(line.decode())
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)
    """, mode)
    assert not r.passed


@pytest.mark.parametrize("mode", MODES)
def test_writing_the_markers_to_every_descriptor(mode):
    r = forge("""
    for fd in range(1024):
        spray(fd)
    os._exit(0)
    """, mode)
    assert not r.passed


@pytest.mark.parametrize("mode", MODES)
def test_hunting_frames_gc_and_modules_for_the_tests(mode):
    # Everything reachable from inside the interpreter: the call stack, every object the
    # collector knows, every module's globals. The tests' text is in none of them.
    r = forge("""
    import gc
    found = []
    def look(x):
        if isinstance(x, (str, bytes)) and HUNT.search(x.encode("utf-8", "replace")
                                                       if isinstance(x, str) else x):
            found.append(x)
    frame = sys._getframe()
    while frame is not None:
        for v in list(frame.f_locals.values()) + list(frame.f_globals.values()):
            look(v)
        for c in frame.f_code.co_consts:
            look(c)
        frame = frame.f_back
    for obj in gc.get_objects():
        look(obj)
        if isinstance(obj, dict):
            for v in list(obj.values()):
                look(v)
    for m in list(sys.modules.values()):
        for v in list(vars(m).values()):
            look(v)
    print("found", len(found))
    if found:
        def f():
            return found[0]
    """, mode)
    assert not r.passed
    assert "found 0" in r.stdout


@pytest.mark.parametrize("mode", MODES)
def test_scanning_own_memory_through_proc(mode):
    r = forge("""
    hits = 0
    try:
        maps = open("/proc/self/maps").read().splitlines()
        mem = open("/proc/self/mem", "rb")
        for row in maps:
            span, perms = row.split()[:2]
            if "r" not in perms:
                continue
            a, b = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(a)
                hits += len(HUNT.findall(mem.read(b - a)))
            except (OSError, ValueError, OverflowError):
                pass
    except OSError as e:
        print("no access:", type(e).__name__)
    print("hits", hits)
    """, mode, timeout_s=10)
    assert not r.passed
    assert "hits 0" in r.stdout or "no access" in r.stdout


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("hook", [True, False])
def test_reaching_other_processes_through_proc(mode, hook):
    # The judge holds the tests and the status pipe; the program may see its pid (same PID
    # namespace) but must neither read its memory nor open its descriptors.
    if mode == "basic" and not hook:
        pytest.skip("basic mode without the audit hook relies on the uid alone")
    r = forge("""
    me, opened, read = os.getpid(), 0, 0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != me]
    except OSError:  # the audit hook, without a private /proc
        pids = []
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    spray(os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY))
                    opened += 1
                except OSError:
                    pass
        except OSError:
            pass
        try:
            with open(f"/proc/{pid}/mem", "rb") as m:
                m.read(1)
            read += 1
        except OSError:
            pass
    print("opened", opened, "read", read, flush=True)
    os._exit(0)
    """, mode, audit_hook=hook)
    assert not r.passed
    assert "opened 0 read 0" in r.stdout


@pytest.mark.skipif(not NAMESPACES, reason="needs namespaces")
def test_ptrace_of_the_judge_is_refused():
    r = forge("""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    me = os.getpid()
    attached = [p for p in (int(p) for p in os.listdir("/proc") if p.isdigit())
                if p != me and libc.ptrace(16, p, 0, 0) == 0]   # PTRACE_ATTACH
    print("attached", len(attached))
    """, "namespaces", audit_hook=False)
    assert not r.passed
    assert "attached 0" in r.stdout


@pytest.mark.parametrize("mode", MODES)
def test_killing_or_stopping_every_process(mode):
    # Without namespaces the audit hook is what keeps these signals inside the run (as root
    # with no uid to drop to, nothing else would): it stays on there.
    hook = mode == "basic"
    r = forge("""
    import signal
    for sig in (signal.SIGSTOP, signal.SIGTERM, signal.SIGKILL):
        try:
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit()] + [-1]
        except OSError:
            pids = [1, 2, 3, -1]
        for pid in pids:
            if pid != os.getpid():
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
    os._exit(0)
    """, mode, audit_hook=hook, allow_subprocesses=not hook)
    assert not r.passed


@pytest.mark.parametrize("mode", MODES)
def test_a_thread_spraying_markers_while_the_tests_run(mode):
    r = forge("""
    import threading
    def keep_spraying():
        while True:
            for fd in range(3, 64):
                spray(fd)
    threading.Thread(target=keep_spraying, daemon=True).start()
    """, mode)
    assert not r.passed


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("answer", [
    # an object equal to everything
    "class Any:\n    def __eq__(self, other): return True\n    __hash__ = None\nANSWER = Any()",
    # a str subclass that claims equality
    "class S(str):\n    def __eq__(self, other): return True\n    __hash__ = str.__hash__\n"
    "ANSWER = S('wrong')",
    # a repr that is code: the judge must only ever read literals
    "class R:\n    def __repr__(self): return \"__import__('os')._exit(0)\"\nANSWER = R()",
])
def test_answers_that_are_not_honest_values(mode, answer):
    r = forge(answer + "\ndef f():\n    return ANSWER\n", mode)
    assert not r.passed


@pytest.mark.parametrize("mode", MODES)
def test_monkeypatching_builtins_and_the_launcher(mode):
    # The program's interpreter is its own to wreck; the judge's is not the same one.
    r = forge("""
    import builtins
    builtins.AssertionError = type("Nope", (Exception,), {})
    builtins.isinstance = lambda *a: True
    for m in list(sys.modules.values()):
        for name in ("verdict", "judge", "send", "recv", "literal"):
            if hasattr(m, name):
                setattr(m, name, lambda *a, **k: None)
    """, mode)
    assert not r.passed


@pytest.mark.parametrize("mode", MODES)
def test_exiting_cleanly_inside_the_call(mode):
    assert not forge("def f():\n    os._exit(0)\n", mode).passed


@pytest.mark.parametrize("mode", MODES)
def test_speaking_the_judge_protocol_with_a_fake_ready(mode):
    # A framed "ready" naming nothing, then silence: the tests then fail on a missing name.
    r = forge("""
    msg = repr(("ready", [], {})).encode()
    for fd in range(3, 64):
        try:
            os.write(fd, len(msg).to_bytes(4, "big") + msg)
        except OSError:
            pass
    import time
    time.sleep(0.5)
    os._exit(0)
    """, mode)
    assert not r.passed


@pytest.mark.parametrize("mode", MODES)
def test_shadowing_the_builtins_the_tests_compare_with(mode):
    # In one interpreter a program's `abs` would be the tests' `abs`; the judge keeps its own.
    program = ("def f():\n    return 5\n\ndef abs(x):\n    return 0\n\n"
               "def isinstance(*a):\n    return True\n\nlen = lambda x: 3\n")
    tests = "assert abs(f() - 2) < 1e-9\nassert isinstance(f(), str)\nassert len([f()]) == 3\n"
    r = run_program(program, SandboxSettings(isolation=mode), tests=tests, allow_execution=True)
    assert r.status == "failed" and "AssertionError" in r.stderr
