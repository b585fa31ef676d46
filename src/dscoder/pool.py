"""A process pool whose workers import only what their tasks need.

`concurrent.futures.ProcessPoolExecutor` with the `spawn` or `forkserver` start method imports
the parent's `__main__` module in every worker: for `python -m stages.dedup` that is the stage
module, hence Prefect, pydantic, SQLAlchemy and friends (about 150 MB and 2-4 CPU seconds per
worker here) before the first task runs; `fork` copies a parent with Prefect's threads and
event loops, which is not safe. `WorkerPool` starts each worker as a fresh interpreter running
this module (`python -m dscoder.pool`), which imports nothing but the standard library until a
task arrives; unpickling the task then imports the task's own modules (pyarrow, the step's
library module).

    with WorkerPool(2) as pool:
        futures = [pool.submit(run_shard, step, src, shard, work, batch_bytes) for shard in shards]
        results = [f.result() for f in futures]

- Tasks and results travel pickled over a private pipe pair per worker (results with their
  large buffers out of band, see `_send_outcome`); the worker's stdout
  and stderr are the parent's, so a task's prints and logs land where the parent's do.
- A task's exception is raised by `Future.result()` with the worker's traceback attached as
  its `__cause__`. A worker that dies (killed, out of memory, a segfault) fails its task with
  `WorkerDied` naming the exit status; the next task gets a fresh worker.
- Workers die with the pool's process (Linux `PR_SET_PDEATHSIG`, from the long-lived thread
  that started them), so a killed stage leaves no worker behind.
- A task is pickled when it is submitted and the arguments are not kept, so the caller's
  memory holds at most the pickled bytes of the tasks waiting for a worker.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import traceback
from concurrent.futures import Future
from typing import Any, Callable

_LEN = struct.Struct("<Q")
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Have the kernel send `sig` to this process when its parent exits (Linux
    `prctl(PR_SET_PDEATHSIG)`; elsewhere a no-op). "Parent" is the thread that started the
    process, so start children from a thread that lives as long as they should. Safe as a
    `preexec_fn`: one libc call, nothing imported or allocated."""
    if _LIBC is None:
        return
    parent = os.getppid()
    _LIBC.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), sig)


#: glibc `mallopt` parameters
_M_MMAP_THRESHOLD = -3
#: Allocations at least this large get pages of their own (returned to the system when freed).
MMAP_THRESHOLD = 1 << 20


def bound_malloc(threshold: int = MMAP_THRESHOLD) -> bool:
    """Make freed batch memory go back to the system: Arrow on the system allocator, and
    glibc's mmap threshold fixed.

    - **Arrow's allocator.** pyarrow's default pool (mimalloc in these wheels) keeps the pages
      of freed buffers for reuse, so a process's RSS holds the high-water mark of every batch
      it has seen, idle pool workers included. Measured on the dedup stage (default corpus,
      2 workers): 851 MB process tree with mimalloc, 561 MB with the system allocator. The
      pool is chosen through `ARROW_DEFAULT_MEMORY_POOL` (set here for this process and every
      process it starts, unless already set) and, where pyarrow is already imported, with
      `pyarrow.set_memory_pool`.
    - **glibc's mmap threshold.** By default glibc raises it (up to 32 MiB) each time a large
      mapped block is freed; from then on the batches' multi-megabyte arrays and strings come
      from the heap, where blocks of ever-changing sizes fragment it and RSS keeps the
      high-water mark of every batch size seen: measured on the pack stage's driver at 14x the
      default corpus, 637 MB peak against 421 MB with the threshold fixed at 1 MiB. Setting it
      explicitly turns the adjustment off; `MALLOC_MMAP_THRESHOLD_` in the environment wins.

    Called by every stage process, pool worker and shard (on Dask or Ray workers too).
    Returns whether the mmap threshold was set (False off glibc)."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    if "pyarrow" in sys.modules:
        _use_arrow_pool(os.environ["ARROW_DEFAULT_MEMORY_POOL"])
    if _LIBC is None or "MALLOC_MMAP_THRESHOLD_" in os.environ or not hasattr(_LIBC, "mallopt"):
        return False
    return bool(_LIBC.mallopt(_M_MMAP_THRESHOLD, threshold))


def trim_heap() -> bool:
    """Give the free pages inside the C heap back to the system (glibc `malloc_trim(0)`).

    Freed memory below the heap's top stays resident, and glibc only returns the top: one
    live block above a freed region (a cached parser's buffers, a writer's pending rows)
    keeps it all. A step that frees tens of MB of mid-sized blocks at once (repo_docs: a
    large repository's dependency graph, a big file's tree-sitter tree) then starts its next
    piece of work on top of them, and blocks of `MMAP_THRESHOLD` or more (a document, its
    Arrow buffers) are mapped afresh, never carved from that free space. Measured on the
    repo_docs step at 14x the default corpus, in one process: after the torch shard the C heap
    held 37 MB, 27 of them free, and one trim took RSS from 135 to 112 MB; trimmed after every
    batch (and part of a large repository) the run peaked at 136 MB instead of 151. It costs
    up to ~2 ms when there is much to give back (plus the page faults of reusing it; 510 calls
    took 0.4 s there), so call it between large pieces of work, not per row. Returns whether
    anything was given back (False off glibc)."""
    if _LIBC is None or not hasattr(_LIBC, "malloc_trim"):
        return False
    return bool(_LIBC.malloc_trim(0))


def _use_arrow_pool(name: str) -> None:
    import pyarrow as pa

    make = {"system": pa.system_memory_pool, "jemalloc": pa.jemalloc_memory_pool,
            "mimalloc": pa.mimalloc_memory_pool}.get(name)
    if make is None:
        return  # a name pyarrow itself does not know: leave its choice alone
    try:
        pool = make()
    except NotImplementedError:  # that allocator is not built into this pyarrow
        return
    if pa.default_memory_pool().backend_name != pool.backend_name:
        pa.set_memory_pool(pool)


class WorkerDied(RuntimeError):
    """A worker process exited while it ran a task."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (attached as `__cause__`)."""

    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f"\n\"\"\"\n{self.tb}\"\"\""


def _send(fh, payload: bytes) -> None:
    fh.write(_LEN.pack(len(payload)))
    fh.write(payload)
    fh.flush()


def _read_len(fh) -> int:
    head = fh.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError("pipe closed")
    return _LEN.unpack(head)[0]


def _recv(fh) -> bytes:
    n = _read_len(fh)
    data = fh.read(n)
    if len(data) < n:
        raise EOFError("pipe closed mid-message")
    return data


# Outcomes (worker -> parent) travel with pickle protocol 5's out-of-band buffers: the pickle
# carries the structure, and each large contiguous buffer (a NumPy array's data) follows as
# raw bytes, read straight into the bytearray the unpickled array then uses. An in-band pickle
# holds the message and the objects made from it at once (the parent's peak gets one extra
# copy of every result: for the pack stage at 14x the default corpus, ~25 MB of token arrays),
# and the worker builds that message next to its result. Measured there (2 workers): driver
# peak 332 -> 319 MB, process tree 816 -> 758 MB. Tasks (parent -> worker) stay in-band,
# so `submit` keeps no reference to its arguments.

def _dumps_outcome(obj: Any) -> tuple[bytes, list[pickle.PickleBuffer]]:
    buffers: list[pickle.PickleBuffer] = []
    return pickle.dumps(obj, protocol=5, buffer_callback=buffers.append), buffers


def _send_outcome(fh, payload: bytes, buffers: list[pickle.PickleBuffer]) -> None:
    fh.write(_LEN.pack(len(buffers)))
    _send(fh, payload)
    del payload
    for b in buffers:
        m = b.raw()
        fh.write(_LEN.pack(m.nbytes))
        fh.write(m)
        del m
        b.release()
    fh.flush()


def _recv_outcome(fh) -> Any:
    count = _read_len(fh)
    payload = _recv(fh)
    buffers = []
    for _ in range(count):
        n = _read_len(fh)
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            k = fh.readinto(view[got:])
            if not k:
                raise EOFError("pipe closed mid-message")
            got += k
        view.release()
        buffers.append(buf)
    return pickle.loads(payload, buffers=buffers)


class WorkerPool:
    """`workers` worker processes, each fed by one thread of this process; `submit` returns a
    `concurrent.futures.Future`. `env` is added to the workers' environment (for example
    thread counts of native libraries). Workers start on first use; `shutdown` (or leaving
    the `with` block) waits for the queued tasks and stops them."""

    def __init__(self, workers: int, *, env: dict[str, str] | None = None, name: str = "dscoder-pool"):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers, self.name = workers, name
        self._env = {**os.environ, **(env or {}),
                     # the parent's import path, as multiprocessing's spawn passes it
                     "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self.pids: set[int] = set()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        payload = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        fut: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("submit after shutdown")
            if len(self._threads) < self.workers:
                t = threading.Thread(target=self._serve, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
            self._queue.put((fut, payload))
        return fut

    def shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._threads:
                self._queue.put(None)
        for t in self._threads:
            t.join()

    # ------------------------------------------------------------------ the parent's side

    def _start(self) -> tuple[subprocess.Popen, Any, Any]:
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()

        proc = subprocess.Popen([sys.executable, "-m", "dscoder.pool", str(to_r), str(from_w)],
                                pass_fds=(to_r, from_w), env=self._env, preexec_fn=die_with_parent,
                                stdin=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self.pids.add(proc.pid)
        return proc, os.fdopen(to_w, "wb"), os.fdopen(from_r, "rb")

    def _serve(self) -> None:
        worker = None
        try:
            while (item := self._queue.get()) is not None:
                fut, payload = item
                del item  # else the task's bytes stay referenced while the worker runs it
                if not fut.set_running_or_notify_cancel():
                    continue
                if worker is None:
                    try:
                        worker = self._start()
                    except OSError as e:
                        fut.set_exception(e)
                        continue
                proc, w, r = worker
                try:
                    _send(w, payload)
                    del payload
                    ok, value = _recv_outcome(r)
                except (EOFError, OSError) as e:
                    code = proc.wait()
                    self._close(worker)
                    worker = None
                    fut.set_exception(WorkerDied(f"worker pid {proc.pid} exited with status {code} during a task "
                                                 f"({e})"))
                    continue
                except BaseException as e:  # a result that does not unpickle here
                    fut.set_exception(e)
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    exc, tb = value
                    exc.__cause__ = RemoteTraceback(tb)
                    fut.set_exception(exc)
                del fut, value  # the caller owns the result now (this thread waits for the next task)
        finally:
            if worker is not None:
                self._close(worker)
                worker[0].wait()

    @staticmethod
    def _close(worker) -> None:
        for fh in worker[1:]:
            try:
                fh.close()
            except OSError:
                pass


# ---------------------------------------------------------------------- the worker's side

def _serve_worker(rfd: int, wfd: int) -> None:
    r, w = os.fdopen(rfd, "rb"), os.fdopen(wfd, "wb")
    while True:
        try:
            data = _recv(r)
        except EOFError:
            return
        try:
            fn, args, kwargs = pickle.loads(data)
            del data
            out = (True, fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the caller
            out = (False, (e, traceback.format_exc()))
        try:
            payload, buffers = _dumps_outcome(out)
        except Exception as e:  # an unpicklable result or exception: send what can travel
            payload, buffers = _dumps_outcome((False, (RuntimeError(f"could not send the task's outcome back: {e!r}"),
                                                       traceback.format_exc())))
        del out  # the buffers keep the arrays they export until sent
        _send_outcome(w, payload, buffers)
        del payload, buffers


if __name__ == "__main__":
    bound_malloc()
    _serve_worker(int(sys.argv[1]), int(sys.argv[2]))
