"""The pipeline flow in the Prefect UI, photographed: a PNG of the flow-runs page.

    .venv/bin/python bench/orchestration.py                 # writes reports/ui/prefect-pipeline.png
    .venv/bin/python bench/orchestration.py --out x.png --keep-repo

Starts a Prefect server on 127.0.0.1, builds a temporary git+DVC copy of the project on the
tiny test corpus, runs the pipeline flow twice on ingest+filter (the first run executes the
stages, the second shows them Cached), prints the per-stage orchestration overhead (child flow
run wall time minus the stage's own `timing.total_s`), and screenshots the UI's runs page with
headless Chromium (`apt-get install chromium` on Debian).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    raise SystemExit("no Chromium found: apt-get install -y chromium")


def screenshot(url: str, out: Path, width: int = 1600, height: int = 1000) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
               f"--screenshot={out}", f"--window-size={width},{height}", "--virtual-time-budget=15000", url]
        subprocess.run(cmd, check=True, capture_output=True, timeout=180)


async def child_runs(parent_ids):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter

    async with get_client() as client:
        return await client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id={"any_": parent_ids}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "reports/ui/prefect-pipeline.png"))
    ap.add_argument("--keep-repo", action="store_true", help="leave the temporary project behind")
    args = ap.parse_args()
    import yaml

    from flows.server import prefect_server
    from tests.corpus import make_corpus
    from tests.integration.dvc_repo import make_dvc_repo

    work = Path(tempfile.mkdtemp(prefix="dscoder-ui-"))
    os.environ["PREFECT_HOME"] = str(work / "prefect-home")
    os.environ.setdefault("DVC_SITE_CACHE_DIR", str(work / "dvc-site-cache"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"]["sources"] = make_corpus(work / "proj" / "corpus")
    params["runner"] = {"kind": "thread", "workers": 1, "address": None, "shards": 2}
    repo = make_dvc_repo(work / "proj", params)
    try:
        with prefect_server(log_path=str(work / "server.log")) as api:
            os.environ["PREFECT_API_URL"] = api
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings({PREFECT_API_URL: api}):
                from flows.pipeline import pipeline

                states = []
                for _ in range(2):  # ran, then cached
                    states.append(pipeline(targets=["filter"], repo=str(repo), retries=0, return_state=True))
                runs = asyncio.run(child_runs([s.state_details.flow_run_id for s in states]))
            print(f"{'stage':<8} {'state':<10} {'flow run s':>10} {'stage s':>8} {'overhead s':>10}")
            for r in sorted(runs, key=lambda r: r.start_time):
                stage_s = json.loads((repo / "reports" / f"{r.name}.json").read_text())["timing"]["total_s"]
                stage_s = stage_s if r.state.name == "Completed" else 0.0
                print(f"{r.name:<8} {r.state.name:<10} {r.total_run_time.total_seconds():>10.2f} {stage_s:>8.2f} "
                      f"{r.total_run_time.total_seconds() - stage_s:>10.2f}")
            time.sleep(2)  # let the server finish writing the runs' final states
            ui = api.removesuffix("/api")
            screenshot(f"{ui}/runs", Path(args.out))
            print(f"screenshot of {ui}/runs: {args.out}")
    finally:
        if not args.keep_repo:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"project kept at {repo}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
