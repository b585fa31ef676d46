"""dscoder.pool: fresh-interpreter workers that import only what their tasks need."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from dscoder.pool import RemoteTraceback, WorkerDied, WorkerPool


def _modules_loaded(names):
    return {n: n in sys.modules for n in names}


def _fail(msg):
    raise KeyError(msg)


def _rss_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_results_in_submission_order_across_workers():
    with WorkerPool(2) as pool:
        futures = [pool.submit(pow, 3, i) for i in range(20)]
        assert [f.result() for f in futures] == [3 ** i for i in range(20)]
        pids = {pool.submit(os.getpid).result() for _ in range(6)}
    assert pids <= pool.pids and os.getpid() not in pids


def test_a_worker_imports_neither_prefect_nor_the_callers_main():
    import prefect  # noqa: F401  (the caller has it; the worker must not)

    with WorkerPool(1) as pool:
        loaded = pool.submit(_modules_loaded, ["prefect", "pydantic", "sqlalchemy"]).result()
        rss_mb = pool.submit(_rss_kb).result() / 1024
    assert loaded == {"prefect": False, "pydantic": False, "sqlalchemy": False}
    assert rss_mb < 120, rss_mb  # a bare interpreter plus this test module's imports


def test_task_exception_carries_the_worker_traceback():
    with WorkerPool(1) as pool:
        with pytest.raises(KeyError, match="boom") as info:
            pool.submit(_fail, "boom").result()
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "_fail" in info.value.__cause__.tb


def test_a_dead_worker_fails_its_task_and_the_next_task_gets_a_fresh_one():
    with WorkerPool(1) as pool:
        first = pool.submit(os.getpid).result()
        with pytest.raises(WorkerDied, match="status 7"):
            pool.submit(os._exit, 7).result()
        second = pool.submit(os.getpid).result()
        assert pool.submit(sum, [1, 2, 3]).result() == 6
    assert first != second


def test_workers_die_with_the_process_that_started_them(tmp_path):
    pids_file = tmp_path / "pids"
    script = textwrap.dedent(f"""
        import os, time
        from dscoder.pool import WorkerPool
        pool = WorkerPool(2)
        futures = [pool.submit(time.sleep, 0.2) for _ in range(2)]
        [f.result() for f in futures]
        open({str(pids_file)!r}, "w").write(" ".join(map(str, pool.pids)))
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not (pids_file.exists() and pids_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == 2
    parent.send_signal(signal.SIGKILL)
    parent.wait()

    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(")")[-1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)


def test_submit_after_shutdown_is_refused():
    pool = WorkerPool(1)
    assert pool.submit(abs, -2).result() == 2
    pool.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(abs, -1)
