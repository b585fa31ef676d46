"""The pipeline flow in the Prefect UI, photographed: a PNG of the flow-runs page.

    .venv/bin/python bench/orchestration.py                 # writes reports/ui/prefect-pipeline.png
    .venv/bin/python bench/orchestration.py --out x.png --keep-repo

    .venv/bin/python bench/orchestration.py --full          # the whole pipeline, default profile

`--full` runs every stage of dvc.yaml on the default profile (params.yaml as it is: the real
~116-repository corpus, training, evaluation; ~10-20 min on 2 cores) as one pipeline flow in a
temporary git+DVC copy of the project, against a Prefect server on 127.0.0.1, and photographs:
the pipeline's flow run (every stage a child flow run on its timeline), the artifacts page
(each stage's report table, progress and, for training stages, loss curve) and the pretrain
stage's loss curve artifact, as reports/ui/prefect-{pipeline,artifacts,loss}.png.

Without it: starts a Prefect server on 127.0.0.1, builds a temporary git+DVC copy of the project on the
tiny test corpus, runs the pipeline flow twice on ingest+filter (the first run executes the
stages, the second shows them Cached), prints the per-stage orchestration overhead (child flow
run wall time minus the stage's own `timing.total_s`, in reports/<stage>.timing.json), and screenshots the UI's runs page with
headless Chromium (`apt-get install chromium` on Debian).

    .venv/bin/python bench/orchestration.py --overhead                    # default corpus, data stages
    .venv/bin/python bench/orchestration.py --overhead --corpus tiny --stages ingest filter

Overhead per data stage, each stage run four ways on the same inputs in a temporary copy of
the project: its library (bench/_library_stage.py: the stage's own code with the flow called as
a function and no Prefect API), once with its shards in one process and once on as many
`dscoder.pool` workers as the stage uses (`runner.workers`: the same parallelism, so the
difference is orchestration alone); the stage as `dvc repro` runs it (its dvc.yaml `cmd`) with
no PREFECT_API_URL (the flow runs directly: no server); and the same with a persistent server
started beforehand (as `make repro` does). Per run: wall time, peak RSS of the whole process
tree (bench/_rss.py) and how many temporary Prefect servers appeared; then the target (stage
within 1.5x the library's wall time + 2 s, process tree within its RSS + 300 MB), judged
against the stricter of the two library runs: the faster one's wall time and the smaller one's
tree (the one-process run's, so the stage's extra worker processes count against it).
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


def screenshot(url: str, out: Path, width: int = 1600, height: int = 1000, wait_ms: int = 15000) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
               f"--screenshot={out}", f"--window-size={width},{height}", f"--virtual-time-budget={wait_ms}", url]
        subprocess.run(cmd, check=True, capture_output=True, timeout=180)


async def child_runs(parent_ids):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter

    async with get_client() as client:
        return await client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id={"any_": parent_ids}))


SERVER_APP = "prefect.server.api.server:create_app"  # the temporary server's uvicorn factory


class ServerWatch:
    """Pids of temporary Prefect servers (uvicorn on SERVER_APP) running in `cwd`, polled in a thread."""

    def __init__(self, cwd: Path, interval: float = 0.2) -> None:
        import threading

        self.cwd, self.interval, self.pids = str(cwd), interval, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import psutil

        while not self._stop.is_set():
            for p in psutil.process_iter(["cmdline", "cwd"]):
                try:
                    if SERVER_APP in " ".join(p.info["cmdline"] or []) and p.info["cwd"] == self.cwd:
                        self.pids.add(p.pid)
                except (psutil.Error, TypeError):
                    pass
            self._stop.wait(self.interval)

    def __enter__(self) -> "ServerWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_stage(cmd: list[str], repo: Path, env: dict, log: Path) -> dict:
    from bench._rss import run_sampled, tail

    with ServerWatch(repo) as watch:
        r = run_sampled(cmd, cwd=repo, env=env, log_path=log)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{tail(log)}")
    out = {"wall_s": r.wall_s, "tree_mb": r.peak_tree_mb, "procs": r.max_procs, "cpu_s": r.cpu_s,
           "servers": len(watch.pids)}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith('{"module"'):
            out["work_s"] = json.loads(line)["work_s"]
    return out


def overhead(args) -> int:
    """Each data stage: library vs stage without a server vs stage with a persistent server."""
    import yaml

    from flows.server import prefect_server
    from tests.corpus import make_corpus
    from tests.integration.dvc_repo import make_dvc_repo

    work = Path(tempfile.mkdtemp(prefix="dscoder-overhead-"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if args.corpus == "tiny":
        params["ingest"]["sources"] = make_corpus(work / "proj" / "corpus")
    repo = make_dvc_repo(work / "proj", params)
    dag = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    base.update(PREFECT_HOME=str(work / "prefect-home"), PATH=f"{Path(sys.executable).parent}:{base['PATH']}")
    runner = params.get("runner", {})
    workers = int(runner.get("workers", 2)) if runner.get("kind", "process") == "process" else 1
    print(f"corpus: {args.corpus}; runner {runner.get('kind')} x {runner.get('workers')} workers, "
          f"{runner.get('shards')} shards; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    rows = []
    try:
        with prefect_server(log_path=str(work / "server.log")) as api:
            for stage in args.stages:
                cmd = ["bash", "-c", dag[stage]["cmd"]]  # as dvc repro runs it
                library = [sys.executable, str(ROOT / "bench/_library_stage.py")]
                lib1 = run_stage([*library, f"stages.{stage}"], repo, base, work / f"{stage}.lib.log")
                lib = run_stage([*library, "--workers", str(workers), f"stages.{stage}"], repo, base,
                                work / f"{stage}.libpool.log")
                none = run_stage(cmd, repo, base, work / f"{stage}.none.log")
                srv = run_stage(cmd, repo, {**base, "PREFECT_API_URL": api}, work / f"{stage}.server.log")
                rows.append((stage, lib1, lib, none, srv))
                print(f"  {stage}: library {lib1['wall_s']:.1f} s (1 process), {lib['wall_s']:.1f} s ({workers} "
                      f"workers); stage without a server {none['wall_s']:.1f} s ({none['servers']} server(s)), with a "
                      f"persistent server {srv['wall_s']:.1f} s", flush=True)
    finally:
        if not args.keep_repo:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"project kept at {repo}")
    print()
    print(f"{'stage':<10} {'run':<20} {'wall s':>7} {'tree MB':>8} {'procs':>5} {'servers':>7} {'overhead s':>10} "
          f"{'x lib':>6} {'+MB':>6} {'+MB 1p':>7}  target (1.5x the faster library + 2 s, the smaller library's tree "
          f"+ 300 MB)")
    for stage, lib1, lib, none, srv in rows:
        for name, r in (("library, 1 process", lib1), (f"library, {workers} workers", lib),
                        ("stage, no server", none), ("stage, server", srv)):
            over, ratio, mb = r["wall_s"] - lib["wall_s"], r["wall_s"] / lib["wall_s"], r["tree_mb"] - lib["tree_mb"]
            wall_lim = 1.5 * min(lib["wall_s"], lib1["wall_s"]) + 2
            tree_lim = min(lib["tree_mb"], lib1["tree_mb"]) + 300
            ok = r["wall_s"] <= wall_lim and r["tree_mb"] <= tree_lim
            verdict = "-" if name.startswith("library") else (
                f"{'met' if ok else 'MISSED'} ({wall_lim:.1f} s, {tree_lim:.0f} MB)")
            print(f"{stage:<10} {name:<20} {r['wall_s']:>7.2f} {r['tree_mb']:>8.0f} {r['procs']:>5} {r['servers']:>7} "
                  f"{over:>10.2f} {ratio:>6.2f} {mb:>6.0f} {r['tree_mb'] - lib1['tree_mb']:>7.0f}  {verdict}")
    print("library: the stage's own code with Prefect taken out, its shards in one process or on the same number of "
          "dscoder.pool workers as the stage (imports included in wall s; work only, 1 process: "
          + ", ".join(f"{s} {lib1.get('work_s', float('nan')):.2f} s" for s, lib1, *_ in rows)
          + "); +MB 1p: tree MB over the one-process library (the extra worker processes included)")
    return 0


def latest_artifact_id(key: str):
    """The id of the newest artifact under `key` (None if there is none)."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async def read():
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                                sort=ArtifactSort.CREATED_DESC, limit=1)
            return found[0].id if found else None
    return asyncio.run(read())


def full_shots(ui: str, pipeline_run_id, stage: str, out_dir: Path) -> list[Path]:
    """The README's pictures of a finished pipeline run on the server at `ui`: the pipeline's
    flow run (its child flow runs on the timeline), the artifacts page (every report table,
    progress and loss curve) and `stage`'s loss curve artifact."""
    shots = [(f"{ui}/runs/flow-run/{pipeline_run_id}", "prefect-pipeline.png", 1000),
             (f"{ui}/artifacts", "prefect-artifacts.png", 1400)]
    loss_id = latest_artifact_id(f"{stage.replace('_', '-')}-loss")
    if loss_id is not None:
        shots.append((f"{ui}/artifacts/artifact/{loss_id}", "prefect-loss.png", 1100))
    written = []
    for url, name, height in shots:
        screenshot(url, out_dir / name, height=height, wait_ms=20000)
        print(f"screenshot of {url}: {out_dir / name}", flush=True)
        written.append(out_dir / name)
    return written


def full(args) -> int:
    """The whole pipeline on the default profile, then the four screenshots (module docstring)."""
    import yaml

    from flows.server import prefect_server
    from tests.integration.dvc_repo import make_dvc_repo

    out_dir = Path(args.out_dir)
    work = Path(tempfile.mkdtemp(prefix="dscoder-ui-full-"))
    os.environ["PREFECT_HOME"] = str(work / "prefect-home")
    os.environ.setdefault("DVC_SITE_CACHE_DIR", str(work / "dvc-site-cache"))
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # dvc, as under make
    os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"  # the stage processes' lines in the UI, as under make repro
    repo = make_dvc_repo(work / "proj", yaml.safe_load((ROOT / "params.yaml").read_text()))
    # the copy's own library in every stage process (an editable install would import this checkout's)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(repo / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
    try:
        with prefect_server(log_path=str(work / "server.log")) as api:
            os.environ["PREFECT_API_URL"] = api
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings({PREFECT_API_URL: api}):
                from flows.pipeline import pipeline

                t0 = time.perf_counter()
                state = pipeline(repo=str(repo), retries=0, return_state=True)
                print(f"pipeline: {state.name} in {time.perf_counter() - t0:.0f} s", flush=True)
                runs = asyncio.run(child_runs([state.state_details.flow_run_id]))
                for r in sorted(runs, key=lambda r: r.start_time):
                    print(f"  {r.name:<18} {r.state.name:<10} {r.total_run_time.total_seconds():>8.1f} s")
                time.sleep(3)  # let the server finish writing the runs' final states
                full_shots(api.removesuffix("/api"), state.state_details.flow_run_id, args.stage, out_dir)
    finally:
        if not args.keep_repo:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"project kept at {repo}")
    return 0 if state.is_completed() else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "reports/ui/prefect-pipeline.png"))
    ap.add_argument("--keep-repo", action="store_true", help="leave the temporary project behind")
    ap.add_argument("--overhead", action="store_true", help="per-stage overhead: library vs stage, with and "
                                                             "without a persistent server (no screenshot)")
    ap.add_argument("--corpus", choices=["default", "tiny"], default="default", help="--overhead: the corpus")
    ap.add_argument("--stages", nargs="+", default=["ingest", "filter", "repo_docs", "dedup", "decontam"],
                    help="--overhead: data stages, in pipeline order")
    ap.add_argument("--full", action="store_true", help="the whole pipeline on the default profile, then "
                                                         "screenshots of its runs and artifacts (--out-dir)")
    ap.add_argument("--out-dir", default=str(ROOT / "reports/ui"), help="--full: where the PNGs go")
    ap.add_argument("--stage", default="pretrain", help="--full: the training stage whose loss curve is shown")
    args = ap.parse_args()
    if args.overhead:
        return overhead(args)
    if args.full:
        return full(args)
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
                stage_s = json.loads((repo / "reports" / f"{r.name}.timing.json").read_text())["timing"]["total_s"]
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
