"""Ingest and filter throughput on the default corpus, and Prefect's overhead per stage.

    .venv/bin/python bench/ingest_filter.py [--params params.yaml] [--skip-overhead]

Prints, in one run:
  1. ingest (sources → rows) and filter (rules + parse checks) throughput, library only,
     one process: files/s and MB/s;
  2. the orchestration cost of one stage process: a no-op Prefect flow in a fresh Python
     process in ephemeral mode (no server: Prefect starts a temporary one) and against a
     running `prefect server` (PREFECT_API_URL set, as `make repro` does), next to a bare
     Python process as the floor.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from dscoder.data.filters import FilterSettings, filter_file  # noqa: E402
from dscoder.data.ingest import IngestSettings, ingest_sources  # noqa: E402

NOOP_FLOW = "from prefect import flow\n@flow\ndef noop():\n    return 1\nnoop()\n"


def bench_data(params: dict) -> None:
    s = IngestSettings.from_dict(params["ingest"], "ingest")
    t0 = time.perf_counter()
    res = ingest_sources(s.sources, s)
    t_ingest = time.perf_counter() - t0
    nbytes = sum(f["size"] for f in res.files)
    fs = FilterSettings.from_dict(params["filter"], "filter")
    t0 = time.perf_counter()
    reasons = Counter(filter_file(f["content"], f["language"], f["path"], fs) for f in res.files)
    t_filter = time.perf_counter() - t0
    print(f"{'step':<10} {'files':>7} {'MB':>7} {'seconds':>8} {'files/s':>9} {'MB/s':>7}")
    for name, t in (("ingest", t_ingest), ("filter", t_filter)):
        print(f"{name:<10} {len(res.files):>7} {nbytes / 1e6:>7.1f} {t:>8.2f} {len(res.files) / t:>9.0f} {nbytes / 1e6 / t:>7.2f}")
    print(f"(ingest: {len(res.audit)} entries skipped; filter: {sum(v for k, v in reasons.items() if k)} dropped)")


def run_python(code: str, env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def bench_overhead(repeats: int = 3) -> None:
    from flows.server import prefect_server

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    bare = min(run_python("import prefect", env) for _ in range(repeats))
    ephemeral = min(run_python(NOOP_FLOW, env) for _ in range(repeats))
    t0 = time.perf_counter()
    with prefect_server() as url:
        start = time.perf_counter() - t0
        served = min(run_python(NOOP_FLOW, {**env, "PREFECT_API_URL": url}) for _ in range(repeats))
    print(f"\n{'one stage process':<44} {'seconds':>8}")
    floor = "python -c 'import prefect' (floor)"
    print(f"{floor:<44} {bare:>8.2f}")
    print(f"{'no-op flow, ephemeral (no server)':<44} {ephemeral:>8.2f}")
    print(f"{'no-op flow, PREFECT_API_URL -> server':<44} {served:>8.2f}")
    print(f"{'server start (once per make repro)':<44} {start:>8.2f}")
    print(f"overhead per stage: ephemeral {ephemeral - bare:.2f} s, with server {served - bare:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--skip-overhead", action="store_true")
    args = ap.parse_args()
    os.chdir(ROOT)
    bench_data(yaml.safe_load(open(args.params)))
    if not args.skip_overhead:
        bench_overhead()


if __name__ == "__main__":
    main()
