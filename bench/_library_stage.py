"""Run a stage's own code with Prefect taken out: the library calls it makes, nothing else.

    python bench/_library_stage.py stages.dedup [--params params.yaml]     # in a project folder
    python bench/_library_stage.py --workers 2 stages.dedup                # shards on 2 processes

The stage module's main() runs as usual (same params, same library calls, same outputs and
reports, byte for byte) except that its flow is called as a plain function and no Prefect API
is contacted. Its shards run one after another in this process, or with `--workers N` on N
worker processes of the library's own `dscoder.pool.WorkerPool` (the same parallelism as the
stage, written here with the pool's public API only: no code of stages.common's executor).
Prints one JSON line: `work_s`, the wall time from main() entered to returned (imports excluded).
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time
from pathlib import Path

os.environ["PREFECT_API_URL"] = "http://127.0.0.1:9/api"  # never contacted: no flow engine runs
sys.path.insert(0, os.getcwd())


def main() -> None:
    workers = 1
    if sys.argv[1] == "--workers":
        workers = int(sys.argv[2])
        del sys.argv[1:3]
    module, rest = sys.argv[1], sys.argv[2:]
    from prefect.flows import Flow

    import stages.common as common
    from dscoder.pool import WorkerPool

    def run_shards(stage, fn, shard_args, runner):
        if workers == 1:
            return [fn(*args) for args in shard_args]
        with WorkerPool(workers, name="library") as pool:
            return [f.result() for f in [pool.submit(fn, *args) for args in shard_args]]

    Flow.with_options = lambda self, *a, **k: self  # type: ignore[method-assign]
    Flow.__call__ = lambda self, *a, **k: self.fn(*a, **k)  # type: ignore[method-assign]
    common.run_shards = run_shards
    sys.argv = [module, *rest]
    t0 = time.perf_counter()
    runpy.run_module(module, run_name="__main__")
    print(json.dumps({"module": module, "work_s": round(time.perf_counter() - t0, 3), "cwd": str(Path.cwd())}))


if __name__ == "__main__":
    main()
