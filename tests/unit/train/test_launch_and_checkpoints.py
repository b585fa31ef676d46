"""torchrun command lines, checkpoint discovery, the metrics log's files, MFU and GPU peaks."""

import pytest

from dscoder.train import torchrun_command, torchrun_env
from dscoder.train.checkpoint import complete_checkpoints, latest_checkpoint
from dscoder.train.metrics import MetricsLog, gpu_peak, mfu


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


def test_omp_threads_are_set_deliberately(monkeypatch):
    import dscoder.train.launch as launch

    for cores, nproc, threads in [(16, 2, 8), (16, 3, 5), (1, 2, 1), (None, 4, 1)]:
        monkeypatch.setattr(launch.os, "cpu_count", lambda: cores)
        assert int(torchrun_env(nproc, base={})["OMP_NUM_THREADS"]) == threads  # the cores split over the ranks
    assert torchrun_env(2, omp_num_threads=3, base={"OMP_NUM_THREADS": "9"})["OMP_NUM_THREADS"] == "3"


def test_only_complete_checkpoints_count(tmp_path):
    for name, complete in [("step-000002", True), ("step-000010", True), ("step-000012-tmp", True), ("step-000011", False)]:
        (tmp_path / name).mkdir()
        if complete:
            (tmp_path / name / "manifest.json").write_text("{}")
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step-000002", "step-000010"]
    assert latest_checkpoint(tmp_path).name == "step-000010"
    assert latest_checkpoint(tmp_path / "absent") is None


def test_metrics_log_writes_dvclive_layout_only_when_asked(tmp_path):
    log = MetricsLog(str(tmp_path), enabled=True, rows=[{"step": 1, "train/loss": 5.0, "lr": 0.1}])
    log.log(2, {"train/loss": 4.25, "lr": 0.2})
    assert not (tmp_path / "plots").exists()  # nothing on disk until a checkpoint asks
    log.write()
    assert (tmp_path / "plots/metrics/train/loss.tsv").read_text() == "step\tloss\n1\t5.0\n2\t4.25\n"
    assert (tmp_path / "plots/metrics/lr.tsv").read_text() == "step\tlr\n1\t0.1\n2\t0.2\n"
    import json

    assert json.loads((tmp_path / "metrics.json").read_text()) == {"step": 2, "train": {"loss": 4.25}, "lr": 0.2}
    log.write()  # rewriting never appends: the same rows, once
    assert (tmp_path / "plots/metrics/train/loss.tsv").read_text().count("\n") == 3
    assert not list(tmp_path.rglob(".*tmp-*"))
    off = MetricsLog(str(tmp_path / "rank1"), enabled=False)
    off.log(1, {"x": 1.0})
    off.write()
    assert off.rows == [] and not (tmp_path / "rank1").exists()


@pytest.mark.parametrize("name, gib, label, peak", [
    ("NVIDIA H100 80GB HBM3", 79.6, "H100 SXM", 989e12),
    ("NVIDIA H100 PCIe", 79.6, "H100 PCIe", 756e12),
    ("NVIDIA H100 NVL", 93.6, "H100 NVL", 835e12),
    ("NVIDIA H200", 139.8, "H200", 989e12),
    ("NVIDIA H100", 139.8, "H200", 989e12),  # an ambiguous name: 141 GB is an H200
    ("NVIDIA A100-SXM4-80GB", 79.2, "A100", 312e12),
    ("NVIDIA GeForce RTX 4090", 23.6, "NVIDIA GeForce RTX 4090", 0.0),
])
def test_gpu_peak_tells_the_cards_apart(name, gib, label, peak):
    got_label, got_peak = gpu_peak(name, int(gib * 2**30))
    assert got_label.startswith(label) and got_peak == peak


def test_mfu():
    assert mfu(6e9, 1000.0, 12e12) == 0.5
    assert mfu(6e9, 1000.0, 0.0) == 0.0
