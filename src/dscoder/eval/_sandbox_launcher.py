"""Child side of dscoder's sandbox; stdlib only. Started once per worker as
`python -I -S -B _sandbox_launcher.py <socket fd>`: the zygote (`serve`), a trusted process that
imports common modules once and then forks one process tree per program (see sandbox.py for the
layers, what each gives, and the verdict's threat model):

    Z  zygote: receives a run directory and the run's stdout/stderr/status pipe ends over a
       unix socket (SCM_RIGHTS), forks L, answers with a pidfd of L. Never runs program code.
    L  launcher (`launch`): new session (its own process group), reads sandbox.cfg and
       program.py, opens tests.py and unlinks both files, unshare()s the namespaces, turns
       non-dumpable, forks A, reports A's exit status as `exit:<code>` on the status pipe,
       and (root, no PID namespace) reaps the sandbox uid with kill(-1).
    A  with a PID namespace: its init. Builds a tmpfs root with read-only system binds,
       chroot()s into it, forks B and C and waits for both (B's own end, when it comes
       before the verdict, as `program-exit:<code>`); when A exits, the kernel kills every
       other process of the namespace.
    B  the program: closes the status pipe and the tests, rlimits, drops to the sandbox uid
       (or all capabilities), no_new_privs, audit hook, exec()s the program, then answers C's
       calls of its functions.
    C  the judge: same limits and uid, not dumpable; reads the tests, runs them with proxies
       for the program's functions, and writes `verdict:passed` when they ran to their end.
"""

import os
import resource
import signal
import sys

SETUP_FAILED = 125  # exit status L reports when the sandbox could not be built

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NAME = 1, 4, 15
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 36, 38
# Modules the judge may import for the tests because the program had them (MBPP's tests use
# `math` without importing it): standard library only, never anything with side effects.
SAFE_MODULES = frozenset(sys.stdlib_module_names) - {"antigravity", "this", "idlelib", "turtle",
                                                     "tkinter", "turtledemo", "webbrowser"}
BUILTIN_NAMES = frozenset(dir(__builtins__))

_libc = None


def libc():
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def check(ret, what):
    if ret != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def read_cfg(path):
    cfg = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            cfg[key] = value
    return cfg


def die_with_parent():
    check(libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")


def mount(src, dst, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    check(libc().mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), f"mount {dst}")


def bind_ro(src, dst):
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    mount(src, dst, None, MS_BIND | MS_REC)
    # A bind mount only becomes read-only through a remount of the bind.
    ro = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
    if not src.startswith("/dev/"):
        ro |= MS_NODEV
    mount(None, dst, None, ro)


def build_root(cfg, program):
    """Replace / by a fresh tmpfs holding read-only system dirs, /dev basics, /tmp and /work."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks back to the host
    root = os.path.abspath("root")
    os.mkdir(root)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={cfg['tmpfs_mb']}m,mode=0755")
    prefix = os.path.realpath(sys.base_prefix)
    for d in ["/usr", prefix]:
        if os.path.isdir(d) and not os.path.isdir(root + d):
            bind_ro(d, root + d)
    for d in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]:
        if os.path.islink(d):
            os.symlink(os.readlink(d), root + d)
        elif os.path.isdir(d):
            bind_ro(d, root + d)
    # The dynamic loader needs its cache for extension modules; nothing else of /etc is shown.
    for f in ["/etc/ld.so.cache", "/etc/localtime"]:
        if os.path.exists(f):
            bind_ro(os.path.realpath(f), root + f)
    for dev in ["null", "zero", "random", "urandom"]:
        bind_ro("/dev/" + dev, f"{root}/dev/{dev}")
    os.makedirs(root + "/proc")
    try:  # a proc of the new PID namespace only; optional
        mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError:
        pass
    uid = int(cfg["uid"])
    os.mkdir(root + "/tmp", 0o1777)
    os.chmod(root + "/tmp", 0o1777)
    os.mkdir(root + "/work", 0o700)
    with open(root + "/work/program.py", "wb") as f:
        f.write(program)
    if uid >= 0:
        os.chown(root + "/work", uid, uid)
        os.chown(root + "/work/program.py", uid, uid)
    os.chdir(root)
    os.chroot(".")
    os.chdir("/work")


def unshare_namespaces():
    """unshare() every namespace we can; returns the layer names achieved (may be empty)."""
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    names = ["mnt", "net", "pid", "ipc", "uts"]
    if os.geteuid() == 0:
        check(libc().unshare(flags), "unshare")
        return names
    uid, gid = os.getuid(), os.getgid()
    check(libc().unshare(flags | CLONE_NEWUSER), "unshare(user)")
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")
    return ["user"] + names


def drop_privileges(uid):
    """Root: become the sandbox's own uid (RLIMIT_NPROC then applies). Else: drop capabilities
    (a user namespace gave us all of them, enough to undo the chroot)."""
    if uid >= 0 and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    else:
        import ctypes

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words: all zero
        check(libc().capset(ctypes.byref(Header(0x20080522, 0)), data), "capset")
    check(libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    die_with_parent()  # a credential change cleared it


def set_limits(cfg):
    mb = 1024 * 1024
    cpu = int(cfg["cpu_s"])
    limits = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),  # soft: SIGXCPU, hard: SIGKILL
        (resource.RLIMIT_AS, int(cfg["memory_mb"]) * mb, None),
        (resource.RLIMIT_FSIZE, int(cfg["file_size_mb"]) * mb, None),
        (resource.RLIMIT_NOFILE, int(cfg["max_open_files"]), None),
        (resource.RLIMIT_NPROC, int(cfg["max_processes"]), None),
        (resource.RLIMIT_CORE, 0, None),
    ]
    for what, soft, hard in limits:
        resource.setrlimit(what, (soft, soft if hard is None else hard))


def install_audit_hook(cfg, workdir):
    """Defence in depth inside the interpreter (PEP 578 hooks are not a boundary on their own):
    no sockets, no ctypes, no new processes unless allowed, opens and file changes only under
    the allowed roots, signals only to our own process group."""
    realpath = os.path.realpath
    write_roots = [workdir] + [p for p in cfg["write_roots"].split(":") if p]
    read_roots = write_roots + [p for p in cfg["read_roots"].split(":") if p]
    allow_net = cfg["allow_network"] == "1"
    allow_proc = cfg["allow_subprocesses"] == "1"
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    proc_events = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen",
                   "os.fork", "os.forkpty", "pty.spawn"}
    path_events = {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate",
                   "os.utime", "os.mkfifo", "os.mknod", "os.rename", "os.link", "os.symlink",
                   "shutil.rmtree", "shutil.copyfile", "shutil.move", "shutil.chown",
                   "os.setxattr", "os.removexattr"}
    getpgid, getpgrp, getpid = os.getpgid, os.getpgrp, os.getpid

    def under(path, roots):
        if isinstance(path, int):
            return True  # an fd we already hold
        try:
            p = realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots)

    def deny(event):
        raise PermissionError(f"dscoder sandbox: {event} denied")

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if path is None:
                return
            writing = bool(flags & write_flags) or any(c in (mode or "") for c in "wax+")
            if not under(path, write_roots if writing else read_roots):
                deny(f"open({path!r})")
        elif event in ("os.listdir", "os.scandir"):
            if args and args[0] is not None and not under(args[0], read_roots):
                deny(event)
        elif event in path_events:
            for a in args[:2] if event in ("os.rename", "os.link", "shutil.copyfile",
                                          "shutil.move") else args[:1]:
                if isinstance(a, (str, bytes)) and not under(a, write_roots):
                    deny(event)
        elif event.startswith("ctypes."):
            deny(event)
        elif event.startswith("socket.") and not allow_net:
            deny(event)
        elif event in proc_events and not allow_proc:
            deny(event)
        elif event in ("os.kill", "os.killpg"):
            target = args[0]
            if event == "os.killpg":
                ok = target in (0, getpgrp())
            elif target <= 0:
                ok = target == 0 or -target == getpgrp()
            else:
                try:
                    ok = target == getpid() or getpgid(target) == getpgrp()
                except OSError:
                    ok = False
            if not ok:
                deny(event)

    sys.addaudithook(hook)


def run_untrusted(cfg, program, path, calls_r, answers_w):
    """B: the last steps, then the program itself; then it answers the judge's calls. Never
    returns."""
    set_limits(cfg)
    drop_privileges(int(cfg["uid"]))
    sys.argv = [path]
    if cfg["audit_hook"] == "1":
        install_audit_hook(cfg, os.path.dirname(path))
    env = {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__}
    os.environ["HOME"] = os.path.dirname(path)
    os.environ["TMPDIR"] = "/tmp" if "mnt" in cfg["layers"] else os.path.dirname(path)
    del cfg
    try:
        exec(compile(program, path, "exec"), env)
    except SystemExit as e:
        flush()
        os._exit(e.code if isinstance(e.code, int) else (0 if e.code is None else 1))
    except BaseException as e:
        report_exception(e, skip=1)  # skip this file's frame: the report starts at the program
        flush()
        os._exit(1)
    serve_calls(env, calls_r, answers_w)


def serve_calls(env, calls_r, answers_w):
    """B after the program: tell the judge what the program defined, then run each call it
    sends (name, args, kwargs) and answer with the value or the exception. Ends when the
    judge hangs up. Runs in untrusted territory: nothing here is relied on."""
    import types

    callables = sorted(k for k, v in env.items() if callable(v) and not k.startswith("__")
                       and not isinstance(v, types.ModuleType))
    modules = {k: v.__name__ for k, v in env.items() if isinstance(v, types.ModuleType)}
    try:
        flush()
        send(answers_w, ("ready", callables, modules))
        while True:
            call = recv(calls_r)
            if call is None:
                flush()
                os._exit(0)
            name, args, kwargs = call
            try:
                answer = ("ok", env[name](*args, **kwargs))
            except Exception as e:  # noqa: BLE001 - the judge re-raises it on its side
                answer = ("raise", type(e).__name__, str(e)[:1000])
            flush()
            send(answers_w, answer)
    except SystemExit as e:
        flush()
        os._exit(e.code if isinstance(e.code, int) else (0 if e.code is None else 1))
    except BaseException as e:
        report_exception(e)
        flush()
        os._exit(1)


def judge(cfg, tests_fd, calls_w, answers_r, status_fd):
    """C: runs the test code, trusted, in a process the program cannot touch (see sandbox.py's
    threat model). Every name the program defined is a proxy that calls it in B; only Python
    literals cross. Writes `verdict:passed` on the status pipe when the test code ran to its
    end. Never returns."""
    import builtins

    set_limits(cfg)
    drop_privileges(int(cfg["uid"]))
    check(libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(DUMPABLE)")  # after the uid change
    chunks = []
    while chunk := os.read(tests_fd, 1 << 16):
        chunks.append(chunk)
    os.close(tests_fd)
    tests = b"".join(chunks).decode("utf-8")
    if cfg["audit_hook"] == "1":
        install_audit_hook(cfg, "/nonexistent")
    try:
        ready = recv(answers_r)
    except Exception as e:  # noqa: BLE001
        ready = ("bad", str(e))
    if not (isinstance(ready, tuple) and len(ready) == 3 and ready[0] == "ready"):
        verdict(status_fd, "failed:the program ended before the tests ran")
        os._exit(1)
    _, callables, modules = ready
    g = {"__name__": "__main__", "__builtins__": builtins}
    try:
        for alias, name in dict(modules).items():
            if str(name).partition(".")[0] in SAFE_MODULES:
                try:
                    g[str(alias)] = importlib_import(str(name))
                except ImportError:
                    pass
        for name in callables:
            # The program's own `abs` or `len` would judge the tests' comparisons: never.
            if str(name) not in BUILTIN_NAMES:
                g[str(name)] = Remote(str(name), calls_w, answers_r)
        exec(compile(tests, "<tests>", "exec"), g)
    except BaseException as e:
        report_exception(e, skip=1)
        verdict(status_fd, f"failed:{type(e).__name__} in the tests")
        flush()
        os._exit(1)
    flush()
    verdict(status_fd, "passed")
    os._exit(0)


def verdict(status_fd, text):
    try:
        os.write(status_fd, f"verdict:{text}\n".encode())
    except OSError:
        os._exit(1)


def importlib_import(name):
    import importlib

    return importlib.import_module(name)


class Remote:
    """The judge's stand-in for a function of the program: each call runs in B."""

    def __init__(self, name, calls_w, answers_r):
        self.__name__ = self.__qualname__ = name
        self._w, self._r = calls_w, answers_r

    def __call__(self, *args, **kwargs):
        send(self._w, (self.__name__, args, kwargs))
        answer = recv(self._r)
        if answer is None:
            raise RuntimeError(f"the program ended during a call of {self.__name__}")
        if not isinstance(answer, tuple) or not answer:
            raise TypeError(f"malformed answer from {self.__name__}")
        if answer[0] == "ok" and len(answer) == 2:
            return answer[1]
        if answer[0] == "raise" and len(answer) == 3:
            import builtins

            kind = getattr(builtins, str(answer[1]), None)
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                kind = RuntimeError
            raise kind(str(answer[2]))
        raise TypeError(f"malformed answer from {self.__name__}")

    def __repr__(self):
        return f"<function {self.__name__}>"


def report_exception(e, skip=0):
    try:
        import traceback

        tb = e.__traceback__
        for _ in range(skip):
            tb = tb.tb_next if tb is not None else None
        traceback.print_exception(type(e), e, tb)
    except BaseException:
        pass


# --- the wire between judge and program: length-prefixed Python literals, nothing else.
MAX_MESSAGE = 16 * 1024 * 1024


def send(fd, obj):
    data = repr(obj).encode("utf-8", "surrogatepass")
    if len(data) > MAX_MESSAGE:
        raise ValueError(f"message over {MAX_MESSAGE} bytes")
    view = memoryview(len(data).to_bytes(4, "big") + data)
    while view:
        view = view[os.write(fd, view):]


def recv(fd):
    """The next message, or None at end of file."""
    head = read_exact(fd, 4)
    if head is None:
        return None
    n = int.from_bytes(head, "big")
    if n > MAX_MESSAGE:
        raise ValueError(f"message over {MAX_MESSAGE} bytes")
    body = read_exact(fd, n)
    if body is None:
        raise EOFError("message cut short")
    return literal(body.decode("utf-8", "surrogatepass"))


def read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def literal(text):
    """A Python literal from its repr: ast.literal_eval's types plus inf, nan, set() and
    frozenset(...). Never evaluates anything else, so a hostile answer is only data."""
    import ast

    def value(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = [value(e) for e in node.elts]
            return {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)](items)
        if isinstance(node, ast.Dict):
            return {value(k): value(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Name) and node.id in ("inf", "nan"):
            return float(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = value(node.operand)
            if isinstance(v, (int, float, complex)) and not isinstance(v, bool):
                return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            a, b = value(node.left), value(node.right)
            if isinstance(a, (int, float)) and isinstance(b, complex):
                return a + b if isinstance(node.op, ast.Add) else a - b
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords
                and node.func.id in ("set", "frozenset") and len(node.args) <= 1):
            kind = set if node.func.id == "set" else frozenset
            return kind(value(node.args[0]) if node.args else ())
        raise ValueError(f"not a literal: {type(node).__name__}")

    return value(ast.parse(text, mode="eval").body)


def flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def exit_code(status):
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def wait_for(pid):
    """Wait for `pid`, reaping any other child on the way (A is an init)."""
    while True:
        try:
            got, status = os.wait()
        except ChildProcessError:
            return SETUP_FAILED
        if got == pid:
            return exit_code(status)


def init_a(cfg, program, tests_fd):
    """A: the PID namespace's init (without one, just the parent of B and C). Forks B, the
    program, and C, the judge, and waits: when C has passed, B is killed; when B ends first,
    C is (a verdict it already wrote stands); when C fails, B's own end is waited for and
    reported (the host's deadline still applies)."""
    die_with_parent()
    status_fd = int(cfg["status_fd"])
    if "mnt" in cfg["layers"]:
        build_root(cfg, program)
        path = "/work/program.py"
    else:
        path = os.path.abspath("program.py")
        if int(cfg["uid"]) >= 0:
            os.chown(".", int(cfg["uid"]), int(cfg["uid"]))
    calls_r, calls_w = os.pipe()
    answers_r, answers_w = os.pipe()
    b = os.fork()
    if b == 0:  # B holds no way to the status pipe or the tests, before any program code runs
        for fd in (status_fd, tests_fd, calls_w, answers_r):
            os.close(fd)
        run_untrusted(cfg, program, path, calls_r, answers_w)
    c = os.fork()
    if c == 0:
        for fd in (calls_r, answers_w):
            os.close(fd)
        os.chdir("/")
        judge(cfg, tests_fd, calls_w, answers_r, status_fd)
    for fd in (tests_fd, calls_r, calls_w, answers_r, answers_w):
        os.close(fd)
    judge_code = program_code = None
    while judge_code is None or program_code is None:
        try:
            got, status = os.wait()
        except ChildProcessError:
            break
        if got == b:
            program_code = exit_code(status)
            if judge_code is None:  # the program ended on its own, not by the judge's hang-up
                os.write(status_fd, f"program-exit:{program_code}\n".encode())
                os.kill(c, signal.SIGKILL)  # (its forks may still hold the judge's pipe open)
        elif got == c:
            judge_code = exit_code(status)
            if judge_code == 0 and program_code is None:
                os.kill(b, signal.SIGKILL)  # the verdict is in: the program's part is over
                program_code = -1
    os._exit(SETUP_FAILED if judge_code is None else judge_code)


def launch(status_fd):
    """L: one run, from the run's directory (the cwd). Never returns."""
    cfg = read_cfg("sandbox.cfg")
    os.unlink("sandbox.cfg")
    # The tests are only ever read by C: here they become an fd, and the file goes before
    # any process that runs program code exists.
    tests_fd = os.open("tests.py", os.O_RDONLY)
    os.unlink("tests.py")
    cfg["status_fd"] = str(status_fd)
    # Name the run after its directory, so that the host can find every process of it.
    libc().prctl(PR_SET_NAME, ("sbx-" + os.path.basename(os.getcwd())[-8:]).encode(), 0, 0, 0)
    with open("program.py", "rb") as f:
        program = f.read()
    try:
        die_with_parent()  # the evaluator (or zygote) dying takes the run with it
        layers = unshare_namespaces() if cfg["namespaces"] == "1" else []
        # Not dumpable: a process of the same uid cannot ptrace us or open /proc/<pid>/fd|mem.
        check(libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(DUMPABLE)")
    except OSError as e:
        os.write(status_fd, f"setup-error:{e}\n".encode())
        os._exit(SETUP_FAILED)
    uid = int(cfg["uid"])
    if uid >= 0 and os.geteuid() == 0:
        layers.append("uid")
    if cfg["audit_hook"] == "1":
        layers.append("audit_hook")
    cfg["layers"] = layers
    os.write(status_fd, ("layers:" + ",".join(layers) + "\n").encode())
    pid = os.fork()
    if pid == 0:
        try:
            init_a(cfg, program, tests_fd)
        except BaseException as e:
            try:
                os.write(status_fd, f"setup-error:{type(e).__name__}: {e}\n".encode())
            finally:
                os._exit(SETUP_FAILED)
    os.close(tests_fd)
    code = wait_for(pid)
    if "pid" not in layers and uid >= 0 and os.geteuid() == 0:
        # No PID namespace to tear down: kill every process of the sandbox uid, including
        # any that left our process group with setsid(). kill(-1) spares the caller.
        os.setgid(uid)
        os.setuid(uid)
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.write(status_fd, f"exit:{code}\n".encode())
    finally:
        os._exit(code)


# Imported once by the zygote so that forked runs find them ready (a fresh interpreter spends
# most of a HumanEval program's time importing typing & co.). Stdlib only.
WARM_MODULES = ("ctypes", "typing", "collections", "re", "math", "itertools", "functools",
                "heapq", "bisect", "string", "hashlib", "random", "traceback", "copy",
                "operator", "fractions", "statistics", "datetime", "json", "dataclasses")


def serve(sock_fd):
    """The zygote: a warm, trusted process that never runs a program itself. For each request
    (run dir + stdout/stderr/status pipe ends over SCM_RIGHTS) it forks an L in a new session
    and answers with a pidfd of it."""
    import importlib
    import socket

    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    die_with_parent()
    check(libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(DUMPABLE)")
    sock = socket.socket(fileno=sock_fd)
    # Orphans of a killed run come to us (not to the host's init, which may be slow to reap)
    # and, with SIGCHLD ignored, the kernel reaps them at once.
    check(libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(CHILD_SUBREAPER)")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 4096, 3)
        except OSError:
            os._exit(0)
        if not msg or len(fds) != 3:
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                sock.close()
                os.setsid()  # its own session and process group: killpg reaches the whole run
                os.chdir(msg.decode())
                devnull = os.open("/dev/null", os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(fds[0], 1)
                os.dup2(fds[1], 2)
                for fd in (devnull, fds[0], fds[1]):
                    os.close(fd)
                if "random" in sys.modules:  # forked runs must not share the zygote's stream
                    sys.modules["random"].seed()
                launch(fds[2])
            except BaseException as e:
                try:
                    os.write(fds[2], f"setup-error:{type(e).__name__}: {e}\n".encode())
                finally:
                    os._exit(SETUP_FAILED)
        for fd in fds:
            os.close(fd)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:  # already gone (and reaped): the pipes tell the rest
            pidfd = os.open("/dev/null", os.O_RDONLY)
        socket.send_fds(sock, [str(pid).encode()], [pidfd])
        os.close(pidfd)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
