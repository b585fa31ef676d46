"""Without PREFECT_API_URL a stage starts one temporary Prefect server, after its params are
validated, and its pool workers never start their own (they do not talk to Prefect)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from tests.corpus import make_corpus
from tests.integration.dvc_repo import ROOT, make_dvc_repo

pytestmark = pytest.mark.integration
SERVER_APP = "prefect.server.api.server:create_app"


def run_counting_servers(cmd: list[str], cwd, env: dict, log) -> tuple[int, set[int]]:
    """Run `cmd`; the pids of temporary Prefect servers seen among its descendants."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        servers: set[int] = set()
        while proc.poll() is None:
            try:
                for p in psutil.Process(proc.pid).children(recursive=True):
                    try:
                        if SERVER_APP in " ".join(p.cmdline()):
                            servers.add(p.pid)
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            time.sleep(0.1)
    return proc.returncode, servers


def test_a_stage_and_its_workers_share_one_temporary_server(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    repo = tmp_path / "proj"
    params["ingest"]["sources"] = make_corpus(repo / "corpus")
    params["runner"] = {"kind": "process", "workers": 2, "address": None, "shards": 2}
    make_dvc_repo(repo, params)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_LOGGING_LEVEL="INFO")
    for stage in ("ingest", "filter"):
        log = tmp_path / f"{stage}.log"
        rc, servers = run_counting_servers([sys.executable, "-m", f"stages.{stage}"], repo, env, log)
        text = log.read_text()
        assert rc == 0, text[-3000:]
        assert len(servers) == 1, (servers, text[-3000:])  # 3 once: the stage and each of its 2 workers
        assert text.count("Starting temporary server") == 1
        assert text.count(f"Task run '{stage}-shard") >= 2  # the shards ran as task runs of that server
    assert json.loads((repo / "reports/filter.json").read_text())["files_in"] > 0


def test_bad_params_fail_before_any_server_starts(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    repo = tmp_path / "proj"
    params["ingest"]["sources"] = make_corpus(repo / "corpus")
    params["runner"]["workers"] = 0
    make_dvc_repo(repo, params)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"))
    log = tmp_path / "ingest.log"
    rc, servers = run_counting_servers([sys.executable, "-m", "stages.ingest"], repo, env, log)
    text = log.read_text()
    assert rc != 0 and "runner.workers" in text, text[-2000:]
    assert servers == set() and "Starting temporary server" not in text


@pytest.mark.parametrize("stage", ["pretrain", "long_context", "instruct", "continue_pretrain", "general_lm"])
def test_a_training_stage_rejects_an_unknown_setting_before_any_server_starts(tmp_path, stage):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params[stage] = {**(params.get(stage) or {}), "lernrate": 0.1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"))
    log = tmp_path / f"{stage}.log"
    t0 = time.monotonic()
    rc, servers = run_counting_servers([sys.executable, "-m", f"stages.{stage}"], tmp_path, env, log)
    text = log.read_text()
    assert rc != 0 and "lernrate" in text, text[-2000:]
    assert servers == set() and "Starting temporary server" not in text, text[-2000:]
    assert time.monotonic() - t0 < 60  # no torch, no server: seconds (generous for a loaded machine)
