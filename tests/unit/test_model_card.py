"""The model card every export writes: README.md in the Hugging Face format (read back with
huggingface_hub), the facts beside it, byte-stable, and present in a real tiny export."""

from __future__ import annotations

import json
from importlib import metadata as md
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import ModelCard

from dscoder.model import build_config, build_model
from dscoder.train.config import TrainSettings
from dscoder.train.export import export_hf
from dscoder.train.model_card import (CARD_FILE, FACTS_FILE, complete_facts, evaluation_from_report, main, read_facts,
                                      render_card, scrub, source_license, write_card)
from dscoder.train.resume import resume_key
from stages.common.model_card import card_facts, code_data, recipe

RESULTS = {"steps": 3, "tokens": 96, "seq_len": 16, "world_size": 1, "device": "cpu", "final_train_loss": 5.25,
           "final_val_loss": 5.5, "final_lr": 1e-4, "params": 12345, "status": "complete"}

EVAL = {  # the shape of reports/eval/<model>.json (stages/evaluate.py)
    "model": "base",
    "benchmarks": {
        "humaneval": {"status": "ok", "n": 16, "n_total": 164, "pass@1": 0.25,
                      "contamination": {"clean": {"pass@1": 0.2}, "clean_n": 15, "matched_items": 2,
                                        "matched_items_evaluated": 1}},
        "humaneval_fim": {"status": "ok", "n": 48, "exact_match": 0.5,
                          "contamination": {"clean": {"exact_match": 0.4375}, "clean_n": 46, "matched_items": 2}},
        "repo_fim": {"status": "ok", "n": 16, "exact_match": 0.125,
                     "contamination": {"note": "held-out repositories: never in the training split"}},
        "mbpp": {"status": "skipped", "note": "evaluate.mbpp_path is null"},
    },
    "summary": {"humaneval": {"pass@1": 0.25, "clean_pass@1": 0.2},
                "humaneval_fim": {"exact_match": 0.5, "clean_exact_match": 0.4375},
                "repo_fim": {"exact_match": 0.125}},
}


def stage_facts() -> dict:
    """What a pretrain stage hands over (stages.common.model_card.card_facts / code_data's shape)."""
    data = {
        "splits": {"train": {"repos": 2, "docs": 2, "tokens": 96}, "val": {"repos": 1, "docs": 1, "tokens": 32}},
        "languages": {"python": {"files": 3, "tokens": 70}, "c": {"files": 1, "tokens": 20},
                      "(special)": {"files": 0, "tokens": 6}},
        "languages_split": "train",
        "fim": {"mode": "psm", "rate": 0.5},
        "sources": [{"source": "python_dist:six==1.17.0", "repositories": 1, "tokens": 70, "license": "MIT"},
                    {"source": "dir:/home/someone/corpus", "repositories": 1, "tokens": 26, "license": None}],
        "pipeline": {"dedup": {"removed": 1, "repos": 3}},
    }
    return {"stage": "pretrain", "stages": [
        {"stage": "ingest", "params": {"max_file_bytes": 1000, "sources": "2 source specs"}},
        {"stage": "dedup", "params": {"threshold": 0.7}},
        {"stage": "pretrain", "params": {"max_steps": 3}, "data": data}]}


def tiny_config():
    return build_config("tiny", vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                        num_attention_heads=2, num_key_value_heads=2)


def full_facts() -> dict:
    return complete_facts(stage_facts(), name="base", config=tiny_config(), dtype="float32",
                          train_config=TrainSettings(run_name="pretrain", max_steps=3).to_dict(), results=RESULTS)


def test_card_loads_with_huggingface_hub_and_carries_the_fields(tmp_path):
    write_card(tmp_path, full_facts())
    card = ModelCard.load(tmp_path / CARD_FILE)
    d = card.data.to_dict()
    assert d["language"] == ["code"] and d["license"] == "other" and d["library_name"] == "transformers"
    assert d["pipeline_tag"] == "text-generation"
    assert {"dscoder", "dscoder-pretrain", "code", "python", "c"} <= set(d["tags"])
    assert d["dscoder"]["recipe"] == ["ingest", "dedup", "pretrain"] and d["dscoder"]["stage"] == "pretrain"
    assert d["dscoder"]["revision"]["dscoder"] and "torch" in d["dscoder"]["revision"]
    # the held-out validation loss the trainer measured, as Hugging Face eval results
    assert card.data.model_name == "base"
    val = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert val["loss"] == 5.5 and val["perplexity"] == pytest.approx(2.718281828 ** 5.5)
    assert d["metrics"] == ["loss", "perplexity"]

    body = card.text
    assert "| python | 3 | 70 | 72.92% |" in body  # files and tokens per language, share of the split's tokens
    assert "| train | 2 | 2 | 96 |" in body
    assert "| `python_dist:six==1.17.0` | 1 | 70 | MIT |" in body
    assert "| `dir:.../corpus` | 1 | 26 | not stated |" in body
    assert "threshold: 0.7" in body and "| dedup | removed 1, repos 3 |" in body
    assert "| 3 | pretrain | base | 96 | 5.25 / 5.5 |" in body  # the recipe table
    assert "| layers | 1 |" in body and "| parameters | 12,345 |" in body
    assert "Not evaluated when exported" in body and "evaluate@base" in body
    assert "/home/someone" not in body and "/home/someone" not in (tmp_path / FACTS_FILE).read_text()
    assert read_facts(tmp_path)["stages"][-1]["results"]["steps"] == 3


def test_card_is_byte_identical_for_the_same_facts(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    write_card(a, full_facts())
    shuffled = json.loads(json.dumps(full_facts()))
    shuffled = {k: shuffled[k] for k in reversed(list(shuffled))}  # another key order, same facts
    write_card(b, shuffled)
    for name in (CARD_FILE, FACTS_FILE):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    text = (a / CARD_FILE).read_text()
    assert str(tmp_path) not in text


def test_evaluation_scores_go_to_the_model_index_with_the_contamination_view():
    facts = full_facts()
    card = ModelCard(render_card(facts, evaluation=EVAL))
    results = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert results[("HumanEval", "pass@1")] == 0.25
    assert results[("HumanEval", "pass@1 (items never matched in training data)")] == 0.2
    assert results[("HumanEval FIM (single line)", "exact_match")] == 0.5
    assert set(card.data.to_dict()["metrics"]) == {"loss", "perplexity", "pass@1", "exact_match"}
    assert "| HumanEval | pass@1 | 0.25 | 0.2 | 16 | 2 matched, 15 clean of 16 |" in card.text
    assert "held-out repositories: never in the training split" in card.text
    assert "- mbpp: not run (evaluate.mbpp_path is null)" in card.text
    ev = evaluation_from_report(EVAL)
    assert ev["benchmarks"]["humaneval"]["clean"] == {"pass@1": 0.2} and ev["skipped"] == {"mbpp": "evaluate.mbpp_path is null"}
    assert render_card(facts, evaluation=EVAL) == render_card(facts, evaluation=ev)


def test_command_renders_an_export_with_its_scores(tmp_path):
    model = tmp_path / "base"
    model.mkdir()
    write_card(model, full_facts())
    (tmp_path / "eval.json").write_text(json.dumps(EVAL))
    assert main([str(model), "--eval", str(tmp_path / "eval.json"), "--out", str(tmp_path / "pub" / "README.md")]) == 0
    card = ModelCard.load(tmp_path / "pub" / "README.md")
    assert any(r.dataset_name == "HumanEval" for r in card.data.eval_results)
    with pytest.raises(SystemExit):
        main([str(tmp_path)])  # not an export


def test_scrub_shortens_absolute_paths_and_keeps_urls():
    assert scrub("dir:/tmp/x/corpus") == "dir:.../corpus"
    assert scrub({"a": ["/abs/path/model", "artifacts/models/base"]}) == {"a": [".../model", "artifacts/models/base"]}
    assert scrub("git:https://github.com/a/b@0123") == "git:https://github.com/a/b@0123"
    assert scrub("stack_parquet:/data/stack.parquet#org/repo") == "stack_parquet:.../stack.parquet#org/repo"
    assert scrub("a / b and/or c") == "a / b and/or c"


def test_licences_come_from_what_the_source_states():
    assert source_license("stdlib:json@3.11.7") == "PSF-2.0"
    assert source_license("dir:/somewhere") is None
    assert source_license("python_dist:pip==26.3/pip/_vendor/requests") is None  # vendored: its own licence
    version = md.version("PyYAML")
    assert source_license(f"python_dist:PyYAML=={version}") == "MIT License"
    assert source_license("python_dist:PyYAML==0.0.1") is None  # not the installed version's metadata
    assert source_license("python_dist:no-such-dist==1.0") is None


def test_export_writes_the_card_into_the_model_folder(tmp_path):
    from tests.integration.test_train_torchrun import write_tokenizer
    from transformers import AutoModelForCausalLM

    config = tiny_config()
    model = build_model(config)
    tok = write_tokenizer(tmp_path / "tok")
    (tok / CARD_FILE).write_text("a starting model's card, copied with its tokenizer files\n")
    train_config = TrainSettings(run_name="pretrain", max_steps=3).to_dict()
    outs = []
    for name in ("one", "two"):
        out = export_hf(model, config, tmp_path / name / "base", tokenizer_dir=tok, train_config=train_config,
                        manifest=RESULTS, card=stage_facts())
        outs.append(out)
    files = json.loads((outs[0] / "manifest.json").read_text())["files"]
    assert {CARD_FILE, FACTS_FILE, "model.safetensors", "config.json", "tokenizer.json"} <= set(files)
    card = ModelCard.load(outs[0] / CARD_FILE)
    assert card.data.model_name == "base" and "| python | 3 | 70 | 72.92% |" in card.text
    assert "| vocab_size | 300 |" in card.text
    assert (outs[0] / CARD_FILE).read_bytes() == (outs[1] / CARD_FILE).read_bytes()
    assert (outs[0] / "manifest.json").read_bytes() == (outs[1] / "manifest.json").read_bytes()
    AutoModelForCausalLM.from_pretrained(outs[0])

    bare = export_hf(model, config, tmp_path / "bare", train_config=train_config, manifest=RESULTS)
    assert "| 1 | pretrain | bare | 96 |" in ModelCard.load(bare / CARD_FILE).text  # a card without stage facts


def test_the_card_never_changes_the_resume_key(tmp_path):
    from dscoder.train import write_token_dir
    import numpy as np

    tokens = write_token_dir(tmp_path / "tokens", train=np.arange(64), val=np.arange(32), vocab_size=100, seq_len=16)
    a = TrainSettings(tokens_dir=str(tokens))
    b = TrainSettings(tokens_dir=str(tokens), model_card=str(tmp_path / "facts.json"))
    assert resume_key(a) == resume_key(b)


# ---- the facts a stage gathers (stages.common.model_card) ----------------------------------------------


def test_recipe_takes_the_sections_of_params_yaml(tmp_path):
    params = {"runner": {"workers": 2}, "ingest": {"sources": [{"type": "stdlib", "name": "json"}] * 3,
                                                   "max_file_bytes": 10}, "dedup": {"threshold": 0.8}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    got = recipe(("ingest", "filter", "dedup"), tmp_path / "params.yaml")
    assert [s["stage"] for s in got] == ["ingest", "dedup"]  # filter has no section; runner is no recipe
    assert got[0]["params"]["sources"].startswith("3 source specs") and got[1]["params"] == {"threshold": 0.8}
    assert recipe(("ingest",), tmp_path / "missing.yaml") == []


def test_a_stage_continues_the_recipe_of_the_model_it_starts_from(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    write_card(base, full_facts())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"instruct_data": {"val_fraction": 0.1}}))
    facts = card_facts("instruct", {"max_steps": 2}, start=base, between=("instruct_data",),
                       data={"examples": {"train": 10}}, params_file=tmp_path / "params.yaml")
    assert [s["stage"] for s in facts["stages"]] == ["ingest", "dedup", "pretrain", "instruct_data", "instruct"]
    assert facts["stages"][2]["results"]["final_val_loss"] == 5.5 and facts["stages"][2]["model"] == "base"
    assert facts["started_from"] == {"path": str(base), "name": "base", "dscoder": True}
    text = render_card(complete_facts(facts, name="instruct", results=RESULTS))
    assert "### Seen in `pretrain` (→ base)" in text and "### Seen in `instruct` (→ instruct)" in text
    assert str(tmp_path) not in text
    foreign = card_facts("continue_pretrain", {}, start=tmp_path, before=("instruct_data",),
                         params_file=tmp_path / "params.yaml")
    assert [s["stage"] for s in foreign["stages"]] == ["instruct_data", "continue_pretrain"]
    assert foreign["started_from"]["dscoder"] is False


def test_code_data_reads_the_token_folder_and_the_reports(tmp_path):
    tokens, reports = tmp_path / "data/tokens", tmp_path / "reports"
    tokens.mkdir(parents=True), reports.mkdir()
    (tokens / "meta.json").write_text(json.dumps({"params": {"fim": {"rate": 0.5}}, "splits": {
        "train": {"n_repos": 2, "n_docs": 3, "n_tokens": 60}, "val": {"n_repos": 1, "n_docs": 1, "n_tokens": 10}}}))
    pq.write_table(pa.table({"repo_id": ["r1", "r1", "r2"], "repo_name": ["six", "six", "mine"],
                             "token_start": [0, 10, 30], "token_end": [10, 30, 60]}), tokens / "train.docs.parquet")
    pq.write_table(pa.table({"repo_id": ["r1", "r2"], "source": [f"python_dist:PyYAML=={md.version('PyYAML')}",
                                                                  "dir:/x/y"]}), tmp_path / "repos.parquet")
    (reports / "pack.json").write_text(json.dumps({"by_language": {"train": {"python": {"files": 2, "tokens": 60}}}}))
    (reports / "dedup.json").write_text(json.dumps({"repos_out": 2, "repos_removed": 1}))
    d = code_data(tokens, tmp_path / "repos.parquet", reports)
    assert d["splits"]["train"] == {"repos": 2, "docs": 3, "tokens": 60}
    assert d["languages"] == {"python": {"files": 2, "tokens": 60}} and d["fim"] == {"rate": 0.5}
    assert d["sources"] == [
        {"source": "dir:/x/y", "repositories": 1, "tokens": 30, "license": None},
        {"source": f"python_dist:PyYAML=={md.version('PyYAML')}", "repositories": 1, "tokens": 30,
         "license": "MIT License"}]
    assert d["pipeline"]["dedup"] == {"repos": 2, "removed": 1}
