"""evaluate: <paths.models>/<model> → <paths.reports>/eval/<model>.json (docs/recipe.md §3, Sec. 4).

One run per model (DVC `foreach`): a loop over the benchmarks named in `evaluate.benchmarks`,
each a module of dscoder.eval.benchmarks behind one interface (items, prompts, score,
contamination view). Every score comes with its contamination view: decontam's hits for that
benchmark (paths.clean_matches) and the score on the items that never matched.
Held-out repositories are pack's validation split (val.docs.parquet in paths.tokens). A benchmark
that cannot run is skipped with a note in the report, never a failed run.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from dscoder.config import check
from dscoder.eval import contamination as contam
from dscoder.eval.benchmarks import Benchmark, Context, layers_text, missing_fim_sentinels, registry
from dscoder.eval.settings import EvaluateSettings
from dscoder.paths import Paths
from stages.common import Timer, load_params, load_paths, publish_artifact, run_flow, run_task, write_report_files
from stages.common.progress import Progress

# one run per model (dvc.yaml's foreach): `{model}` is its name
READS = (("models", "{model}"), "clean_matches", "clean_repos", "tokens")
WRITES = (("reports", "eval/{model}.json"), ("reports", "eval/{model}.timing.json"))
HEADLINES = {"humaneval": "pass@1", "mbpp": "pass@1", "gsm8k_pal": "accuracy", "humaneval_fim": "exact_match",
             "repo_fim": "exact_match", "perplexity": "perplexity"}


@task(name="benchmark", cache_policy=NO_CACHE, task_run_name="{benchmark.name}")
def run_benchmark(benchmark: Benchmark, ctx: Context) -> dict:
    return benchmark.run(ctx)


@flow(name="evaluate", log_prints=True)
def evaluate(model: str, settings: EvaluateSettings, *, paths: Paths | None = None, models_dir: Path | None = None,
             repos_path: Path | None = None, tokens_dir: Path | None = None, matches_path: Path | None = None,
             reports_dir: Path | None = None) -> dict:
    """Evaluate `<paths.models>/<model>`; the folders and files default to the `paths` entries."""
    import torch

    from dscoder.eval.generate import load_model, uses_chat
    from dscoder.eval.sandbox import probe_layers

    check(bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", model)), "--model", f"not a model name: {model!r}")
    paths = paths or load_paths()
    models_dir, repos_path = Path(models_dir or paths.models), Path(repos_path or paths.clean_repos)
    tokens_dir, matches_path = Path(tokens_dir or paths.tokens), Path(matches_path or paths.clean_matches)
    reports_dir = Path(reports_dir or Path(paths.reports) / "eval")
    timer, s = Timer(), settings
    device = ("cuda" if torch.cuda.is_available() else "cpu") if s.device == "auto" else s.device
    lm, tokenizer = load_model(str(Path(models_dir) / model), device=device, dtype=s.dtype)
    ctx = Context(model=lm, tokenizer=tokenizer, settings=s, matches=contam.load_matches(matches_path),
                  repos_path=Path(repos_path), tokens_dir=Path(tokens_dir))
    timer.mark("load")
    benchmarks = registry()
    results: dict[str, Any] = {}
    with Progress(f"eval-{model}", len(s.benchmarks), "benchmark", desc=f"evaluate {model}: benchmarks") as progress:
        for name in s.benchmarks:
            results[name] = run_task(run_benchmark, benchmarks[name], ctx)
            timer.mark(name)
            progress.advance(1, done=name)

    layers = probe_layers(s.sandbox) if s.allow_execution and s.sandbox.isolation != "basic" else ()
    report = {
        "model": model,
        "model_dir": str(Path(models_dir) / model),
        "parameters": sum(p.numel() for p in lm.parameters()),
        "device": device,
        "chat": uses_chat(tokenizer, ctx.generation()),
        "fim_sentinels": not missing_fim_sentinels(tokenizer),
        "allow_execution": s.allow_execution,
        "sandbox": {"isolation": s.sandbox.isolation, "namespace_layers": layers_text(layers),
                    "workers": s.sandbox.workers, "timeout_s": s.sandbox.timeout_s},
        "benchmarks": results,
        "summary": summary(results),
        "timing": {"total_s": timer.total, **{f"{k}_s": v for k, v in timer.marks.items()}},
        "env": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch": torch.__version__},
    }
    out = Path(reports_dir) / f"{model}.json"
    report = write_report_files(out, report)  # timings beside, not in the metrics
    publish_artifact(f"eval-{re.sub(r'[^a-z0-9-]', '-', model.lower())}", report, out)
    print(f"evaluate {model}: " + ", ".join(f"{b}.{k}={v:.4g}" for b, d in report["summary"].items()
                                            for k, v in d.items()))
    return report


def summary(results: dict) -> dict[str, Any]:
    """The headline figure of each benchmark that ran, and the same on its never-matched items
    (what `dvc metrics show` users scan)."""
    out: dict[str, Any] = {}
    for name, key in HEADLINES.items():
        r = results.get(name) or {}
        if key in r:
            out[name] = {key: r[key]}
            clean = (r.get("contamination") or {}).get("clean") or {}
            if key in clean:
                out[name][f"clean_{key}"] = clean[key]
    cf = results.get("crossfile") or {}
    for mode in ("in_file", "bm25"):
        if mode in cf:
            out[f"crossfile_{mode}"] = {k: cf[mode][k] for k in ("exact_match", "edit_similarity",
                                                                 "identifier_exact_match", "identifier_f1")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="model folder name under params.yaml's paths.models")
    ap.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = ap.parse_args()
    params = load_params(args.params)
    run_flow(evaluate, args.model, EvaluateSettings.from_dict(params.get("evaluate")), paths=load_paths(params))


if __name__ == "__main__":
    main()
