"""What users see while a stage runs: progress artifacts on real stage flow runs (read back
through the Prefect API), the training loss artifact, and tqdm bars that appear on a terminal
only (a pseudo-terminal here) and never in logs, CI or with DSCODER_PROGRESS=0."""

from __future__ import annotations

import io
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stages.common.progress import Progress, artifact_key
from tests.integration.test_training_stages import KILL_TINY, _clean_repos, _tokens_and_tokenizer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _artifacts(flow_run_id, key=None):
    """The artifacts of a flow run (newest data of each), {key: artifact}, through the API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: a for a in found if key is None or a.key == key}


def _count_updates(monkeypatch) -> list[float]:
    """The progress values of every artifact update sent from now on (each still sent)."""
    import prefect.artifacts

    updates: list[float] = []
    real = prefect.artifacts.update_progress_artifact
    monkeypatch.setattr(prefect.artifacts, "update_progress_artifact",
                        lambda *a, **k: (updates.append(a[1]), real(*a, **k))[1])
    return updates


# ---- progress artifacts on real stage flows ----

def test_data_stage_publishes_shard_progress(tmp_path, prefect_harness, monkeypatch):
    from dscoder.data.ingest import IngestSettings
    from stages.common import RunnerSettings, task_runner
    from stages.ingest import ingest
    from tests.corpus import make_corpus

    specs = make_corpus(tmp_path / "corpus")
    monkeypatch.chdir(tmp_path)
    runner = RunnerSettings(kind="process", workers=2, shards=3)
    state = ingest.with_options(task_runner=task_runner(runner))(
        IngestSettings(sources=specs, cache_dir=str(tmp_path / "cache")), runner, out=tmp_path / "data/raw/files.parquet",
        audit_out=tmp_path / "data/raw/audit.parquet", return_state=True)
    assert state.is_completed()
    art = _artifacts(state.state_details.flow_run_id)["ingest-progress"]
    assert art.type == "progress" and art.data == 100.0
    done, total = art.description.rsplit(": ", 1)[1].split(" ")[0].split("/")
    assert done == total and int(total) >= 3  # every shard counted as it finished



def test_tokenizer_stage_publishes_progress_at_100(tmp_path, prefect_harness, monkeypatch):
    from dscoder.tokens.tokenizer import TokenizerSettings
    from stages.tokenizer import tokenizer

    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data/clean/repos.parquet"
    _clean_repos(path)
    # every repository as two documents (parts 0 and 1), as repo_docs makes of a large one
    rows = pq.read_table(path).to_pylist()
    pq.write_table(pa.Table.from_pylist([{**r, "part": k} for r in rows for k in (0, 1)], schema=pq.read_schema(path)),
                   path)
    updates = _count_updates(monkeypatch)
    t0 = time.monotonic()
    state = tokenizer(TokenizerSettings(vocab_size=400, sample_bytes=10**6), 0.2, 0, return_state=True)
    elapsed = time.monotonic() - t0
    assert state.is_completed()
    report = state.result()
    arts = _artifacts(state.state_details.flow_run_id)
    train, measure = arts["tokenizer-progress"], arts["tokenizer-measure-progress"]
    assert train.type == measure.type == "progress"
    assert train.data == measure.data == 100.0
    n_heldout = 2 * report["heldout_repos"]
    assert measure.description == f"tokenizer: bytes/token on held-out documents: {n_heldout}/{n_heldout} doc"
    # two passes over every training document
    done, total = train.description.rsplit(": ", 1)[1].split(" ")[0].split("/")
    assert done == total and int(total) == 2 * (len(rows) * 2 - n_heldout)
    # each bar: at most one update a second, plus its 100% when reached and again at its close
    # (the total used to count repositories, so the second pass ran past it and sent one
    # update per document: 2 per repository here)
    assert 2 <= len(updates) <= 4 + elapsed
    assert "tokenizer-report" in arts  # beside the stage's report table


def test_progress_updates_while_running_and_is_throttled(tmp_path, prefect_harness, monkeypatch):
    from prefect import flow

    updates = _count_updates(monkeypatch)

    seen: list[float] = []

    @flow(name="progress-probe")
    def probe() -> str:
        with Progress("my_stage", 4, "shard", desc="probe: shards", min_interval=0.0) as p:
            for i in range(4):
                p.advance(1, bytes=1000 * (i + 1))
                seen.append(_artifacts(_flow_run_id(), "my-stage-progress")["my-stage-progress"].data)
        with Progress("other", 1000, "doc", min_interval=3600) as q:  # throttled: only the final 100% goes out
            for _ in range(999):
                q.advance()
            seen.append(_artifacts(_flow_run_id(), "other-progress")["other-progress"].data)
        with Progress("past", 10, "doc", min_interval=3600) as r:  # a total that was an estimate
            for _ in range(30):
                r.advance()
            seen.append(_artifacts(_flow_run_id(), "past-progress")["past-progress"].data)
        return str(p.artifact_id)

    state = probe(return_state=True)
    assert state.is_completed()
    assert seen == [25.0, 50.0, 75.0, 100.0, 0.0, 100.0]
    assert len(updates) == 4 + 1 + 1 + 2  # per step at interval 0, the close, the crossing of 10, the close
    arts = _artifacts(state.state_details.flow_run_id)
    assert arts["my-stage-progress"].description == "probe: shards: 4/4 shard (bytes=4000)"
    assert arts["other-progress"].data == 99.9  # closed short of its total: says so, not 100


def _flow_run_id():
    from prefect.context import FlowRunContext

    return FlowRunContext.get().flow_run.id


def test_progress_outside_a_run_and_when_the_api_fails(capsys, prefect_harness):
    with Progress("lonely", 2, stream=io.StringIO()) as p:  # no flow run: no artifact, no error
        p.advance(2)
    assert p.artifact_id is None and p.percent == 100.0

    from uuid import uuid4

    from prefect import flow

    @flow(name="progress-broken-api")
    def broken() -> tuple[bool, float]:
        with Progress("broken", 3, min_interval=0.0) as p:
            created = p.artifact_id is not None
            p.artifact_id = uuid4()  # the API now answers 404 to every update (say, the artifact was deleted)
            for _ in range(3):
                p.advance()
        return created, p.percent

    assert broken() == (True, 100.0)  # the stage finished although its artifact could not be updated
    assert capsys.readouterr().out.count("progress artifact broken-progress: not published") == 1


def test_artifact_keys():
    assert artifact_key("long_context") == "long-context-progress"
    assert artifact_key("eval-DeepSeek_1.3B", "loss") == "eval-deepseek-1-3b-loss"


# ---- bars: on a terminal only ----

def _terminal() -> tuple[int, int]:
    """A pseudo-terminal (master, slave) of 24 x 120 characters, as a real one would say."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    return master, slave


def _read_all(master: int, timeout: float) -> str:
    """Everything written to the terminal until its last writer closes it."""
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return out.decode("utf-8", "replace")


def _bar_text(env: dict[str, str], use_pty: bool) -> str:
    """What a Progress writes to stderr in a child process whose stderr is a pty or a pipe."""
    code = ("from stages.common.progress import Progress\n"
            "with Progress('demo', 3, 'file', desc='demo files') as p:\n"
            "    for _ in range(3): p.advance(1, kept=7)\n")
    full_env = {k: v for k, v in os.environ.items() if k not in ("CI", "DSCODER_PROGRESS")} | env
    if not use_pty:
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr
    master, slave = _terminal()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=full_env, stderr=slave,
                            stdout=subprocess.DEVNULL)
    os.close(slave)
    text = _read_all(master, 120)
    assert proc.wait(timeout=120) == 0
    return text


def test_bar_on_a_terminal():
    text = _bar_text({}, use_pty=True)
    assert "demo files: 100%" in text and "3/3" in text and "kept=7" in text


@pytest.mark.parametrize("env,use_pty", [({}, False), ({"CI": "true"}, True), ({"DSCODER_PROGRESS": "0"}, True)],
                         ids=["pipe", "ci", "disabled"])
def test_no_bar_without_a_terminal_in_ci_or_when_disabled(env, use_pty):
    text = _bar_text(env, use_pty)
    assert "demo files" not in text and "%|" not in text and "\r" not in text


def test_bars_enabled_rules(monkeypatch):
    from dscoder.progress import bars_enabled

    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            monkeypatch.delenv("CI", raising=False)
            monkeypatch.delenv("DSCODER_PROGRESS", raising=False)
            assert bars_enabled(tty) and not bars_enabled(io.StringIO())
            monkeypatch.setenv("CI", "false")  # CI=false is no CI
            assert bars_enabled(tty)
            monkeypatch.setenv("CI", "1")
            assert not bars_enabled(tty)
            monkeypatch.delenv("CI")
            monkeypatch.setenv("DSCODER_PROGRESS", "off")
            assert not bars_enabled(tty)
    finally:
        os.close(master)
        os.close(slave)


# ---- training: the loss curve and steps in the UI ----

def test_training_watch_publishes_each_checkpoint(tmp_path, prefect_harness):
    """The stage's watch over the curve files the trainer's MetricsLog rewrites: one markdown
    artifact, updated (not duplicated) at each checkpoint, and the step progress."""
    from prefect import flow

    from dscoder.train.metrics import MetricsLog
    from stages.common.training import TrainingWatch

    metrics_dir = tmp_path / "reports/pretrain"
    log = MetricsLog(str(metrics_dir), enabled=True)
    seen = []

    @flow(name="watch-probe")
    def probe() -> None:
        with TrainingWatch("pre_train", str(metrics_dir), max_steps=4) as watch:
            assert not watch.poll()  # no checkpoint yet: nothing to show
            for step in (1, 2):
                log.log(step, {"train/loss": 5.0 - step, "lr": 1e-3, "tokens_per_sec": 1234.0})
            log.write()  # checkpoint at step 2
            assert watch.poll() and not watch.poll()  # published once per rewrite
            seen.append((watch.loss_id, _artifacts(_flow_run_id(), "pre-train-loss")["pre-train-loss"].data))
            for step in (3, 4):
                log.log(step, {"train/loss": 5.0 - step, "lr": 1e-3, "tokens_per_sec": 1234.0,
                               **({"val/loss": 1.5} if step == 4 else {})})
            log.write()
            assert watch.poll()
            seen.append((watch.loss_id, None))

    state = probe(return_state=True)
    assert state.is_completed()
    arts = _artifacts(state.state_details.flow_run_id)
    (first_id, at_2), (second_id, _) = seen
    assert first_id == second_id == arts["pre-train-loss"].id  # updated in place
    assert "loss at step 2 of 4" in at_2 and "| 2 | 3.0000 |" in at_2 and "| 3 |" not in at_2
    final = arts["pre-train-loss"].data
    assert arts["pre-train-loss"].type == "markdown"
    assert "loss at step 4 of 4" in final and "validation loss 1.5000 (step 4)" in final
    assert "| step | train loss | val loss | lr | tokens/s |" in final
    assert "| 4 | 1.0000 | 1.5000 | 0.001 | 1,234 |" in final
    assert arts["pre-train-progress"].data == 100.0
    assert arts["pre-train-progress"].description == "pre_train: training steps: 4/4 step (loss=1)"


def test_pretrain_stage_shows_loss_and_progress(tmp_path, prefect_harness, monkeypatch):
    """A real pretrain flow (torchrun, tiny model): its flow run holds the loss curve, the
    steps at 100% and the report."""
    from stages.pretrain import pretrain

    monkeypatch.chdir(tmp_path)
    _tokens_and_tokenizer(tmp_path)
    state = pretrain({**KILL_TINY, "max_steps": 4, "checkpoint_every": 2, "eval_every": 2, "eval_sequences": 2},
                     return_state=True)
    assert state.is_completed()
    arts = _artifacts(state.state_details.flow_run_id)
    assert arts["pretrain-progress"].data == 100.0
    loss = arts["pretrain-loss"].data
    assert "loss at step 4 of 4" in loss and "validation loss" in loss
    rows = [line for line in loss.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [int(r.split("|")[1]) for r in rows] == [1, 2, 3, 4]
    assert "pretrain-report" in arts


def test_trainer_bar_on_a_terminal(tmp_path):
    """The trainer (rank 0 under torchrun) draws its step bar with loss and tokens/s when its
    stderr is a terminal, and its log lines still reach stdout whole."""
    import json

    _tokens_and_tokenizer(tmp_path)
    (tmp_path / "section.json").write_text(json.dumps({**KILL_TINY, "max_steps": 3}))
    code = ("import json; from stages.common import load_paths; from stages.pretrain import pretrain_paths; "
            "from stages.common.training import run_training; "
            "run_training('pretrain', json.load(open('section.json')), pretrain_paths(load_paths()))")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "DSCODER_PROGRESS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    master, slave = _terminal()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env, stderr=slave, stdout=subprocess.PIPE)
    os.close(slave)
    text = _read_all(master, 300)
    out = proc.stdout.read().decode()
    assert proc.wait(timeout=300) == 0, text[-3000:]
    assert "pretrain: 100%" in text and "3/3" in text and "loss=" in text and "tok/s=" in text
    assert "[train] step 3/3" in out
