"""Run untrusted (model-written) Python programs, contained, and judge them against trusted
test code with a verdict the program cannot forge. Opt-in: `allow_execution=True`.

Each worker thread keeps a zygote: the base interpreter (`python -I -S -B`, never the project's
virtualenv, so no project package is importable), started with a scrubbed environment, that
pre-imports common stdlib modules and forks one process tree per program (fork: ~1 ms; a fresh
interpreter importing `typing`: tens of ms). The zygote is trusted and never runs program code.
Every program runs in its own session/process group, in a fresh temporary directory, with stdin
on /dev/null, bounded stdout/stderr and a wall-clock timeout after which the whole group is
SIGKILLed; `run_programs` returns only when no process of a run is left. On top, the layers the
host allows (each result's `layers` says which were in force):

| layer | what it gives | needs |
|---|---|---|
| `pid` namespace | the program's init dies with it, so the kernel kills every process of the run, even ones that setsid()ed out of the group | root, or unprivileged user namespaces |
| `net` namespace | only a loopback that is down: no connection to anything, host's 127.0.0.1 included | same |
| `mnt` + chroot | a tmpfs root with read-only /usr, the interpreter's prefix, /dev/{null,zero,random,urandom}; a private /work (the cwd) and /tmp inside a size-capped tmpfs. Nothing of the project, /home, /root or the host's /tmp exists | same |
| `ipc`, `uts` namespaces | no shared memory / semaphores with the host, own hostname | same |
| `uid` | as root: the program runs as uid `uid_base + worker slot` with no capabilities, so RLIMIT_NPROC (ignored for root) stops fork bombs, and it can signal / write nothing of anyone else; no_new_privs. Without a PID namespace the launcher kills everything of that uid afterwards | root |
| `user` namespace | the non-root path to the namespaces above; the program's capabilities are dropped | unprivileged user namespaces |
| rlimits (always) | CPU seconds, address space (memory), file size, open files, processes, no core files | nothing |
| `audit_hook` (default on) | in-interpreter PEP 578 hook: no sockets, no ctypes, no new processes, opens/changes only under the allowed roots, signals only to its own group. Defence in depth only: PEP 578 says hooks are not a security boundary (races, C extensions) | nothing |

With no namespaces at all (`layers` lacks `mnt`), project files that are world-readable are only
kept away by the audit hook, and a process that escapes the group (setsid) while not root is
only bounded by the timeout and rlimits: use a host where `probe_layers()` reports namespaces for
anything adversarial. Not covered at all: kernel exploits, side channels, GPU access.

Verdicts: the threat model
--------------------------
The adversary is the program: arbitrary Python, run first, with all of its interpreter to
itself. It may read or rewrite anything in its address space (gc, frames, `sys.modules`,
/proc/self/mem), monkeypatch any module, write to every descriptor it holds, print anything,
exit with any status at any time, leave threads, hooks or finalizers behind, and signal its
own process group. Against that, no evidence produced *inside* its interpreter can mean that
the tests ran, since the program could produce it first. So the test code never runs there:

- B runs the program, then serves calls: `(name, args, kwargs)` in, the value (or the
  exception's type and message) out, each as the `repr` of a Python literal.
- C, the judge, is a separate process (forked before B runs anything, not dumpable, so a
  process of the same uid can neither ptrace it nor open its /proc/<pid>/fd or mem). It
  alone holds the test code and the status pipe. It runs the tests with each function the
  program defined replaced by a proxy that calls it in B, reads answers with a literal-only
  parser (nothing is evaluated), and writes `verdict:passed` on the status pipe after the
  tests ran to their end. B closes the status pipe and the tests' descriptor before any
  program code runs, and the tests' file is unlinked before B exists, so the program can
  neither read the tests (nor look up their expected answers) nor write a verdict.
- "passed" = C's verdict plus a clean exit of the run. Exit statuses, stdout and stderr
  carry no weight. Comparisons happen in C on plain values, so an answer whose `__eq__`
  always says True, or whose `repr` is code, fails.

What this needs and does not give: the program cannot reach C only while it cannot ptrace or
read other processes of its uid, which the kernel refuses for non-dumpable ones; without a PID
namespace and not as root, the program runs as the evaluating user, who can ptrace the host
itself (`basic` isolation is not for adversaries). Values that cross must be literals (numbers,
strings, bytes, tuples, lists, dicts, sets, None, bools, inf/nan): a test that hands the
program an object, or expects one back, fails. Functions named in the tests but defined only
in the prompt (HumanEval's `poly`, `encode_cyclic`) are called in B like the rest, so a program
that redefines them changes what the test checks, as in any in-process harness. A program with
no test code (`tests=""`) can only be judged to have run to its end (it says so itself, by
answering the judge's first message): that "passed" means nothing more.
"""

from __future__ import annotations

import dataclasses
import math
import os
import queue
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterable

from dscoder.config import Settings

LAUNCHER = Path(__file__).with_name("_sandbox_launcher.py")
SETUP_FAILED = 125
STATUSES = ("passed", "failed", "timeout", "error")


@dataclass(frozen=True, kw_only=True)
class SandboxSettings(Settings):
    """Limits and isolation for every program run (params.yaml `evaluate.sandbox`)."""

    section: ClassVar[str] = "evaluate.sandbox"

    timeout_s: float = 10.0
    """Wall-clock limit per program; the whole process group is killed after it."""
    cpu_s: int | None = None
    """RLIMIT_CPU (seconds); None = ceil(timeout_s) + 1."""
    memory_mb: int = 1024
    """RLIMIT_AS: address space per process, MiB."""
    file_size_mb: int = 16
    """RLIMIT_FSIZE: largest file the program may write, MiB."""
    tmpfs_mb: int = 64
    """Size of the private tmpfs holding /work and /tmp (namespaced runs), MiB."""
    max_processes: int = 32
    """RLIMIT_NPROC: processes/threads of the sandbox uid (enforced when not root or as the
    dropped uid)."""
    max_open_files: int = 64
    """RLIMIT_NOFILE."""
    max_output_bytes: int = 64 * 1024
    """Bytes kept of stdout and of stderr each; more output kills the run (reason says so)."""
    workers: int = 2
    """Programs run at once by `run_programs`."""
    isolation: str = "auto"
    """"namespaces" (fail if unavailable), "basic" (no namespaces), "auto" (namespaces when the
    host allows them, probed once per process)."""
    audit_hook: bool = True
    """Install the in-interpreter audit hook (defence in depth)."""
    allow_subprocesses: bool = False
    """Let the audit hook permit fork/exec/system (kernel limits still apply)."""
    drop_uid: bool = True
    """When running as root, run programs as uid `uid_base + slot` (makes RLIMIT_NPROC bite)."""
    uid_base: int = 2_000_000_000
    """First sandbox uid; far above real and subordinate-uid ranges so it owns nothing."""
    python: str | None = None
    """Interpreter for programs; None = the base interpreter of this one (no virtualenv)."""
    tmp_root: str | None = None
    """Where the per-run temporary directories go; None = the system default."""

    def validate(self) -> None:
        positive = ["timeout_s", "memory_mb", "file_size_mb", "tmpfs_mb", "max_processes",
                    "max_open_files", "max_output_bytes", "workers"]
        for name in positive:
            self.require(getattr(self, name) > 0, name, f"must be > 0, got {getattr(self, name)!r}")
        self.require(self.cpu_s is None or self.cpu_s > 0, "cpu_s", f"must be > 0 or None, got {self.cpu_s!r}")
        self.require(self.isolation in ("auto", "namespaces", "basic"), "isolation",
                     f"must be auto|namespaces|basic, got {self.isolation!r}")
        self.require(0 < self.uid_base < 2**32 - 2 - 65536, "uid_base", f"out of range: {self.uid_base!r}")
        self.require(self.python is None or os.access(self.python, os.X_OK), "python",
                     f"is not executable: {self.python!r}")


@dataclass(frozen=True)
class RunResult:
    """What happened to one program."""

    status: str
    """passed | failed | timeout | error (the sandbox itself failed)."""
    reason: str
    """Why, in a few words ("exit status 1", "output limit", "signal 9", ...)."""
    returncode: int | None
    runtime_s: float
    stdout: str
    stderr: str
    truncated: bool
    """Output went over `max_output_bytes` (and the run was stopped)."""
    layers: tuple[str, ...] = ()
    """Isolation layers that were in force (see the module docstring)."""
    sandbox_id: str = ""
    """Name of the run's temporary directory; also in the command line of its processes."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def base_python() -> str:
    """The interpreter under any virtualenv: programs must not see the project's packages."""
    exe = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(exe)


def _require(allow_execution: bool) -> None:
    if allow_execution is not True:
        raise PermissionError("executing model-written code is opt-in: pass allow_execution=True")


class _ZygoteGone(RuntimeError):
    pass


class _Zygote:
    """A warm, trusted launcher process (see _sandbox_launcher.serve) that forks one fresh,
    isolated process tree per program: a fork costs ~1 ms where a new interpreter importing
    `typing` costs tens. It never runs model code itself. One per worker thread."""

    def __init__(self, python: str):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        self.sock = parent
        self.proc = subprocess.Popen(
            [python, "-I", "-S", "-B", str(LAUNCHER), str(child.fileno())], cwd="/", env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(child.fileno(),), start_new_session=True)
        child.close()

    def start(self, workdir: Path, out_w: int, err_w: int, status_w: int) -> tuple[int, int]:
        """Fork a run in `workdir`; returns (pid = its process group, pidfd)."""
        try:
            socket.send_fds(self.sock, [str(workdir).encode()], [out_w, err_w, status_w])
            msg, fds, _, _ = socket.recv_fds(self.sock, 64, 1)
        except OSError as e:
            raise _ZygoteGone(f"sandbox zygote gone: {e}") from e
        if not msg or len(fds) != 1:
            raise _ZygoteGone("sandbox zygote gone")
        return int(msg), fds[0]

    def close(self) -> None:
        self.sock.close()  # EOF: the zygote exits
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_probe_lock = threading.Lock()
_probed: dict[tuple, tuple[str, ...]] = {}


def probe_layers(config: SandboxSettings | None = None) -> tuple[str, ...]:
    """Layers a trivial program gets with namespaces requested; () if the host refuses them.
    Cached per (interpreter, uid) for the life of the process."""
    config = config or SandboxSettings()
    config.validate()
    python = config.python or base_python()
    key = (python, os.geteuid())
    with _probe_lock:
        if key not in _probed:
            cfg = dataclasses.replace(config, isolation="namespaces", timeout_s=10.0)
            zygote = _Zygote(python)
            try:
                r = _run_one(zygote, "pass\n", "", cfg, slot=0, namespaces=True)
            finally:
                zygote.close()
            _probed[key] = r.layers if r.status == "passed" else ()
        return _probed[key]


def _use_namespaces(config: SandboxSettings) -> bool:
    if config.isolation == "basic":
        return False
    if config.isolation == "namespaces":
        return True
    return "mnt" in probe_layers(config)


def run_program(source: str, config: SandboxSettings | None = None, *, tests: str = "",
                allow_execution: bool = False, slot: int = 0) -> RunResult:
    """Run one Python program contained, then `tests` against it in the judge; passed = the
    test code ran to its end (see the module docstring)."""
    return run_programs([source], config, tests=[tests], allow_execution=allow_execution,
                        first_slot=slot)[0]


def run_programs(sources: Iterable[str], config: SandboxSettings | None = None, *,
                 tests: Iterable[str] | None = None, allow_execution: bool = False,
                 first_slot: int = 0) -> list[RunResult]:
    """Run many programs, `config.workers` at a time, each with its test code (none: an
    empty test, so passed only says the program ran to its end); results in input order."""
    _require(allow_execution)
    config = config or SandboxSettings()
    config.validate()
    sources = list(sources)
    tests = [""] * len(sources) if tests is None else list(tests)
    if len(tests) != len(sources):
        raise ValueError(f"tests: {len(tests)} for {len(sources)} programs")
    namespaces = _use_namespaces(config)
    python = config.python or base_python()
    workers = max(1, min(config.workers, len(sources)))
    slots: queue.Queue[int] = queue.Queue()
    for s in range(workers):
        slots.put(first_slot + s)
    local = threading.local()
    zygotes: list[_Zygote] = []
    lock = threading.Lock()

    def fresh_zygote() -> _Zygote:
        local.zygote = _Zygote(python)
        with lock:
            zygotes.append(local.zygote)
        return local.zygote

    def one(job: tuple[str, str]) -> RunResult:
        src, test = job
        zygote = getattr(local, "zygote", None) or fresh_zygote()
        slot = slots.get()  # a slot is a uid: concurrent runs never share NPROC or the reaper
        try:
            try:
                return _run_one(zygote, src, test, config, slot=slot, namespaces=namespaces)
            except _ZygoteGone:  # should not happen; one retry on a new zygote, then an error
                try:
                    return _run_one(fresh_zygote(), src, test, config, slot=slot,
                                    namespaces=namespaces)
                except _ZygoteGone as e:
                    return RunResult(status="error", reason=str(e), returncode=None,
                                     runtime_s=0.0, stdout="", stderr="", truncated=False)
        finally:
            slots.put(slot)

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, zip(sources, tests)))
    finally:
        for z in zygotes:
            z.close()


def _read_roots(namespaces: bool, python: str) -> list[str]:
    if namespaces:
        return ["/"]  # the chroot shows nothing but system files
    prefix = os.path.realpath(os.path.join(os.path.dirname(python), ".."))
    return [os.path.join(prefix, "lib"), "/usr/lib", "/usr/lib64", "/usr/share/zoneinfo",
            "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/etc/localtime"]


def _world_traversable(python: str) -> bool:
    prefix = Path(os.path.realpath(os.path.join(os.path.dirname(python), "..")))
    return all(os.stat(p).st_mode & 0o001 for p in [prefix, *prefix.parents])


def _run_one(zygote: _Zygote, source: str, tests: str, config: SandboxSettings, *, slot: int,
             namespaces: bool) -> RunResult:
    python = config.python or base_python()
    root = os.geteuid() == 0
    # Without the chroot, the dropped uid must still be able to reach the interpreter's files.
    droppable = namespaces or _world_traversable(python)
    uid = config.uid_base + slot if (root and config.drop_uid and droppable) else -1
    workdir = Path(tempfile.mkdtemp(prefix="dscoder-sbx-", dir=config.tmp_root))
    cpu_s = config.cpu_s or math.ceil(config.timeout_s) + 1
    cfg = {
        "namespaces": int(namespaces), "uid": uid,
        "cpu_s": cpu_s, "memory_mb": config.memory_mb, "file_size_mb": config.file_size_mb,
        "tmpfs_mb": config.tmpfs_mb, "max_processes": config.max_processes,
        "max_open_files": config.max_open_files, "audit_hook": int(config.audit_hook),
        "allow_network": 0, "allow_subprocesses": int(config.allow_subprocesses),
        "read_roots": ":".join(_read_roots(namespaces, python)),
        "write_roots": "/tmp" if namespaces else "",
    }
    pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, status
    pidfd = -1
    try:
        (workdir / "program.py").write_text(source, encoding="utf-8")
        (workdir / "tests.py").write_text(tests, encoding="utf-8")
        (workdir / "sandbox.cfg").write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
        start = time.monotonic()
        try:
            pgid, pidfd = zygote.start(workdir, *(w for _, w in pipes))
        finally:
            for _, w in pipes:
                os.close(w)
        out, timed_out, overflow = _collect([r for r, _ in pipes], pidfd, pgid, config, start)
        runtime = time.monotonic() - start
        _kill_group(pgid)
        stdout, stderr, status_lines, layers, returncode = out
        abnormal = timed_out or overflow or returncode < 0
        if uid >= 0 and abnormal and "pid" not in layers:
            _reap_uid(python, uid)
        if abnormal or (uid >= 0 and "pid" not in layers):
            # The launcher is gone but the kernel may still be killing the rest (a namespace
            # with a fork bomb in it): return only when nothing of the run is left, so the
            # next run on this slot starts with the whole NPROC budget.
            _wait_until_gone(workdir.name, uid)
    finally:
        for r, _ in pipes:
            os.close(r)
        if pidfd >= 0:
            os.close(pidfd)
        shutil.rmtree(workdir, ignore_errors=True)
    return _result(returncode, timed_out, overflow, stdout, stderr, status_lines,
                   layers, runtime, config, workdir.name)


def _collect(fds: list[int], pidfd: int, pgid: int, config: SandboxSettings, start: float):
    """Read stdout, stderr and the status pipe until the run has exited and the pipes are
    closed, the deadline passes, or the output is too long."""
    cap = config.max_output_bytes
    out_fd, err_fd, status_fd = fds
    bufs = {fd: bytearray() for fd in fds}
    sel = selectors.DefaultSelector()
    for fd in fds + [pidfd]:
        sel.register(fd, selectors.EVENT_READ)
    deadline = start + config.timeout_s
    timed_out = overflow = False
    exited_at = None
    while len(sel.get_map()) > 0:
        now = time.monotonic()
        if now >= deadline:
            timed_out = exited_at is None
            break
        if exited_at is not None and now - exited_at > 0.5:
            break  # something left behind holds the pipes (only possible without a PID ns)
        wait = deadline - now if exited_at is None else min(deadline - now, 0.1)
        for key, _ in sel.select(timeout=wait):
            if key.fd == pidfd:
                exited_at = time.monotonic()
                sel.unregister(pidfd)
                _kill_group(pgid)
                continue
            data = os.read(key.fd, 65536)
            if not data:
                sel.unregister(key.fd)
                continue
            buf = bufs[key.fd]
            buf += data[: cap + 1 - len(buf)] if key.fd != status_fd else data[:4096]
            if key.fd != status_fd and len(buf) > cap:
                overflow = True
        if overflow:
            break
    sel.close()
    if timed_out or overflow:
        _kill_group(pgid)
    decode = lambda b: bytes(b[:cap]).decode("utf-8", "replace")  # noqa: E731
    status_lines = bufs[status_fd].decode("utf-8", "replace").splitlines()
    layers: tuple[str, ...] = ()
    returncode = -1  # no exit line: killed by a signal
    for line in status_lines:
        if line.startswith("layers:"):
            layers = tuple(x for x in line[7:].split(",") if x) + ("rlimits",)
        elif line.startswith("exit:"):
            returncode = int(line[5:])
    return ((decode(bufs[out_fd]), decode(bufs[err_fd]), status_lines, layers, returncode),
            timed_out, overflow)


def _result(returncode, timed_out, overflow, stdout, stderr, status_lines, layers,
            runtime, config, sandbox_id) -> RunResult:
    truncated = overflow or len(stdout.encode()) >= config.max_output_bytes \
        or len(stderr.encode()) >= config.max_output_bytes
    setup_error = next((s[12:] for s in status_lines if s.startswith("setup-error:")), None)
    verdict = next((s[8:] for s in status_lines if s.startswith("verdict:")), None)
    program = next((int(s[13:]) for s in status_lines if s.startswith("program-exit:")), None)
    if timed_out:
        status, reason = "timeout", f"wall clock over {config.timeout_s:g}s"
    elif setup_error is not None or returncode == SETUP_FAILED and verdict is None:
        status, reason = "error", f"sandbox setup failed: {setup_error}"
    elif overflow:
        status, reason = "failed", f"output over {config.max_output_bytes} bytes"
    elif verdict == "passed" and returncode == 0:
        status, reason = "passed", "ok"
    elif program == 0:
        status, reason = "failed", "exited before the end of the program"
    elif program is not None and program > 128:
        sig = program - 128
        status = "timeout" if sig == signal.SIGXCPU else "failed"  # SIGXCPU: RLIMIT_CPU
        reason = f"signal {sig}"
    elif program is not None:
        status, reason = "failed", f"exit status {program}"
    elif returncode < 0:
        status, reason = "failed", "killed by a signal"
    else:
        status, reason = "failed", (verdict or "no verdict").removeprefix("failed:")
    return RunResult(status=status, reason=reason, returncode=returncode, runtime_s=runtime,
                     stdout=stdout, stderr=stderr, truncated=truncated, layers=layers,
                     sandbox_id=sandbox_id)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reap_uid(python: str, uid: int) -> None:
    """Kill every process of a sandbox uid (no PID namespace and the launcher did not finish
    its own reaping): kill(-1) as that uid reaches exactly its processes."""
    code = (f"import os,signal\nos.setgroups([]);os.setgid({uid});os.setuid({uid})\n"
            "try: os.kill(-1, signal.SIGKILL)\nexcept OSError: pass\n")
    subprocess.run([python, "-I", "-S", "-c", code], env={}, timeout=30, check=False)


def _wait_until_gone(sandbox_id: str, uid: int, limit_s: float = 10.0) -> None:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        pids = surviving_processes(sandbox_id) + (processes_of_uid(uid) if uid >= 0 else [])
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.01)


def surviving_processes(sandbox_id: str) -> list[int]:
    """Host pids of this run: its launcher names itself `sbx-<last 8 chars of the id>` (the
    kernel's comm), and every fork of it inherits the name."""
    comm = f"sbx-{sandbox_id[-8:]}"
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name, state = stat[stat.find("(") + 1:stat.rfind(")")], stat[stat.rfind(")") + 2:][:1]
        if name == comm and state not in ("Z", "X"):  # a zombie is dead: only its pid is left
            found.append(int(entry.name))
    return found


def processes_of_uid(uid: int) -> list[int]:
    """Host pids running with real uid `uid` (checks that a dropped-uid run left nothing)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                for line in f:
                    if line.startswith("State:") and line.split()[1] in ("Z", "X"):
                        break
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(entry.name))
                        break
        except OSError:
            continue
    return found


__all__ = ["SandboxSettings", "RunResult", "run_program", "run_programs", "probe_layers",
           "base_python", "surviving_processes", "processes_of_uid", "STATUSES"]
