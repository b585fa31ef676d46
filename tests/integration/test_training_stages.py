"""The training stages as Prefect flows, end to end on a tiny corpus: tokenizer → pack →
pretrain → long_context → instruct_data → instruct, and general_lm → continue_pretrain (v1.5
from a model whose tokenizer is not dscoder's). Each exported model loads with
AutoModelForCausalLM and generates."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from dscoder.data.languages import detect_language
from dscoder.data.repo_order import build_repo_doc
from dscoder.packing import PackParams
from dscoder.schemas import REPOS
from dscoder.tokenizer import TokenizerParams
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
    from dscoder.instruct import InstructDataParams

    monkeypatch.chdir(tmp_path)
    launch = {"launch": {"nproc_per_node": 1, "nnodes": 1}}
    _clean_repos(tmp_path / "data/clean/repos.parquet")
    tokenizer(TokenizerParams(vocab_size=400, sample_bytes=10**6), 0.2, 0)
    pack(PackParams(seq_len=32, val_fraction=0.2), RunnerSettings(workers=1))
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

    instruct_data(InstructDataParams(val_fraction=0.2), {})
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
