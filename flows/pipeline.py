"""The whole dvc.yaml DAG as one Prefect flow: each stale stage a child flow run, the rest cached.

    python -m flows.pipeline                     # every stage DVC says is stale, in DAG order
    python -m flows.pipeline filter              # `filter` and what it depends on
    python -m flows.pipeline --repo path/to/proj --retries 2

The DAG is never restated here: the stage order comes from DVC's own stage graph
(`Repo.index.graph`), and whether a stage is stale from DVC's status of that stage, asked just
before it would run (so a rerun upstream stage makes its dependants stale, as in `dvc repro`).
A stale stage runs as `dvc repro --single-item <stage>` in a child process (so DVC keeps
dvc.lock and its cache right) under a child flow run named after the stage, tagged with the
stage name and "dscoder", with retries; its output lines go to the flow run's log and its
`reports/<stage>.json` is published as a table artifact. An up-to-date stage still gets a child
flow run, which ends at once in the state Completed(name="Cached").

The stage process runs its own Prefect flow; it reports to the same server because the child
process gets PREFECT_API_URL explicitly. Without a server (no PREFECT_API_URL), `main()` starts
one on 127.0.0.1 for the run (flows.server), so parent and stages share one UI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from prefect import flow, get_run_logger, tags
from prefect.states import Completed

from dscoder.paths import Paths
from flows.cli import find_root

CACHED = "Cached"
"""Name of the Completed state of a stage DVC found up to date (Prefect's own name for a cache hit)."""


def _name(stage) -> str:
    # `addressing` is relative to the working directory; a dvc.yaml stage's name is not.
    return getattr(stage, "name", None) or stage.addressing


def stage_order(repo: str | os.PathLike = ".", targets: list[str] | None = None) -> list[str]:
    """Stage names of dvc.yaml in an order DVC can run them (dependencies first), restricted to
    `targets` and their upstream stages when given. Ties break by name, so the order is stable."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(repo)) as r:
        graph = r.index.graph  # edges point from a stage to the stages it depends on
        by_name = {_name(s): s for s in graph.nodes}
        keep = None
        if targets:
            unknown = sorted(set(targets) - set(by_name))
            if unknown:
                raise ValueError(f"targets: no such stage in dvc.yaml: {unknown} (stages: {sorted(by_name)})")
            keep = set()
            for t in targets:
                keep |= {by_name[t], *nx.descendants(graph, by_name[t])}
        order = nx.lexicographical_topological_sort(graph.reverse(copy=True), key=_name)
        return [_name(s) for s in order if keep is None or s in keep]


def stale_reasons(repo: str | os.PathLike, stage: str) -> list:
    """What DVC says changed for this one stage (empty: up to date). Asked afresh each time,
    because the stage processes rewrite dvc.lock."""
    from dvc.repo import Repo

    with Repo(str(repo)) as r:
        # an absolute dvc.yaml address: DVC resolves targets against the working directory
        status = r.status(targets=[f"{Path(repo).resolve() / 'dvc.yaml'}:{stage}"], with_deps=False)
    return [reason for changes in status.values() for reason in changes]


def child_env() -> dict[str, str]:
    """The stage process's environment: this one, this interpreter first on PATH, and the API URL
    this flow reports to."""
    from prefect.settings import get_current_settings

    env = dict(os.environ)
    # dvc.yaml's `python -m stages.x` must be this interpreter (the project's venv), as under `make`.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    url = get_current_settings().api.url
    if url:
        env["PREFECT_API_URL"] = str(url)
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return env


def read_report(repo: Path, stage: str) -> dict | None:
    path = repo / Paths.load(repo / "params.yaml").report(stage)
    return json.loads(path.read_text()) if path.is_file() else None


@flow(name="dvc-stage", log_prints=True)
def run_stage(stage: str, repo: str = ".", force: bool = False) -> Any:
    """One dvc.yaml stage: `dvc repro --single-item <stage>` if DVC says it is stale."""
    from stages.common import publish_artifact

    logger = get_run_logger()
    root = Path(repo).resolve()
    reasons = stale_reasons(root, stage)
    if not reasons and not force:
        logger.info("%s is up to date (dvc status): skipped", stage)
        return Completed(name=CACHED, message=f"{stage}: up to date, dvc status reports no change")
    logger.info("%s is stale: %s", stage, json.dumps(reasons, default=str)[:2000])
    cmd = [sys.executable, "-m", "dvc", "repro", "--single-item", stage, *(["--force"] if force else [])]
    proc = subprocess.Popen(cmd, cwd=root, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            logger.info("%s", line)
            tail = (tail + [line])[-40:]
    if proc.wait() != 0:
        raise RuntimeError(f"dvc repro {stage} exited with {proc.returncode}:\n" + "\n".join(tail))
    report = read_report(root, stage)
    if report is not None:
        publish_artifact(stage, report, Paths.load(root / "params.yaml").report(stage))
    return {"stage": stage, "ran": True, "reasons": [str(r) for r in reasons]}


@flow(name="dscoder-pipeline", log_prints=True)
def pipeline(targets: list[str] | None = None, repo: str = ".", retries: int = 1,
             retry_delay_seconds: float = 5.0, force: bool = False) -> dict[str, str]:
    """Run the stale stages of dvc.yaml (or of `targets` and their upstream), in DAG order.

    Returns {stage: "ran" | "cached"}. A stage that still fails after its retries fails the
    pipeline; stages after it do not start (as with `dvc repro`).
    """
    root = str(find_root(repo))
    order = stage_order(root, targets)
    print(f"stages in order: {order}")
    result: dict[str, str] = {}
    for stage in order:
        child = run_stage.with_options(name=f"stage-{stage.replace('_', '-')}", flow_run_name=stage,
                                       retries=retries, retry_delay_seconds=retry_delay_seconds)
        with tags(stage, "dscoder"):
            state = child(stage, root, force, return_state=True)
        if state.is_failed():
            raise RuntimeError(f"stage {stage} failed: {state.message}")
        result[stage] = "cached" if state.name == CACHED else "ran"
        print(f"{stage}: {result[stage]}")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.pipeline", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", help="stages to bring up to date (default: all of dvc.yaml)")
    ap.add_argument("--repo", default=".", help="project folder (holding dvc.yaml); default: here")
    ap.add_argument("--retries", type=int, default=1, help="retries per stage (default 1)")
    ap.add_argument("--force", action="store_true", help="rerun the stages even if DVC says they are up to date")
    args = ap.parse_args(argv)
    with with_server(args.repo):
        out = pipeline(args.targets or None, args.repo, args.retries, force=args.force)
    print(json.dumps(out))
    return 0


@contextmanager
def with_server(repo: str = ".") -> Iterator[str]:
    """Yield the Prefect API URL to report to: PREFECT_API_URL if set, else a server started on
    127.0.0.1 for the duration (one UI for the parent flow and every stage process)."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        yield url
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.server import prefect_server

    home = os.environ.setdefault("PREFECT_HOME", str(find_root(repo) / ".prefect"))
    os.makedirs(home, exist_ok=True)
    with prefect_server(log_path=os.path.join(home, "server.log")) as url:
        print(f"Prefect server: {url}  (UI: {url.removesuffix('/api')}; stops when the run ends)", flush=True)
        os.environ["PREFECT_API_URL"] = url
        try:
            with temporary_settings({PREFECT_API_URL: url}):
                yield url
        finally:
            del os.environ["PREFECT_API_URL"]


if __name__ == "__main__":
    sys.exit(main())
