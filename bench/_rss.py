"""Peak memory and CPU of a whole process tree, sampled with psutil (for the benches).

    from bench._rss import run_sampled
    r = run_sampled([sys.executable, "-m", "stages.dedup"], cwd=work, env=env, log_path=work / "dedup.log")
    r.wall_s, r.peak_tree_mb, r.peak_proc_mb, r.peak_proc_cmd, r.cpu_s

A background thread walks the root process and all its descendants every `interval` seconds
and records, per sample, the sum of their RSS (the whole tree: driver, pool workers, a local
Dask/Ray cluster started by the stage) and each process's own RSS. RSS counts pages shared
between processes (forked children, shared libraries) once per process, so the tree figure is
an upper bound of what the machine really spends; a process living less than one interval can
be missed. CPU seconds are the last user+system times seen per process, summed: `busy` =
cpu_s / (wall_s * workers) says whether the workers were kept busy.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import psutil

MB = 1e6


@dataclass
class TreeSample:
    """What a sampler saw over its lifetime."""
    peak_tree_rss: int = 0             # max over samples of the sum of RSS over the tree
    peak_proc_rss: int = 0             # max RSS of any single process of the tree
    peak_proc_cmd: str = ""            # that process's command line (shortened)
    peak_root_rss: int = 0             # max RSS of the root process alone
    peak_child_rss: int = 0            # max RSS of any descendant (a worker)
    max_procs: int = 0                 # most processes alive in one sample
    samples: int = 0
    cpu_s: float = 0.0                 # user+system seconds, summed over every process seen
    per_pid_peak: dict[int, int] = field(default_factory=dict)


class TreeSampler:
    """Sample the RSS of `pid` and its descendants in a thread until `stop()`."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.result = TreeSample()
        self._cpu: dict[int, float] = {}
        self._cmd: dict[int, str] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"rss-sampler-{pid}", daemon=True)

    def __enter__(self) -> "TreeSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "TreeSampler":
        return self.__enter__()

    def stop(self) -> TreeSample:
        if not self._stop.is_set():
            self._stop.set()
            if self._thread.is_alive():
                self._thread.join()
        self.result.cpu_s = round(sum(self._cpu.values()), 3)
        return self.result

    def _proc(self, pid: int) -> psutil.Process:
        # keep Process objects so that psutil's pid-reuse check and cpu accounting stay per process
        p = self._procs.get(pid)
        if p is None:
            p = self._procs[pid] = psutil.Process(pid)
        return p

    def _cmdline(self, p: psutil.Process) -> str:
        if p.pid not in self._cmd:
            try:
                cmd = " ".join(p.cmdline()) or p.name()
            except (psutil.Error, OSError):
                cmd = "?"
            self._cmd[p.pid] = cmd if len(cmd) <= 160 else cmd[:157] + "..."
        return self._cmd[p.pid]

    def sample_once(self) -> None:
        r = self.result
        try:
            root = self._proc(self.pid)
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            return
        total, alive = 0, 0
        for p in procs:
            try:
                with p.oneshot():
                    rss = p.memory_info().rss
                    t = p.cpu_times()
            except (psutil.Error, OSError):
                continue
            alive += 1
            total += rss
            self._cpu[p.pid] = t.user + t.system
            if rss > r.per_pid_peak.get(p.pid, 0):
                r.per_pid_peak[p.pid] = rss
            if p.pid == self.pid:
                r.peak_root_rss = max(r.peak_root_rss, rss)
            else:
                r.peak_child_rss = max(r.peak_child_rss, rss)
            if rss > r.peak_proc_rss:
                r.peak_proc_rss = rss
                r.peak_proc_cmd = self._cmdline(p)
        r.peak_tree_rss = max(r.peak_tree_rss, total)
        r.max_procs = max(r.max_procs, alive)
        r.samples += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.sample_once()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))


@dataclass
class RunResult:
    cmd: list[str]
    returncode: int
    wall_s: float
    peak_tree_mb: float
    peak_proc_mb: float
    peak_proc_cmd: str
    peak_root_mb: float
    peak_child_mb: float
    max_procs: int
    cpu_s: float
    samples: int

    def as_dict(self) -> dict:
        return asdict(self)


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the process and every descendant still alive (children first found, then all)."""
    try:
        root = psutil.Process(proc.pid)
        family = root.children(recursive=True) + [root]
    except psutil.Error:
        family = []
    for p in family:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(family, timeout=10)


def run_sampled(cmd: Sequence[str], *, cwd: str | os.PathLike | None = None, env: dict | None = None,
                log_path: str | os.PathLike | None = None, interval: float = 0.1,
                timeout: float | None = None) -> RunResult:
    """Run `cmd` to completion, sampling its process tree; stdout+stderr go to `log_path`
    (or are discarded). On timeout or interrupt the whole tree is killed."""
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid, interval).start()
        try:
            rc = proc.wait(timeout=timeout)
        except BaseException:
            _kill_tree(proc)
            proc.wait()
            raise
        finally:
            wall = time.perf_counter() - t0
            s = sampler.stop()
    finally:
        if log_path:
            log.close()
    return RunResult(cmd=list(cmd), returncode=rc, wall_s=round(wall, 3), peak_tree_mb=round(s.peak_tree_rss / MB, 1),
                     peak_proc_mb=round(s.peak_proc_rss / MB, 1), peak_proc_cmd=s.peak_proc_cmd,
                     peak_root_mb=round(s.peak_root_rss / MB, 1), peak_child_mb=round(s.peak_child_rss / MB, 1),
                     max_procs=s.max_procs, cpu_s=s.cpu_s, samples=s.samples)


def tail(path: str | os.PathLike, n: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""
