"""The resume key (what a checkpoint must have been made with), the checkpoint folder's lock,
and processes that die with their parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dscoder.train import TrainSettings, write_token_dir
from dscoder.train.lock import FolderInUse, FolderLock, is_locked
from dscoder.train.resume import NEUTRAL, changed_settings, content_hash, resume_key

SRC = str(Path(__file__).resolve().parents[3] / "src")


def cfg(tokens_dir, **kw) -> TrainSettings:
    return TrainSettings(**{"tokens_dir": str(tokens_dir), "global_batch_size": 8, "micro_batch_size": 2, **kw})


@pytest.mark.parametrize("change", [
    {"max_steps": 500}, {"seed": 1}, {"schedule": "cosine"}, {"global_batch_size": 16}, {"lr": 1e-4},
    {"warmup_steps": 5}, {"step_fractions": [0.5, 0.9]}, {"model_overrides": {"num_hidden_layers": 2}},
    {"seq_len": 8}, {"shuffle": False}, {"mixed_precision": "bf16"}, {"eval_every": 7},
])
def test_every_setting_that_changes_the_result_changes_the_key(tokens_dir, change):
    base, changed = resume_key(cfg(tokens_dir)), resume_key(cfg(tokens_dir, **change))
    assert base != changed
    assert list(change)[0] in changed_settings(base, changed)


def test_settings_that_cannot_change_the_result_are_left_out(tokens_dir, tmp_path):
    base = resume_key(cfg(tokens_dir))
    neutral = cfg(tokens_dir, log_every=5, stop_after_step=3, keep_checkpoints=9, checkpoint_every=7,
                  export_dir=str(tmp_path / "x"), summary_path=str(tmp_path / "s.json"), run_name="other")
    assert resume_key(neutral) == base
    assert {"log_every", "stop_after_step", "checkpoint_every"} <= NEUTRAL and "max_steps" not in NEUTRAL
    assert json.loads(json.dumps(base)) == base  # compares equal once read back from a manifest


def test_the_key_follows_the_token_content_not_the_path_nor_meta(tokens_dir, tmp_path):
    base = resume_key(cfg(tokens_dir))
    meta = json.loads((tokens_dir / "meta.json").read_text())
    copy = write_token_dir(tmp_path / "copy", train=np.arange(100 * 16 + 5), val=1700 + np.arange(160),
                           vocab_size=2000, seq_len=16)
    assert resume_key(cfg(copy)) == base  # same content elsewhere: resumable
    other = write_token_dir(tmp_path / "other", train=np.arange(100 * 16 + 5)[::-1].copy(), val=1700 + np.arange(160),
                            vocab_size=2000, seq_len=16)
    assert json.loads((other / "meta.json").read_text()) == meta  # meta.json alone cannot tell them apart
    assert resume_key(cfg(other))["tokens_dir"] != base["tokens_dir"]
    (other / "manifest.json").unlink()  # no manifest: the files themselves are hashed
    assert content_hash(other).startswith("files:") and content_hash(other) != content_hash(tokens_dir)


def test_the_key_covers_the_starting_model(tokens_dir, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights-1")
    first = resume_key(cfg(tokens_dir, init_from=str(model)))
    (model / "model.safetensors").write_bytes(b"weights-2")  # same config, other weights
    assert resume_key(cfg(tokens_dir, init_from=str(model)))["init_from"] != first["init_from"]


HOLD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from dscoder.train.lock import FolderLock
FolderLock(sys.argv[2], owner="holder").acquire()
print("held", flush=True)
time.sleep(120)
"""


def hold_lock(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, SRC, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_owner_is_refused_with_the_first_ones_pid(tmp_path):
    holder = hold_lock(tmp_path)
    try:
        assert is_locked(tmp_path / ".lock")
        with pytest.raises(FolderInUse, match=f"in use by pid {holder.pid} on .*holder"):
            FolderLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()


def test_a_dead_owners_lock_is_stale_and_taken_over(tmp_path):
    holder = hold_lock(tmp_path)
    holder.send_signal(signal.SIGKILL)  # no chance to clean up: the file stays
    holder.wait()
    assert (tmp_path / ".lock").exists() and not is_locked(tmp_path / ".lock")
    with FolderLock(tmp_path, owner="me") as lock:
        assert lock.stale["pid"] == holder.pid  # what the dead owner left, for the log
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
        with pytest.raises(FolderInUse):  # exclusive within one process too (another open file)
            FolderLock(tmp_path).acquire()
    assert not (tmp_path / ".lock").exists()  # released: removed


PARENT = """
import subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from dscoder.train.lock import die_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], preexec_fn=die_with_parent)
print(child.pid, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_dies_with_its_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, SRC], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    child = int(parent.stdout.readline())
    assert alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
