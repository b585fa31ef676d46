"""Without PREFECT_API_URL a stage runs its flow directly: no Prefect server at all, the same
output bytes as under Prefect. With DSCODER_PREFECT=temporary (Prefect's own behaviour) it
starts one temporary server, after its params are validated, and its pool workers never start
their own (they do not talk to Prefect)."""

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


def _outputs(repo) -> dict[str, str]:
    import hashlib

    return {str(f.relative_to(repo)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted((repo / "data").rglob("*.parquet"))}


def test_without_an_api_a_stage_starts_no_server_and_writes_what_prefect_would(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    repo = tmp_path / "proj"
    params["ingest"]["sources"] = make_corpus(repo / "corpus")
    params["runner"] = {"kind": "process", "workers": 2, "address": None, "shards": 2}
    make_dvc_repo(repo, params)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API") and k != "DSCODER_PREFECT"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_LOGGING_LEVEL="INFO")
    runs = {}
    for mode in ("temporary", "auto"):
        for stage in ("ingest", "filter"):
            log = tmp_path / f"{stage}.{mode}.log"
            rc, servers = run_counting_servers([sys.executable, "-m", f"stages.{stage}"], repo,
                                               {**env, "DSCODER_PREFECT": mode}, log)
            text = log.read_text()
            assert rc == 0, text[-3000:]
            if mode == "temporary":  # one server, shared: the stage's 2 pool workers start none
                assert len(servers) == 1, (servers, text[-3000:])
                assert text.count("Starting temporary server") == 1
                assert text.count(f"Task run '{stage}-shard") >= 2  # the shards ran as task runs of that server
            else:
                assert servers == set() and "Starting temporary server" not in text, text[-3000:]
                assert "Task run" not in text and "no Prefect API configured" in text
        runs[mode] = (_outputs(repo), json.loads((repo / "reports/filter.json").read_text()))
    assert runs["auto"] == runs["temporary"] and runs["auto"][1]["files_in"] > 0
    assert len(runs["auto"][0]) >= 4  # raw and filtered files, with their audits


def test_a_bad_dscoder_prefect_value_is_named(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    r = subprocess.run([sys.executable, "-m", "stages.filter"], cwd=tmp_path, capture_output=True, text=True,
                       env={**env, "DSCODER_PREFECT": "sometimes", "PREFECT_HOME": str(tmp_path / "ph")})
    assert r.returncode != 0 and "DSCODER_PREFECT" in r.stderr and "sometimes" in r.stderr, r.stderr[-2000:]


def test_bad_params_fail_before_any_server_starts(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    repo = tmp_path / "proj"
    params["ingest"]["sources"] = make_corpus(repo / "corpus")
    params["runner"]["workers"] = 0
    make_dvc_repo(repo, params)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), DSCODER_PREFECT="temporary")  # a server would start
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
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), DSCODER_PREFECT="temporary")  # a server would start
    log = tmp_path / f"{stage}.log"
    t0 = time.monotonic()
    rc, servers = run_counting_servers([sys.executable, "-m", f"stages.{stage}"], tmp_path, env, log)
    text = log.read_text()
    assert rc != 0 and "lernrate" in text, text[-2000:]
    assert servers == set() and "Starting temporary server" not in text, text[-2000:]
    assert time.monotonic() - t0 < 60  # no torch, no server: seconds (generous for a loaded machine)
