"""Run a stage's own code with Prefect taken out: the library calls it makes, nothing else.

    python bench/_library_stage.py stages.dedup [--params params.yaml]     # in a project folder

The stage module's main() runs as usual (same params, same library calls, same outputs and
reports, byte for byte) except that its flow is called as a plain function, its shard tasks
run one after another in this process (`task.fn`), and no Prefect API is contacted. Prints one
JSON line: `work_s`, the wall time from main() entered to returned (imports excluded).
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
    module, rest = sys.argv[1], sys.argv[2:]
    from prefect.flows import Flow

    import stages.common as common

    Flow.with_options = lambda self, *a, **k: self  # type: ignore[method-assign]
    Flow.__call__ = lambda self, *a, **k: self.fn(*a, **k)  # type: ignore[method-assign]
    common.run_shards = lambda stage, fn, shard_args, runner: [fn(*args) for args in shard_args]
    sys.argv = [module, *rest]
    t0 = time.perf_counter()
    runpy.run_module(module, run_name="__main__")
    print(json.dumps({"module": module, "work_s": round(time.perf_counter() - t0, 3), "cwd": str(Path.cwd())}))


if __name__ == "__main__":
    main()
