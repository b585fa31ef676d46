"""The trainer under real `torchrun --nproc_per_node 2` (gloo, CPU, FSDP2).

Tiny runs (~15-20 s each on 2 shared cores): an uninterrupted one; one that stops after step 6
(checkpoints every 4: the resume must redo steps 5-6) and its resumption; one rank with twice
the gradient accumulation (the same losses); a one-rank run resumed on two ranks (DCP
resharding); `init_from` read shard by shard into the two ranks.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dscoder.train import torchrun_command, torchrun_env, write_token_dir

pytestmark = pytest.mark.integration

VOCAB = 300
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4}


def token_stream(rng: np.random.Generator, n: int) -> np.ndarray:
    """Arithmetic runs (start, stride 1-3, length 8-40) mod VOCAB: learnable in a few steps."""
    out: list[int] = []
    while len(out) < n:
        start, stride, length = rng.integers(0, VOCAB), rng.integers(1, 4), rng.integers(8, 40)
        out.extend(((start + stride * np.arange(length)) % VOCAB).tolist())
    return np.array(out[:n])


def write_tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="t1", eos_token="t2", pad_token="t0", model_max_length=64
    )
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    write_token_dir(root / "tokens", train=token_stream(rng, 64 * 200), val=token_stream(rng, 64 * 16), vocab_size=VOCAB, seq_len=64)
    write_tokenizer(root / "tokenizer")
    cfg = {
        "tokens_dir": str(root / "tokens"),
        "tokenizer_dir": str(root / "tokenizer"),
        "model_preset": "tiny",
        "model_overrides": TINY,
        "global_batch_size": 8,
        "micro_batch_size": 2,
        "lr": 3e-3,
        "warmup_steps": 2,
        "max_steps": 12,
        "eval_every": 4,
        "eval_sequences": 8,
        "checkpoint_every": 4,
        "keep_checkpoints": 2,
    }
    (root / "cfg.json").write_text(json.dumps(cfg))
    return root


def run(root: Path, name: str, *overrides: str, nproc: int = 2) -> subprocess.CompletedProcess:
    """The trainer under torchrun with its outputs in root/name. The global batch of 8 is 2
    micro batches of 2 on each of 2 ranks, or 4 micro batches on one rank."""
    outs = [f"{k}={root / name / k}" for k in ("checkpoint_dir", "metrics_dir", "export_dir")]
    cmd = torchrun_command(root / "cfg.json", nproc, overrides=[*outs, f"summary_path={root / name / 'summary.json'}", *overrides])
    # One thread per rank: 2 ranks on 2 cores, and the same kernels in every run.
    return subprocess.run(cmd, env=torchrun_env(nproc, omp_num_threads=1), capture_output=True, text=True, timeout=300)


def losses(metrics_dir: Path) -> list[tuple[str, str]]:
    """(step, loss) rows of the curve, as written."""
    rows = list(csv.reader((metrics_dir / "plots" / "metrics" / "train" / "loss.tsv").open(), delimiter="\t"))
    return [tuple(r) for r in rows[1:]]


@pytest.fixture(scope="module")
def full_run(setup):
    proc = run(setup, "full")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return setup / "full"


def test_loss_falls(full_run):
    curve = [float(v) for _, v in losses(full_run / "metrics_dir")]
    assert len(curve) == 12
    assert curve[0] > 5.5  # ≈ ln(300) at init
    assert curve[-1] < curve[0] - 0.5
    summary = json.loads((full_run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["world_size"] == 2 and summary["steps"] == 12
    assert summary["tokens"] == 12 * 8 * 64
    assert summary["final_val_loss"] < 5.3
    ckpts = sorted(p.name for p in (full_run / "checkpoint_dir").iterdir())
    assert ckpts == ["step-000008", "step-000012"]  # keep_checkpoints=2, no -tmp left behind


def test_killed_and_resumed_run_is_bitwise_identical(setup, full_run):
    stopped = run(setup, "resumed", "stop_after_step=6")
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert json.loads((setup / "resumed" / "summary.json").read_text())["status"] == "stopped"
    assert not (setup / "resumed" / "export_dir").exists()
    assert sorted(p.name for p in (setup / "resumed" / "checkpoint_dir").iterdir()) == ["step-000004"]

    resumed = run(setup, "resumed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout and "step-000004" in resumed.stdout
    assert losses(setup / "resumed" / "metrics_dir") == losses(full_run / "metrics_dir")
    a = load_file(full_run / "export_dir" / "model.safetensors")
    b = load_file(setup / "resumed" / "export_dir" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_of_other_settings_is_refused_not_resumed(setup, full_run):
    """Run directly (no stage to start over), the trainer will not resume a checkpoint made with
    another step budget: each rank names the change and exits 3 (torchrun then exits 1),
    touching nothing."""
    before = sorted(p.name for p in (full_run / "checkpoint_dir").iterdir())
    proc = run(setup, "full", "max_steps=14")
    assert proc.returncode != 0 and "exitcode  : 3" in proc.stderr
    assert "step-000012 was made with other settings or inputs (max_steps: 12 -> 14)" in proc.stderr
    assert sorted(p.name for p in (full_run / "checkpoint_dir").iterdir()) == before


def test_export_reloads_and_generates(full_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(full_run / "export_dir")
    tok = AutoTokenizer.from_pretrained(full_run / "export_dir")
    assert model.config.eos_token_id == tok.eos_token_id == 2
    assert tok.convert_ids_to_tokens([10, 11]) == ["t10", "t11"]
    ids = torch.tensor([[10, 12, 14, 16]])  # an arithmetic run, like the training data
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False)
    assert out.shape == (1, 8) and torch.equal(out[:, :4], ids)
    assert ((out[0, 4:] >= 0) & (out[0, 4:] < VOCAB)).all()
    manifest = json.loads((full_run / "export_dir" / "manifest.json").read_text())
    assert manifest["steps"] == 12
    assert json.loads((full_run / "export_dir" / "train_config.json").read_text())["max_steps"] == 12


def test_batch_not_divisible_fails_fast_under_torchrun(setup):
    proc = run(setup, "bad", "global_batch_size=6", "micro_batch_size=2")  # 6 % (2 x 2 ranks)
    assert proc.returncode != 0
    assert "train.global_batch_size: 6 is not divisible by micro_batch_size 2 x world size 2" in proc.stderr
    assert not (setup / "bad").exists()


def test_missing_tokens_fail_fast(setup, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dscoder.train", "--config", str(setup / "cfg.json"), f"tokens_dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert f"train.tokens_dir: {str(tmp_path)!r} has no meta.json" in proc.stderr


def test_long_context_continues_from_the_export(setup, full_run, tmp_path):
    """Sec. 3.6 on the exported model: RoPE x4 / base 1e5, twice the packed window, the
    base run's final LR; one plain process (the torchrun path is covered above)."""
    from transformers import AutoConfig

    from dscoder.train import long_context_overrides

    lc = long_context_overrides(full_run / "export_dir", seq_len=128)
    over = {**lc, "max_steps": 2, "global_batch_size": 4, "micro_batch_size": 2, "checkpoint_every": 0,
            "export_dir": str(tmp_path / "base-16k"), "summary_path": str(tmp_path / "s.json")}
    proc = subprocess.run(
        [sys.executable, "-m", "dscoder.train", "--config", str(setup / "cfg.json"), *(f"{k}={json.dumps(v)}" for k, v in over.items())],
        capture_output=True, text=True, timeout=300, env=torchrun_env(1, omp_num_threads=1),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["seq_len"] == 128 and summary["final_lr"] == pytest.approx(3e-4)  # 0.1 x 3e-3
    assert summary["final_train_loss"] < 5.0  # starts from the trained model, not from scratch
    config = AutoConfig.from_pretrained(tmp_path / "base-16k")
    assert config.rope_parameters == {"rope_type": "linear", "factor": 4.0, "rope_theta": 100000.0}
    assert config.max_position_embeddings == 4 * 4096


def curve(name_dir: Path) -> dict[int, float]:
    return {int(step): float(v) for step, v in losses(name_dir / "metrics_dir")}


@pytest.fixture(scope="module")
def one_rank(setup):
    proc = run(setup, "one", nproc=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return setup / "one"


def test_one_rank_with_twice_the_accumulation_gives_the_same_losses(full_run, one_rank):
    """The loss is normalised by the targets of the whole global batch, and the gradient
    all-reduce is a sum: how the batch is split over ranks and micro batches changes only the
    order of float additions."""
    two, one = curve(full_run), curve(one_rank)
    assert sorted(one) == sorted(two) == list(range(1, 13))
    assert json.loads((one_rank / "summary.json").read_text())["world_size"] == 1
    for step in two:
        assert one[step] == pytest.approx(two[step], rel=1e-5, abs=1e-5), step
    assert one[12] < one[1] - 0.5  # and it trained: the comparison is not between two flat lines


def test_resuming_at_another_world_size_reshards(setup, full_run, one_rank):
    """A one-rank run killed after step 6 (checkpoint at 4) resumed by two ranks: DCP reshards
    model and optimizer; the data position is global, so the two ranks read on from step 5."""
    stopped = run(setup, "reshard", "stop_after_step=6", nproc=1)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    resumed = run(setup, "reshard", nproc=2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "step 4 (world size 1 -> 2)" in resumed.stdout
    got, one, two = curve(setup / "reshard"), curve(one_rank), curve(full_run)
    assert sorted(got) == list(range(1, 13))  # no step lost or repeated
    assert all(got[s] == one[s] for s in range(1, 5))  # the one-rank part, restored from the checkpoint
    for step in range(5, 13):
        assert got[step] == pytest.approx(two[step], rel=1e-5, abs=1e-5), step


LOAD_SHARDED = """
import json, sys
import torch, torch.distributed as dist
from safetensors.torch import load_file
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from dscoder.train import load_config
from dscoder.train.distributed import init_distributed
from dscoder.train import loop, materialize

cfg = load_config(sys.argv[1], [f"init_from={sys.argv[2]}"])
env = init_distributed("cpu")
read = []
original = materialize.load_hf_weights
loop.load_hf_weights = lambda model, path: read.append(original(model, path))
config = loop.model_config(cfg, 300)
model = loop.build_sharded_model(cfg, config, env)
local = sum(p.to_local().numel() for p in model.parameters())
full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
source = load_file(f"{sys.argv[2]}/model.safetensors")
# the gathered state lands on rank 0 only (cpu_offload)
same = sorted(full) == sorted(source) and all(torch.equal(full[k], source[k]) for k in source) if env.rank == 0 else None
json.dump({"read": read[0], "local": local, "total": sum(v.numel() for v in source.values()), "same": same},
          open(f"{sys.argv[3]}/rank{env.rank}.json", "w"))
dist.destroy_process_group()
"""


def test_init_from_is_read_shard_by_shard(setup, full_run, tmp_path):
    """Two ranks load the exported model: each reads only its rows of every tensor (together
    exactly the checkpoint), and the gathered weights equal the source's."""
    script = tmp_path / "load.py"
    script.write_text(LOAD_SHARDED)
    cmd = torchrun_command(setup / "cfg.json", 2)[:-4] + [str(script), str(setup / "cfg.json"),
                                                          str(full_run / "export_dir"), str(tmp_path)]
    proc = subprocess.run(cmd, env=torchrun_env(2, omp_num_threads=1), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    total = ranks[0]["total"]
    assert ranks[0]["same"] is True
    assert [r["read"] for r in ranks] == [r["local"] for r in ranks]  # each read what it holds
    assert sum(r["read"] for r in ranks) == total and max(r["read"] for r in ranks) < 0.55 * total
