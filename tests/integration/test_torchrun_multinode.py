"""Two torchrun "nodes" on 127.0.0.1 (`--nnodes 2 --nproc_per_node 1`, gloo), as a Slurm job
with two nodes launches them (deploy/slurm/train.sbatch): a collective across the nodes, then
the trainer itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dscoder.train import torchrun_command, torchrun_env, write_token_dir
from flows.server import free_port

pytestmark = pytest.mark.integration

ALL_REDUCE = """
import json, os, sys
import torch, torch.distributed as dist
dist.init_process_group("gloo")
rank = dist.get_rank()
t = torch.tensor([float(rank + 1), float(10 ** rank)])
dist.all_reduce(t)
json.dump({"rank": rank, "world": dist.get_world_size(), "group_rank": int(os.environ["GROUP_RANK"]),
           "sum": t.tolist()}, open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w"))
dist.destroy_process_group()
"""


def launch_two_nodes(cmd_for_node, timeout=240) -> list[subprocess.CompletedProcess]:
    """Start node 0 and node 1 at once (rendezvous needs both), wait for both."""
    procs = [subprocess.Popen(cmd_for_node(rank), env=torchrun_env(1, omp_num_threads=1), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=timeout)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout))
    return out


def test_all_reduce_across_two_nodes(tmp_path):
    script = tmp_path / "all_reduce.py"
    script.write_text(ALL_REDUCE)
    port = free_port()
    runs = launch_two_nodes(lambda node: [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1", f"--node_rank={node}",
        "--master_addr=127.0.0.1", f"--master_port={port}", str(script), str(tmp_path)])
    assert [r.returncode for r in runs] == [0, 0], runs[0].stdout[-2000:] + runs[1].stdout[-2000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["group_rank"], r["world"]) for r in ranks] == [(0, 0, 2), (1, 1, 2)]
    assert ranks[0]["sum"] == ranks[1]["sum"] == [3.0, 11.0]  # both ranks hold the same reduced values


def test_trainer_on_two_nodes(tmp_path):
    vocab, seq = 64, 32
    rng = np.random.default_rng(0)
    stream = lambda n: (np.arange(n) * rng.integers(1, 4) + rng.integers(0, vocab)) % vocab  # noqa: E731
    write_token_dir(tmp_path / "tokens", train=stream(seq * 64), val=stream(seq * 8), vocab_size=vocab, seq_len=seq)
    cfg = {"tokens_dir": str(tmp_path / "tokens"), "model_preset": "tiny",
           "model_overrides": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                               "num_attention_heads": 2, "num_key_value_heads": 2},
           "global_batch_size": 4, "micro_batch_size": 2, "lr": 1e-3, "warmup_steps": 1, "max_steps": 3,
           "eval_every": 3, "eval_sequences": 4, "checkpoint_every": 3, "keep_checkpoints": 1,
           "checkpoint_dir": str(tmp_path / "ckpt"), "metrics_dir": str(tmp_path / "metrics"),
           "summary_path": str(tmp_path / "summary.json")}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    endpoint = f"127.0.0.1:{free_port()}"
    runs = launch_two_nodes(lambda node: torchrun_command(tmp_path / "cfg.json", 1, nnodes=2, node_rank=node,
                                                          rdzv_endpoint=endpoint, rdzv_id="two-nodes"))
    assert [r.returncode for r in runs] == [0, 0], runs[0].stdout[-3000:] + runs[1].stdout[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["world_size"] == 2 and summary["steps"] == 3
    assert np.isfinite(summary["final_val_loss"])
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["step-000003"]


def test_slurm_template_launches_what_torchrun_command_builds():
    sbatch = Path(__file__).resolve().parents[2] / "deploy/slurm/train.sbatch"
    assert subprocess.run(["bash", "-n", str(sbatch)]).returncode == 0
    text = sbatch.read_text()
    cmd = torchrun_command("cfg.json", 8, nnodes=4, rdzv_endpoint="head:29500")
    for flag in ("-m torch.distributed.run", "--rdzv_backend=c10d", "-m dscoder.train --config"):
        assert flag in " ".join(cmd) and flag in text, flag
    assert "--rdzv_endpoint=\"${DSCODER_RDZV_ENDPOINT}\"" in text and "--ntasks-per-node=1" in text
