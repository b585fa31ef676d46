"""What every stage shares: params loading, the shard task runner, reports.

The shape of a stage: a Settings dataclass built from its params.yaml section,
a Prefect flow that calls library code, atomic outputs, and `reports/<stage>.json`.
Every path a stage reads or writes is an entry of params.yaml's `paths` section
(`dscoder.paths.Paths`, `load_paths`); the stage module's `READS` / `WRITES` name those
entries, and a test checks them against the stage's deps and outs in dvc.yaml.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Literal, Sequence

import yaml

from prefect import task

from dscoder.config import Settings, check
from dscoder.data.step import ShardResult, Step, run_shard
from dscoder.data.stream import Shard, concat_parts, largest_first, plan_shards
from dscoder.io import pid_alive, write_json
from dscoder.paths import Paths
from dscoder.pool import WorkerPool, bound_malloc
from dscoder.schemas import AUDIT

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
bound_malloc()  # every stage process: big freed buffers go back to the system (dscoder.pool)


@dataclass(frozen=True, kw_only=True)
class RunnerSettings(Settings):
    section: ClassVar[str] = "runner"

    kind: Literal["sequential", "thread", "process", "dask", "ray"] = "process"
    """Where shards run: local worker processes by default (each shard a Prefect task run on a
    thread of the stage process, its work done in a `dscoder.pool` worker that imports neither
    Prefect nor the stage); `thread`/`sequential` in the stage process; `dask`/`ray` on a cluster."""
    workers: int = 2
    """Local workers (processes or threads); for dask without an address, local cluster workers."""
    address: str | None = None
    """Scheduler address for dask (tcp://host:8786) or ray (ray://host:10001); None starts a local one."""
    shards: int = 4
    """The least number of shards (contiguous sets of whole repositories, planned by bytes) a
    data stage splits its input into; more when the input exceeds `shards * shard_bytes`.
    Outputs do not depend on it."""
    shard_bytes: int = 256 * 2**20
    """About how many bytes of input one shard holds (a repository larger than that is a shard
    of its own). Shards run largest first, so a giant repository never idles the other workers."""
    batch_bytes: int = 2 * 2**20
    """How many bytes of input rows a worker holds at once: with the one-row-group reads of
    dscoder.data.stream this sets a worker's peak memory. Outputs do not depend on it."""

    def validate(self) -> None:
        check(self.workers >= 1, "runner.workers", f"must be >= 1, got {self.workers}")
        check(self.shards >= 1, "runner.shards", f"must be >= 1, got {self.shards}")
        check(self.shard_bytes >= 1, "runner.shard_bytes", f"must be >= 1, got {self.shard_bytes}")
        check(self.batch_bytes >= 1, "runner.batch_bytes", f"must be >= 1, got {self.batch_bytes}")


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    with open(path) as f:
        return yaml.safe_load(f) or {}


def project_params_file() -> Path:
    """The params.yaml of the checkout this code runs from (beside the `stages` package)."""
    import stages

    return Path(stages.__file__).resolve().parents[1] / "params.yaml"


def load_paths(params: dict[str, Any] | None = None) -> Paths:
    """The `paths` section of `params` (a loaded params file; a stage's main() passes its own),
    else of the project's params.yaml (a flow called directly, as the tests do). A missing or
    unknown entry fails naming `paths.<key>`."""
    return Paths.from_params(params if params is not None else load_params(project_params_file()))


def stage_args(description: str) -> argparse.Namespace:
    """Common CLI of every stage module: `--params` picks the params file. Nothing Prefect
    starts here: the stage validates its params first, and only its flow call (`run_flow`)
    contacts an API, if one is configured."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = ap.parse_args()
    keep_lock_copy()
    return args


#: Where the last dvc.lock that parsed is kept, for `python -m flows.lock --recover`.
LOCK_COPY = Path(".dvc/tmp/dvc.lock.good")


def lock_is_valid(path: Path) -> bool:
    """Whether `path` is a dvc.lock DVC can read: a YAML mapping with its schema and stages."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and str(doc.get("schema")) == "2.0" and isinstance(doc.get("stages"), dict)


def keep_lock_copy(lock: Path = Path("dvc.lock"), copy: Path = LOCK_COPY) -> bool:
    """Before a stage runs under `dvc repro`, keep a copy of dvc.lock if it is whole: a kill
    while DVC rewrites the lock can leave it empty, and this copy (every stage finished
    before this one) is what `flows.lock --recover` restores. Returns whether it copied."""
    if not copy.parent.is_dir() or not lock_is_valid(lock):
        return False
    from dscoder.io import atomic_path

    with atomic_path(copy) as tmp:
        shutil.copyfile(lock, tmp)
    return True


def share_prefect_api() -> str | None:
    """The API URL this process and every worker it spawns report to; None if Prefect is not
    allowed a temporary server (it then fails as it would anyway).

    With `PREFECT_API_URL` set (a persistent server: `make repro`, `python -m flows.server`)
    nothing happens. Without it Prefect starts a temporary server in each process that talks
    to the API, so a stage whose N workers run Prefect tasks (a local Dask or Ray cluster)
    would start N + 1 of them (~10 s and ~150 MB each here). This starts the one Prefect's
    own client would start for this process (`SubprocessASGIServer()` is a per-process
    singleton, which the flow engine then reuses) and exports its URL before the cluster
    starts: its workers inherit the environment and talk to it instead of starting their own.
    `runner.kind: process` needs none of this (`dscoder.pool` workers never talk to Prefect).
    It stops when this process exits."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if os.environ.get("PREFECT_API_URL") or settings.api.url:
        return os.environ.get("PREFECT_API_URL") or settings.api.url
    if not settings.server.ephemeral.enabled:
        return None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    # Prefect's own wait (20 s) is too short on a loaded 2-core machine; this one is paid once per stage
    server.start(timeout=max(120, settings.server.ephemeral.startup_timeout_seconds))
    os.environ["PREFECT_API_URL"] = server.api_url
    return server.api_url


#: How a stage meets Prefect: `auto` (the default) runs its flow under Prefect when an API is
#: configured (PREFECT_API_URL or the Prefect profile: `make repro`, `python -m flows.server`,
#: a server of your own) and runs the same flow code directly, with no server and no run record,
#: when none is; `temporary` keeps Prefect's own behaviour (a temporary server for the stage,
#: whose runs land in PREFECT_HOME's database); `off` never contacts Prefect.
PREFECT_ENV = "DSCODER_PREFECT"
PREFECT_MODES = ("auto", "temporary", "off")


def prefect_api_url() -> str | None:
    """The Prefect API this process is configured to report to, or None (none is set)."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


def orchestrated(runner: RunnerSettings | None = None) -> bool:
    """Whether a stage's flow runs under Prefect's engine (see PREFECT_ENV). A Dask or Ray runner
    always does: its shards are Prefect tasks on the cluster. A bad value fails fast naming it."""
    mode = (os.environ.get(PREFECT_ENV) or "auto").strip().lower()
    check(mode in PREFECT_MODES, PREFECT_ENV, f"must be one of {', '.join(PREFECT_MODES)}, got {mode!r}")
    cluster = runner is not None and runner.kind in ("dask", "ray")
    if mode == "off":
        check(not cluster, "runner.kind", f"{runner.kind if runner else ''} runs shards as Prefect tasks on the "
              f"cluster, which {PREFECT_ENV}=off forbids")
        return False
    return mode == "temporary" or cluster or prefect_api_url() is not None


def run_flow(flow_: Any, *args: Any, on: RunnerSettings | None = None, **kwargs: Any) -> Any:
    """Call a stage's flow as `python -m stages.<name>` and `dvc repro` do. Under Prefect (an API
    is configured, see PREFECT_ENV) it is a flow run, on `task_runner(on)` for a data stage whose
    shards run on `on`. Without one it is
    the same function with the same validated parameters, called directly: no temporary server
    (~10-25 s and ~300 MB a stage), shards straight on the worker pool, reports and outputs
    byte-identical, only the run record and UI artifacts missing."""
    if orchestrated(on):
        if on is not None:
            flow_ = flow_.with_options(task_runner=task_runner(on))
        return flow_(*args, **kwargs)
    from prefect.utilities.callables import get_call_parameters

    print(f"[{flow_.name}] no Prefect API configured: running without a flow run record (start one with "
          f"`make ui` and set PREFECT_API_URL, or use `make repro`; {PREFECT_ENV}=temporary starts a temporary "
          "server instead)", file=sys.stderr, flush=True)
    params = flow_.validate_parameters(get_call_parameters(flow_.fn, args, kwargs))
    return flow_.fn(**params)


def data_stage_main(flow_: Any, settings: type[Settings], doc: str | None) -> Any:
    """The whole main() of a data stage: the `--params` file, the stage's section read as
    `settings` (its `section`), `runner` and `paths`, all checked before anything starts; then
    its flow, `flow_(settings, runner, paths=...)`, through `run_flow`."""
    args = stage_args(doc or "")
    params = load_params(args.params)
    section = settings.from_dict(params.get(settings.section), settings.section)
    runner = RunnerSettings.from_dict(params.get("runner"), "runner")
    return run_flow(flow_, section, runner, paths=load_paths(params), on=runner)


def in_run() -> bool:
    """Whether this code runs inside a Prefect flow or task run."""
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def run_task(task_: Any, *args: Any, **kwargs: Any) -> Any:
    """A stage's task: a Prefect task run inside a flow run; its plain function outside one
    (`run_flow` without an API)."""
    return task_(*args, **kwargs) if in_run() else task_.fn(*args, **kwargs)


def task_runner(r: RunnerSettings):
    """The Prefect task runner the shards of a data stage run on. For `process` the shard tasks
    run on threads of the stage process and hand their work to a `WorkerPool` (`run_shards`):
    Prefect's own process runner starts every worker by importing the stage module, Prefect
    included (~150 MB and seconds of CPU each), while a pool worker imports only the step."""
    from prefect.task_runners import ThreadPoolTaskRunner

    if r.kind in ("process", "thread", "sequential"):
        return ThreadPoolTaskRunner(max_workers=1 if r.kind == "sequential" else r.workers)
    share_prefect_api()  # before the cluster starts: its workers report to the stage's API
    if r.kind == "dask":
        from prefect_dask import DaskTaskRunner

        if r.address:
            return DaskTaskRunner(address=r.address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": r.workers, "threads_per_worker": 1, "processes": True})
    if r.kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError as e:
            raise SystemExit("runner.kind=ray needs the 'ray' extra: pip install 'dscoder[ray]'") from e
        if r.address:  # a running cluster (`ray start --head`): host:port of its GCS, or ray://host:10001
            return RayTaskRunner(address=r.address)
        # a local instance for the flow run: `workers` CPUs (one shard task each), no dashboard
        return RayTaskRunner(init_kwargs={"num_cpus": r.workers, "include_dashboard": False})
    raise AssertionError(r.kind)


def remove_dead_scratch(folder: Path, stage: str) -> list[Path]:
    """Remove the scratch folders `.<stage>-<pid>-*` of runs whose process is gone (killed
    runs leave them behind). Returns what was removed."""
    removed = []
    for p in folder.glob(f".{stage}-*"):
        parts = p.name[len(stage) + 2:].split("-", 1)
        if p.is_dir() and parts[0].isdigit() and int(parts[0]) != os.getpid() and not pid_alive(int(parts[0])):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def scratch(out: Path, stage: str) -> Iterator[str]:
    """A scratch folder beside `out` (same file system, so parts can be renamed into place),
    named after this process so a later run can tell a dead run's leftovers; removed after."""
    out = Path(out).resolve()  # absolute: workers on a cluster run in other folders
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_scratch(out.parent, stage)
    with tempfile.TemporaryDirectory(prefix=f".{stage}-{os.getpid()}-", dir=out.parent) as work:
        yield work


#: The worker pools of the `run_shards` calls in progress, by key (a task's parameters must
#: be plain values, so the task gets the key).
_POOLS: dict[str, WorkerPool] = {}


@contextlib.contextmanager
def worker_pool(runner: RunnerSettings, stage: str) -> Iterator[str | None]:
    """The key of a `WorkerPool` of `runner.workers` processes while the block runs, for
    `runner.kind: process`; None (work runs where the task runs) for the other kinds."""
    if runner.kind != "process":
        yield None
        return
    key = f"{stage}-{os.getpid()}-{len(_POOLS)}"
    with WorkerPool(runner.workers, name=key) as pool:
        _POOLS[key] = pool
        try:
            yield key
        finally:
            del _POOLS[key]


@task(name="shard")
def _shard(fn: Callable, args: tuple, pool: str | None) -> Any:
    if pool is None:  # thread, sequential, or on a Dask/Ray worker
        return fn(*args)
    return _POOLS[pool].submit(fn, *args).result()


def run_shards(stage: str, fn: Callable, shard_args: Sequence[tuple], runner: RunnerSettings) -> list[Any]:
    """`fn(*args)` for each tuple of `shard_args`; results in submission order. Inside a flow
    run each is a Prefect task run (`<stage>-shard`) on the flow's task runner; in a direct run
    (`run_flow` without an API) the same work goes straight to the pool (or threads). `fn` must
    be a library function (importable without Prefect or the stage: it runs in pool workers and
    on clusters)."""
    from stages.common.progress import Progress

    with worker_pool(runner, stage) as pool, Progress(stage, len(shard_args), "shard", desc=f"{stage}: shards") as p, \
            contextlib.ExitStack() as stack:
        if in_run():
            from prefect.futures import as_completed

            task_ = _shard.with_options(name=f"{stage}-shard")
            futures = [task_.submit(fn, tuple(args), pool) for args in shard_args]
        else:  # `run_flow` without an API: the same work on the same pool (or threads), no Prefect
            from concurrent.futures import ThreadPoolExecutor, as_completed

            if pool is not None:
                submit = _POOLS[pool].submit
            else:
                submit = stack.enter_context(ThreadPoolExecutor(1 if runner.kind == "sequential" else runner.workers)).submit
            futures = [submit(fn, *args) for args in shard_args]
        for _ in as_completed(futures):  # the bar and the stage's progress artifact, shard by shard
            p.advance(1)
        return [f.result() for f in futures]


def run_step(step: Step, src: str | Path, work: str, runner: RunnerSettings,
             size_columns: Sequence[str] = ()) -> list[ShardResult]:
    """The step pattern's executor half: plan `src` into shards by bytes, run `step` on every
    shard on the flow's task runner (largest first), return the results in input order.
    `size_columns` are the columns whose bytes plan the shards (all columns if empty)."""
    src = Path(src).resolve()  # absolute: workers on a cluster run in other folders
    shards = plan_shards(src, shards=runner.shards, shard_bytes=runner.shard_bytes, key=step.key or "repo_id",
                         size_columns=size_columns)
    results = run_shards(step.stage, run_shard, [(step, str(src), s, work, runner.batch_bytes)
                                                 for s in largest_first(shards)], runner)
    return sorted(results, key=lambda r: r.index)


def write_step_outputs(results: Sequence[ShardResult], out: Path, schema, audit_out: Path | None = None) -> int:
    """Concatenate the shards' parts (and audit parts) in input order, atomically."""
    rows = concat_parts([r.part for r in results], out, schema)
    if audit_out is not None:
        concat_parts([r.audit for r in results], audit_out, AUDIT)
    return rows


class Timer:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.marks: dict[str, float] = {}
        self._last = self.t0

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.marks[name] = round(now - self._last, 3)
        self._last = now

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self.t0, 3)


RUN_SECTIONS = ("timing", "throughput", "env")
"""Top-level report sections that describe the run, not the data: wall times, rates, machine."""
RUN_LEAVES = frozenset({"tokens_per_sec", "tokens_per_sec_per_device", "mfu", "seconds", "device"})
"""Keys, at any depth, whose values depend on the machine or the clock (a library's own
`seconds`, a trainer's tokens/s and MFU, the device `auto` resolved to)."""


def split_run_facts(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, run facts): what identical params must reproduce, and what no two runs share
    (RUN_SECTIONS at the top, RUN_LEAVES anywhere; same nesting in both halves)."""
    def split(d: dict, top: bool) -> tuple[dict, dict]:
        keep, run = {}, {}
        for k, v in d.items():
            if (top and k in RUN_SECTIONS) or k in RUN_LEAVES:
                run[k] = v
            elif isinstance(v, dict):
                kv, rv = split(v, False)
                keep[k] = kv
                if rv:
                    run[k] = rv
            else:
                keep[k] = v
        return keep, run
    return split(report, True)


def run_facts_path(report_path: str | Path) -> Path:
    """`reports/<stage>.json` → `reports/<stage>.timing.json`."""
    p = Path(report_path)
    return p.with_name(p.name.removesuffix(".json") + ".timing.json")


def write_report_files(path: str | Path, report: dict[str, Any], timer: Timer | None = None) -> dict:
    """Write a report as two files: `path` (the DVC metrics: counts, scores, settings, equal
    between runs of the same params) and `<path stem>.timing.json` beside it (timings,
    throughputs, environment; a DVC plot: `steps` is one bar per timer mark). Returns the
    whole report (both halves merged), as published to Prefect."""
    metrics, run = split_run_facts(report)
    if timer is not None:
        run["timing"] = {**run.get("timing", {}), **{f"{k}_s": v for k, v in timer.marks.items()},
                         "total_s": timer.total}
    run["env"] = {"python": platform.python_version(), "cpus": os.cpu_count(), **run.get("env", {})}
    timing = run.get("timing", {})
    steps = [{"step": k.removesuffix("_s"), "seconds": v} for k, v in timing.items()
             if k.endswith("_s") and isinstance(v, (int, float))]
    write_json(path, metrics)
    write_json(run_facts_path(path), {"steps": steps, **run})
    return _merge(metrics, run)


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def write_report(stage: str, report: dict[str, Any], timer: Timer, paths: Paths) -> dict:
    """Write `<paths.reports>/<stage>.json` (counts: the DVC metrics) and `<stage>.timing.json`
    beside it (timings, throughput, environment: a DVC plot, never a metric, so `dvc metrics
    diff` and `dvc exp show` between two runs of the same params show nothing), and publish
    both to Prefect as one table."""
    report = write_report_files(paths.report(stage), report, timer)
    publish_artifact(stage, report, paths.report(stage))
    return report


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[key] = v
    return out


def publish_artifact(stage: str, report: dict, source: str | Path | None = None) -> None:
    """Publish a report as a Prefect table artifact (shown on the flow run page in the UI);
    `source`: the report file it shows."""
    try:
        from prefect.artifacts import create_table_artifact
        from prefect.context import FlowRunContext

        if FlowRunContext.get() is None:
            return
        rows = [{"metric": k, "value": v} for k, v in sorted(_flatten(report).items())]
        create_table_artifact(key=f"{stage.replace('_', '-')}-report", table=rows,
                              description=str(source or f"the {stage} report"))
    except Exception as e:  # the report on disk is the source of truth; the UI copy is best effort
        print(f"[{stage}] could not publish the report artifact: {e}")
