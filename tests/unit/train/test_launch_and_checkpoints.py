"""torchrun command lines, checkpoint discovery, dvclive history truncation, MFU."""

import pytest

from dscoder.train import torchrun_command, torchrun_env
from dscoder.train.checkpoint import complete_checkpoints, latest_checkpoint
from dscoder.train.metrics import mfu, truncate_history


def test_single_node_is_standalone():
    cmd = torchrun_command("cfg.json", 2, overrides=["max_steps=3"])
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert "--standalone" in cmd and "--nproc_per_node=2" in cmd
    assert cmd[-4:] == ["dscoder.train", "--config", "cfg.json", "max_steps=3"]


def test_multi_node_needs_a_rendezvous(monkeypatch):
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("DSCODER_RDZV_ENDPOINT", raising=False)
    with pytest.raises(ValueError, match="rdzv_endpoint"):
        torchrun_command("c.json", 8, 2)
    cmd = torchrun_command("c.json", 8, 2, rdzv_endpoint="node0:29400", node_rank=1)
    assert "--rdzv_endpoint=node0:29400" in cmd and "--nnodes=2" in cmd and "--standalone" not in cmd
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    assert "--rdzv_endpoint=10.0.0.1:29500" in torchrun_command("c.json", 8, 4)


def test_omp_threads_are_set_deliberately():
    assert torchrun_env(2, base={})["OMP_NUM_THREADS"] >= "1"
    assert torchrun_env(2, omp_num_threads=3, base={"OMP_NUM_THREADS": "9"})["OMP_NUM_THREADS"] == "3"


def test_only_complete_checkpoints_count(tmp_path):
    for name, complete in [("step-000002", True), ("step-000010", True), ("step-000012-tmp", True), ("step-000011", False)]:
        (tmp_path / name).mkdir()
        if complete:
            (tmp_path / name / "manifest.json").write_text("{}")
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step-000002", "step-000010"]
    assert latest_checkpoint(tmp_path).name == "step-000010"
    assert latest_checkpoint(tmp_path / "absent") is None


def test_truncate_history_drops_steps_after_the_checkpoint(tmp_path):
    plots = tmp_path / "plots" / "metrics" / "train"
    plots.mkdir(parents=True)
    (plots / "loss.tsv").write_text("step\tloss\n1\t5.0\n2\t4.0\n3\t3.5\n")
    truncate_history(tmp_path, 2)
    assert (plots / "loss.tsv").read_text() == "step\tloss\n1\t5.0\n2\t4.0\n"


def test_mfu():
    assert mfu(6e9, 1000.0, 12e12) == 0.5
    assert mfu(6e9, 1000.0, 0.0) == 0.0
