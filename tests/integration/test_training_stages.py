"""The training stages as Prefect flows, end to end on a tiny corpus: tokenizer → pack →
pretrain → long_context → instruct_data → instruct, and general_lm → continue_pretrain (v1.5
from a model whose tokenizer is not dscoder's). Each exported model loads with
AutoModelForCausalLM and generates."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from dscoder.data.languages import detect_language
from dscoder.data.repo_docs.document import build_repo_doc
from dscoder.tokens.pack import PackSettings
from dscoder.schemas import REPOS
from dscoder.tokens.tokenizer import TokenizerSettings
from stages.common import RunnerSettings
from tests.corpus import FILES

pytestmark = pytest.mark.integration

TINY = {"model_preset": "tiny", "model_overrides": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                                   "num_attention_heads": 2, "num_key_value_heads": 2},
        "global_batch_size": 2, "micro_batch_size": 1, "lr": 1e-3, "warmup_steps": 1, "max_steps": 3,
        "eval_every": 3, "eval_sequences": 2, "checkpoint_every": 2, "seed": 7}

EXTRA = {  # documented functions, so instruct_data mines something
    f"lib{i}/mod.py": "".join(
        f"def f{i}_{j}(a, b):\n    \"\"\"Combine a and b into one value for case {j} of {i}.\"\"\"\n"
        f"    c = a + b * {j}\n    d = c - {i}\n    return d\n\n" for j in range(6))
    for i in range(12)
}


def _clean_repos(path):
    by_repo: dict[str, list[dict]] = {}
    for rel, text in {**FILES, **EXTRA}.items():
        if text is None:
            continue
        repo, inner = rel.split("/", 1)
        by_repo.setdefault(repo, []).append({"path": inner, "language": detect_language(inner, text), "content": text})
    rows = [build_repo_doc(files).as_row(repo_id=f"id-{name}", repo_name=name, source=f"test:{name}")
            for name, files in sorted(by_repo.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=REPOS), path)


def _generates(model_dir, chat=False):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if chat:
        assert tok.chat_template
        ids = tok.apply_chat_template([{"role": "user", "content": "Add two numbers."}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)["input_ids"]
    else:
        ids = tok("def add(a, b):", return_tensors="pt")["input_ids"]
    out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids.shape[1]
    return tok


def test_training_stages_end_to_end(tmp_path, prefect_harness, monkeypatch):
    from stages.continue_pretrain import continue_pretrain
    from stages.general_lm import general_lm
    from stages.instruct import instruct
    from stages.instruct_data import instruct_data
    from stages.long_context import long_context
    from stages.pack import pack
    from stages.pretrain import pretrain
    from stages.tokenizer import tokenizer
    from dscoder.instruct import InstructDataSettings

    monkeypatch.chdir(tmp_path)
    launch = {"launch": {"nproc_per_node": 1, "nnodes": 1}}
    _clean_repos(tmp_path / "data/clean/repos.parquet")
    tokenizer(TokenizerSettings(vocab_size=400, sample_bytes=10**6), 0.2, 0)
    pack(PackSettings(seq_len=32, val_fraction=0.2), RunnerSettings(workers=1))
    pretrain({**TINY, **launch})
    base = json.loads((tmp_path / "reports/pretrain.json").read_text())
    assert base["steps"] == 3 and base["final_train_loss"] > 0
    assert (tmp_path / "reports/pretrain/plots/metrics/train/loss.tsv").is_file()  # dvc plots data
    _generates("artifacts/models/base")

    long_context({**{k: v for k, v in TINY.items() if k not in ("model_preset", "model_overrides")}, **launch,
                  "seq_len": 64, "max_steps": 2})
    cfg = json.loads((tmp_path / "artifacts/models/base-16k/config.json").read_text())
    assert cfg["rope_parameters"]["rope_type"] == "linear" and cfg["rope_parameters"]["factor"] == 4.0
    assert cfg["rope_parameters"]["rope_theta"] == 100000.0

    instruct_data(InstructDataSettings(val_fraction=0.2), {})
    n_train = sum(1 for _ in open(tmp_path / "data/instruct/train.jsonl"))
    assert n_train > 0
    instruct({**{k: v for k, v in TINY.items() if k not in ("model_preset", "model_overrides")}, **launch,
              "pack": {"seq_len": 1024}, "schedule": "cosine", "max_steps": 2})
    tok = _generates("artifacts/models/instruct", chat=True)
    assert tok.eos_token == "<|EOT|>"

    general_lm({**TINY, **launch, "vocab_size": 400, "seq_len": 32})
    continue_pretrain({**{k: v for k, v in TINY.items() if k not in ("model_preset", "model_overrides")}, **launch,
                       "init_from": "artifacts/models/general",
                       "mixture": {"train_tokens": 4000, "val_tokens": 400, "seq_len": 32}})
    v15 = _generates("artifacts/models/v1.5")
    general = AutoTokenizer.from_pretrained("artifacts/models/general")
    dscoder = AutoTokenizer.from_pretrained("artifacts/tokenizer")
    assert v15.get_vocab() == general.get_vocab() != dscoder.get_vocab()  # trained with the general model's tokenizer

    # every export carries its model card; each continues the recipe of the model it started from
    from huggingface_hub import ModelCard

    recipes = {"base": ["pretrain"], "base-16k": ["pretrain", "long_context"],
               "instruct": ["pretrain", "long_context", "instruct"], "general": ["general_lm"],
               "v1.5": ["general_lm", "continue_pretrain"]}
    for name, stages in recipes.items():
        folder = tmp_path / "artifacts/models" / name
        card = ModelCard.load(folder / "README.md")
        assert card.data.to_dict()["dscoder"]["recipe"] == stages, name
        assert card.data.model_name == name and card.data.license == "other"
        assert "README.md" in json.loads((folder / "manifest.json").read_text())["files"]
        assert str(tmp_path) not in card.text
    base_card = ModelCard.load(tmp_path / "artifacts/models/base/README.md").text
    assert "| python |" in base_card and "`test:alpha`" in base_card  # tokens per language; the sources


# ---- resume or start over, one run per folder, no trainer outliving its stage ----

KILL_STEPS = 3000
KILL_TINY = {"model_preset": "tiny", "model_overrides": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                                        "num_attention_heads": 2, "num_key_value_heads": 2},
             "global_batch_size": 2, "micro_batch_size": 2, "lr": 1e-3, "warmup_steps": 1, "eval_every": 0,
             "eval_sequences": 0, "seed": 7, "launch": {"nproc_per_node": 1, "nnodes": 1}}


def _tokens_and_tokenizer(root):
    import numpy as np

    from dscoder.train import write_token_dir
    from tests.integration.test_train_torchrun import VOCAB, token_stream, write_tokenizer

    rng = np.random.default_rng(0)
    write_token_dir(root / "data/tokens", train=token_stream(rng, 32 * 64), val=token_stream(rng, 32 * 4),
                    vocab_size=VOCAB, seq_len=32)
    write_tokenizer(root / "artifacts/tokenizer")


def _curve_steps(root, stage="pretrain"):
    tsv = root / "reports" / stage / "plots/metrics/train/loss.tsv"
    return [int(line.split("\t")[0]) for line in tsv.read_text().splitlines()[1:]]


def test_changing_max_steps_after_a_kill_starts_over(tmp_path, monkeypatch, capfd):
    """The resume key holds max_steps (the schedule is laid out over it): a run killed at step 3
    (checkpoint at 2) is resumed only by the same settings; with another max_steps it starts over."""
    from stages.common.training import run_training

    monkeypatch.chdir(tmp_path)
    _tokens_and_tokenizer(tmp_path)
    from stages.common import load_paths
    from stages.pretrain import pretrain_paths

    dirs = pretrain_paths(load_paths())  # the project's paths, relative to this folder

    with pytest.raises(RuntimeError, match="stopped before max_steps"):
        run_training("pretrain", {**KILL_TINY, "max_steps": 6, "checkpoint_every": 2, "stop_after_step": 3}, dirs)
    assert (tmp_path / "checkpoints/pretrain/step-000002/manifest.json").is_file()
    assert _curve_steps(tmp_path) == [1, 2]  # the curve ends at the checkpoint, like a kill's

    summary = run_training("pretrain", {**KILL_TINY, "max_steps": 8, "checkpoint_every": 2}, dirs)
    out = capfd.readouterr().out
    assert "step-000002 was made with other settings or inputs (max_steps: 6 -> 8): starting over" in out
    assert summary["resumed_from"] is None and summary["steps"] == 8
    assert _curve_steps(tmp_path) == list(range(1, 9))

    # the same settings after a kill: resumed, and the curve continues without repeating a step
    with pytest.raises(RuntimeError, match="stopped before max_steps"):
        run_training("pretrain", {**KILL_TINY, "max_steps": 6, "checkpoint_every": 2, "stop_after_step": 5}, dirs)
    summary = run_training("pretrain", {**KILL_TINY, "max_steps": 6, "checkpoint_every": 2}, dirs)
    assert "resuming from step-000004" in capfd.readouterr().out
    assert summary["resumed_from"].endswith("step-000004") and _curve_steps(tmp_path) == list(range(1, 7))
    assert not (tmp_path / "checkpoints/pretrain/.stage.lock").exists()  # released, not left to DVC


def _trainers_of(repo) -> list[int]:
    import os

    """Live processes (not zombies) running the trainer (torchrun agent or rank) in `repo`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = Path(os.readlink(proc / "cwd"))
        except OSError:
            continue
        if "dscoder.train" in cmd and cwd == Path(repo) and state != "Z":
            found.append(int(proc.name))
    return found


def test_killing_dvc_repro_leaves_no_trainer_and_no_repeated_steps(tmp_path, prefect_api, monkeypatch):
    """SIGKILL to the process group of `dvc repro` mid-training: the torchrun agent dies with
    the group and its ranks (in sessions of their own) with the agent; a second trainer on the
    same folder is refused while the first runs; the rerun resumes and the curve holds every
    step once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    from stages.common import load_paths
    from stages.pretrain import pretrain_paths
    from stages.common.training import run_training
    from tests.integration.dvc_repo import BIN, ROOT, make_dvc_repo

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    # long enough that the first trainer is still running when the second one starts, also on an
    # idle machine (a step of this model takes a few ms)
    params["pretrain"] = {**KILL_TINY, "max_steps": KILL_STEPS, "checkpoint_every": 20, "keep_checkpoints": 1}
    repo = make_dvc_repo(tmp_path / "proj", params)
    _tokens_and_tokenizer(repo)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PREFECT_API_URL": prefect_api, "OMP_NUM_THREADS": "1"}
    log = open(tmp_path / "repro.log", "w")
    repro = subprocess.Popen(["dvc", "repro", "--single-item", "pretrain"], cwd=repo, env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    ckpt = repo / "checkpoints/pretrain"
    deadline = time.monotonic() + 300
    while not list(ckpt.glob("step-*/manifest.json")) and repro.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert repro.poll() is None, (tmp_path / "repro.log").read_text()[-3000:]
    assert _trainers_of(repo), "no trainer found to kill"

    second = subprocess.run([sys.executable, "-m", "dscoder.train", "--config", str(ckpt / "train_config.json")],
                            cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 3 and "in use by pid" in second.stderr, second.stderr[-2000:]
    monkeypatch.chdir(repo)
    with pytest.raises(RuntimeError, match=r"pretrain: .*checkpoints/pretrain is in use by pid \d+ .*stage pretrain"):
        run_training("pretrain", params["pretrain"], pretrain_paths(load_paths(params)))
    assert repro.poll() is None, "the run finished before the kill: make it longer"

    os.killpg(repro.pid, signal.SIGKILL)
    repro.wait()
    deadline = time.monotonic() + 20
    while _trainers_of(repo) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _trainers_of(repo) == []
    newest = sorted(ckpt.glob("step-*"))
    time.sleep(2)
    assert sorted(ckpt.glob("step-*")) == newest  # nobody trains on
    steps = _curve_steps(repo)
    assert steps == list(range(1, len(steps) + 1)) and len(steps) % 20 == 0  # ends at a checkpoint, once each

    rerun = subprocess.run(["dvc", "repro", "--single-item", "pretrain"], cwd=repo, env=env, capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "[train] resumed from checkpoints/pretrain/step-" in rerun.stdout
    assert _curve_steps(repo) == list(range(1, KILL_STEPS + 1))
    assert json.loads((repo / "reports/pretrain.json").read_text())["steps"] == KILL_STEPS
