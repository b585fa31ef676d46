"""The evaluate stage as a real Prefect flow on a tiny random Llama: report structure, the
contamination view (matched items counted, clean-subset score over the right n), and skips
(no FIM sentinels, execution not allowed) that leave a note instead of failing."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dscoder.config import ConfigError, build
from dscoder.schemas import REPOS

pytestmark = pytest.mark.integration

FIM = ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"]
FILES = {
    "pkg/util.py": "def compute_total(items):\n    return sum(items)\n\n\nclass Ledger:\n    pass\n",
    "pkg/app.py": ("import os\nfrom pkg.util import compute_total\n\n\ndef main(values):\n"
                   "    ledger = Ledger()\n    total = compute_total(values)\n    return total\n"),
    "web/Main.java": ("public class Main {\n    public static int twice(int x) {\n        int y = x * 2;\n"
                      "        return y;\n    }\n}\n"),
    "web/app.js": "function greet(name) {\n  const text = 'hi ' + name;\n  return text;\n}\n",
}
LANGUAGE = {"py": "python", "java": "java", "js": "javascript"}


def _save_model(path, *, fim: bool):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<eos>", "<pad>"] + (FIM + ["<bos>"] if fim else [])
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(FILES.values()) * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>",
                                   model_max_length=4096, **({"bos_token": "<bos>"} if fim else {}))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                      eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return len(fast)


def _repo_row(repo_id, name, files):
    text, spans = "", []
    for path, content in files.items():
        language = LANGUAGE[path.rsplit(".", 1)[1]]
        header = f"{'#' if language == 'python' else '//'} {path}\n"
        spans.append({"path": path, "language": language, "start": len(text),
                      "end": len(text) + len(header) + len(content), "header_chars": len(header)})
        text += header + content
    return {"repo_id": repo_id, "repo_name": name, "source": "test", "text": text, "files": spans,
            "languages": sorted({LANGUAGE[p.rsplit(".", 1)[1]] for p in files}), "n_files": len(files), "edges_found": 0, "edges_resolved": 0,
            "cycles_broken": 0}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    from dscoder.train.data import write_token_dir

    d = tmp_path_factory.mktemp("evaluate")
    vocab = _save_model(d / "models/tiny", fim=True)
    _save_model(d / "models/nofim", fim=False)
    pq.write_table(pa.Table.from_pylist([_repo_row("r-held", "held", FILES),
                                         _repo_row("r-train", "train", {"x.py": "x = 1\n"})], schema=REPOS),
                   d / "repos.parquet")
    rng = np.random.default_rng(0)
    write_token_dir(d / "tokens", train=rng.integers(0, vocab, 64), val=rng.integers(0, vocab, 64),
                    vocab_size=vocab, seq_len=16)
    pq.write_table(pa.table({"repo_id": ["r-held"]}), d / "tokens/val.docs.parquet")
    match = dict(repo_id="r-train", repo_name="train", path="x.py", language="python", size=6, field="prompt",
                 kind="exact", ngram="x")
    pq.write_table(pa.Table.from_pylist([
        {**match, "benchmark": "humaneval", "item_id": "HumanEval/0"},   # evaluated (problem 0 of 4)
        {**match, "benchmark": "humaneval", "item_id": "HumanEval/53"},  # not in the 4-problem subset
        {**match, "benchmark": "mbpp", "item_id": "11"},
        {**match, "benchmark": "gsm8k", "item_id": "line:2"},
    ]), d / "matches.parquet")
    (d / "mbpp.jsonl").write_text(
        json.dumps({"task_id": 11, "text": "Return one.", "code": "def one():\n    return 1\n",
                    "test_list": ["assert one() == 1"]}) + "\n"
        + json.dumps({"task_id": 12, "text": "Return two.", "code": "def two():\n    return 2\n",
                      "test_list": ["assert two() == 2"]}) + "\n")
    (d / "gsm8k.jsonl").write_text(
        json.dumps({"question": "What is 2 + 2?", "answer": "2 + 2 = 4\n#### 4"}) + "\n"
        + json.dumps({"question": "What is 3 + 3?", "answer": "#### 6"}) + "\n")
    return d


def _run(d, model, section):
    from dscoder.eval.settings import EvaluateSettings
    from stages.evaluate import evaluate

    s = build(EvaluateSettings, section, "evaluate")
    evaluate(model, s, models_dir=d / "models", repos_path=d / "repos.parquet", tokens_dir=d / "tokens",
             matches_path=d / "matches.parquet", reports_dir=d / "reports/eval")
    return json.loads((d / f"reports/eval/{model}.json").read_text())


def test_evaluate_flow_report_and_contamination(workdir, prefect_harness):
    from dscoder.eval.fim_infill import humaneval_fim_tasks
    from dscoder.eval.humaneval import load_humaneval
    from dscoder.eval.benchmarks import seeded_sample

    r = _run(workdir, "tiny", {
        "allow_execution": True, "device": "cpu", "humaneval_limit": 4, "max_new_tokens": 8, "batch_size": 4,
        "mbpp_path": str(workdir / "mbpp.jsonl"), "gsm8k_path": str(workdir / "gsm8k.jsonl"),
        "perplexity_sequences": 2, "sandbox": {"workers": 2, "timeout_s": 5.0},
        "fim": {"humaneval_tasks": 12, "repo_files": 0, "repo_tasks_per_file": 2, "max_new_tokens": 4},
        "crossfile": {"points": 0, "max_prompt_tokens": 128, "max_new_tokens": 4, "retrieved_tokens": 32}})
    b = r["benchmarks"]
    assert r["model"] == "tiny" and r["fim_sentinels"] is True and r["chat"] is False
    assert {k: v["status"] for k, v in b.items()} == dict.fromkeys(
        ["humaneval", "mbpp", "gsm8k_pal", "humaneval_fim", "repo_fim", "crossfile", "perplexity"], "ok")

    he = b["humaneval"]
    assert he["n"] == 4 and he["n_total"] == 164 and sum(he["outcomes"].values()) == 4
    assert "rlimits" in he["sandbox_layers"] and 0.0 <= he["pass@1"] <= 1.0
    c = he["contamination"]
    assert c["matched_items"] == 2 and c["matched_ids"] == ["HumanEval/0", "HumanEval/53"]
    assert c["matched_items_evaluated"] == 1 and c["matched_ids_evaluated"] == ["HumanEval/0"]
    assert c["clean_n"] == 3 and set(c["clean"]) == {"pass@1"}

    for name, n_clean in (("mbpp", 1), ("gsm8k_pal", 1)):  # MBPP/11 and line 2 matched
        assert b[name]["n"] == 2 and b[name]["contamination"]["matched_items_evaluated"] == 1
        assert b[name]["contamination"]["clean_n"] == n_clean

    sample = seeded_sample(humaneval_fim_tasks(load_humaneval()), 12, 0, "humaneval-fim")
    dirty = sum(t.task_id.startswith("HumanEval/0/") for t in sample)
    fim = b["humaneval_fim"]
    assert fim["n"] == 12 and fim["contamination"]["clean_n"] == 12 - dirty

    rf = b["repo_fim"]
    assert rf["n"] == 2 * 4 and rf["repos"] == 1 and rf["source"] == "held-out repositories"
    assert {k: v["n"] for k, v in rf["per_language"].items()} == {"python": 4, "java": 2, "javascript": 2}
    cf = b["crossfile"]
    metrics = {"exact_match", "edit_similarity", "identifier_exact_match", "identifier_f1", "per_language"}
    assert cf["n"] >= 1 and set(cf["in_file"]) == set(cf["bm25"]) == metrics
    assert 0.0 <= cf["bm25"]["edit_similarity"] <= 100.0
    assert b["perplexity"]["tokens"] == 2 * 15 and b["perplexity"]["perplexity"] > 1.0
    assert r["summary"]["humaneval"] == {"pass@1": he["pass@1"], "clean_pass@1": c["clean"]["pass@1"]}


def test_evaluate_skips_with_notes(workdir, prefect_harness):
    r = _run(workdir, "nofim", {"allow_execution": False, "device": "cpu",
                                "benchmarks": ["humaneval", "humaneval_fim", "repo_fim", "mbpp"]})
    b = r["benchmarks"]
    assert r["fim_sentinels"] is False and set(b) == {"humaneval", "humaneval_fim", "repo_fim", "mbpp"}
    assert all(v["status"] == "skipped" for v in b.values())
    assert "FIM sentinel" in b["humaneval_fim"]["note"] and "FIM sentinel" in b["repo_fim"]["note"]
    assert "allow_execution" in b["humaneval"]["note"] and "mbpp_path" in b["mbpp"]["note"]


@pytest.mark.parametrize("section, name", [
    ({"benchmarks": ["humaneval", "nope"]}, "evaluate.benchmarks"),
    ({"sandbox": {"workers": 0}}, "evaluate.sandbox.workers"),
    ({"sandbox": {"max_output_bytes": 0}}, "evaluate.sandbox.max_output_bytes"),
    ({"fim": {"path": "/nonexistent.jsonl"}}, "evaluate.fim.path"),
    ({"mbpp_shots": 4}, "evaluate.mbpp_shots"),
    ({"fim": {"repo_tasks_per_file": 0}}, "evaluate.fim.repo_tasks_per_file"),
    ({"num_samples": 4}, "evaluate.temperature"),
    ({"ks": [2]}, "evaluate.ks"),
    ({"humaneval_limt": 3}, "evaluate.humaneval_limt"),
])
def test_settings_name_the_bad_parameter(section, name):
    from dscoder.eval.settings import EvaluateSettings

    with pytest.raises(ConfigError, match=name.replace(".", r"\.")):
        build(EvaluateSettings, section, "evaluate")
