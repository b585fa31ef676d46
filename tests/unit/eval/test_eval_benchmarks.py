"""The benchmark registry: one interface, names matching the settings, skip notes, and the
held-out FIM benchmark end to end on a tiny repository (Python, Java, JavaScript)."""

from __future__ import annotations

from pathlib import Path

from dscoder.eval.benchmarks import Benchmark, Context, registry
from dscoder.eval.settings import BENCHMARKS, EvaluateSettings, FimSettings

REPO = {"shop": [
    ("Cart.java", "java", "public class Cart {\n    private int total = 0;\n    public void add(int p) {\n"
     "        total += p;\n    }\n}\n"),
    ("ui.js", "javascript", "function show(cart) {\n  const label = 'Total: ' + cart.total;\n  return label;\n}\n"),
    ("tax.py", "python", "RATE = 0.2\n\n\ndef tax(amount):\n    return amount * RATE\n"),
    ("Makefile", "makefile", "all:\n\techo hi\n"),
]}


def _ctx(model, tok, tmp_path, **settings):
    return Context(model=model, tokenizer=tok, settings=EvaluateSettings(**settings), matches={},
                   repos_path=Path(tmp_path) / "none.parquet", tokens_dir=Path(tmp_path))


def test_registry_names_every_benchmark_of_the_settings():
    benchmarks = registry()
    assert set(benchmarks) == set(BENCHMARKS)
    assert all(isinstance(b, Benchmark) and b.name == n for n, b in benchmarks.items())


def test_what_cannot_run_is_skipped_with_a_note(tiny_lm, tmp_path):
    model, tok = tiny_lm
    b, ctx = registry(), _ctx(model, tok, tmp_path, allow_execution=False, perplexity_sequences=0)
    assert "allow_execution" in b["humaneval"].run(ctx)["note"]
    assert "mbpp_path" in b["mbpp"].run(ctx)["note"] and "gsm8k_path" in b["gsm8k_pal"].run(ctx)["note"]
    assert "val.docs.parquet" in b["repo_fim"].run(ctx)["note"]  # no held-out split, no file
    assert "val.docs.parquet" in b["crossfile"].run(ctx)["note"]
    assert b["perplexity"].run(ctx) == {"status": "skipped", "note": "evaluate.perplexity_sequences is 0"}


def test_repo_fim_from_a_tiny_held_out_repository(tiny_lm, tmp_path):
    model, tok = tiny_lm
    ctx = _ctx(model, tok, tmp_path, fim=FimSettings(repo_files=0, repo_tasks_per_file=2, max_new_tokens=3))
    ctx._heldout = REPO  # as Context.heldout() reads it from the validation split
    r = registry()["repo_fim"].run(ctx)
    assert r["status"] == "ok" and r["source"] == "held-out repositories" and r["files"] == 4
    assert {k: v["n"] for k, v in r["per_language"].items()} == {"java": 2, "javascript": 2, "python": 2}
    assert r["n"] == 6 and 0.0 <= r["exact_match"] <= 1.0
    assert r["contamination"] == {"note": "held-out repositories: never in the training split"}
