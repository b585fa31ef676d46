"""evaluate: artifacts/models/<model> → reports/eval/<model>.json (RECIPE.md §3, Sec. 4).

One run per model (DVC `foreach`): HumanEval (and MBPP when a JSONL is given) executed in the
sandbox with pass@k, FIM single-line infilling from HumanEval's canonical solutions and from
held-out repositories, cross-file completion with and without BM25 retrieval, program-aided
math (GSM8K layout, when given) and perplexity on the validation tokens. Instruct models
(tokenizer with a chat template) are prompted through the template.

Every score comes with its contamination view (issue 10, item 3): how many items of that
benchmark matched training files in decontam (data/clean/matches.parquet) and the score on
the items that never matched. Held-out repositories are pack's validation split
(data/tokens/val.docs.parquet), so FIM and cross-file tasks come from code no model trained on.
A benchmark that cannot run (no FIM sentinels, no path, execution not allowed) is skipped with
a note in the report, never a failed run.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from dscoder.config import Settings, build, check
from dscoder.data.repo_blocks import block_content
from dscoder.eval import contamination as contam
from dscoder.eval.fim_infill import FimSentinels, FimTask, humaneval_fim_tasks, line_matches
from dscoder.io import write_json
from stages.common import Timer, load_params, publish_artifact, read_repos

MODELS = Path("artifacts/models")
REPOS_IN = Path("data/clean/repos.parquet")
TOKENS = Path("data/tokens")
MATCHES = Path("data/clean/matches.parquet")
REPORTS = Path("reports/eval")

BENCHMARKS = ("humaneval", "humaneval_fim", "repo_fim", "crossfile", "mbpp", "gsm8k_pal", "perplexity")
CODE_LANGUAGES = ("python", "java", "javascript", "typescript", "c", "cpp", "csharp", "go", "rust",
                  "php", "ruby", "shell", "cython")


@dataclass(frozen=True, kw_only=True)
class SandboxSettings(Settings):
    workers: int = 2
    """Programs run at once."""
    timeout_s: float = 10.0
    """Wall-clock limit per program; the whole process group is killed after it."""
    memory_mb: int = 1024
    """Address-space limit per process, MiB."""
    isolation: Literal["auto", "namespaces", "basic"] = "auto"
    """"auto": namespaces where the host allows them (see dscoder.eval.sandbox)."""

    def validate(self) -> None:
        check(self.workers >= 1, "evaluate.sandbox.workers", f"must be >= 1, got {self.workers}")
        check(self.timeout_s > 0, "evaluate.sandbox.timeout_s", f"must be > 0, got {self.timeout_s}")
        check(self.memory_mb >= 64, "evaluate.sandbox.memory_mb", f"must be >= 64, got {self.memory_mb}")


@dataclass(frozen=True, kw_only=True)
class FimSettings(Settings):
    humaneval_tasks: int = 0
    """Lines of HumanEval canonical solutions to infill (a seeded sample); 0 = every line
    of every problem (Sec. 4.2)."""
    repo_files: int = 100
    """Held-out files to draw infilling tasks from (a seeded sample); 0 = all."""
    repo_tasks_per_file: int = 5
    """Masked lines per held-out file."""
    max_context_chars: int = 8000
    """Characters of prefix and of suffix kept around the hole (cut at line boundaries)."""
    max_new_tokens: int = 64
    """Tokens generated per infill (the first line is scored)."""

    def validate(self) -> None:
        for name in ("humaneval_tasks", "repo_files"):
            check(getattr(self, name) >= 0, f"evaluate.fim.{name}", f"must be >= 0, got {getattr(self, name)}")
        for name in ("repo_tasks_per_file", "max_context_chars", "max_new_tokens"):
            check(getattr(self, name) >= 1, f"evaluate.fim.{name}", f"must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True, kw_only=True)
class CrossfileSettings(Settings):
    points: int = 200
    """Completion points (a seeded sample of all qualifying lines); 0 = all."""
    points_per_file: int = 2
    """Qualifying lines drawn per file before sampling."""
    retrieval: bool = True
    """Also score with BM25-retrieved cross-file context (besides in-file only)."""
    max_prompt_tokens: int = 2048
    """Prompt budget (Sec. 4.3: 2048)."""
    max_new_tokens: int = 50
    """Tokens generated per point (Sec. 4.3: 50)."""
    retrieved_tokens: int = 512
    """Retrieved context budget (Sec. 4.3: 512)."""

    def validate(self) -> None:
        check(self.points >= 0, "evaluate.crossfile.points", f"must be >= 0, got {self.points}")
        for name in ("points_per_file", "max_new_tokens", "retrieved_tokens"):
            check(getattr(self, name) >= 1, f"evaluate.crossfile.{name}", f"must be >= 1, got {getattr(self, name)}")
        check(self.max_prompt_tokens > self.max_new_tokens, "evaluate.crossfile.max_prompt_tokens",
              f"must exceed max_new_tokens ({self.max_new_tokens}), got {self.max_prompt_tokens}")


@dataclass(frozen=True, kw_only=True)
class EvaluateSettings(Settings):
    benchmarks: tuple[str, ...] = BENCHMARKS
    """Which benchmarks to run (any of: humaneval, humaneval_fim, repo_fim, crossfile, mbpp,
    gsm8k_pal, perplexity)."""
    allow_execution: bool = False
    """Opt-in to executing model-written code (HumanEval, MBPP, PAL) in the sandbox; when
    false those benchmarks are skipped with a note."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the model runs; auto = cuda when available."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weights' dtype at evaluation."""
    chat: Literal["auto", "always", "never"] = "auto"
    """Prompt through the tokenizer's chat template: auto = when it has one (instruct models)."""
    humaneval_limit: int = 0
    """HumanEval problems to run, spread evenly over the 164 (every 164/N-th); 0 = all."""
    max_new_tokens: int = 512
    """New tokens per HumanEval/MBPP/PAL completion (stop sequences usually end it sooner)."""
    batch_size: int = 8
    """Prompts per generation batch."""
    num_samples: int = 1
    """Completions per problem; > 1 (with temperature > 0) for pass@k."""
    temperature: float = 0.0
    """0 = greedy, the paper's pass@1 setting (Sec. 4.1)."""
    ks: tuple[int, ...] = (1,)
    """pass@k values reported (k <= num_samples)."""
    seed: int = 0
    """Seed for sampling and for every task sample drawn here."""
    mbpp_path: str | None = None
    """MBPP JSONL (text, code, test_list, task_id); null = skipped with a note."""
    mbpp_limit: int = 0
    """MBPP problems (the first N); 0 = all."""
    gsm8k_path: str | None = None
    """GSM8K-layout JSONL (question, answer ending in '#### N') for PAL; null = skipped."""
    gsm8k_limit: int = 0
    """GSM8K problems (the first N); 0 = all."""
    perplexity_sequences: int = 16
    """Validation blocks (pack.seq_len tokens each) for perplexity; 0 = skipped."""
    benchmark_names: dict[str, str] = field(default_factory=lambda: {
        "humaneval": "humaneval", "mbpp": "mbpp", "gsm8k": "gsm8k"})
    """Name each benchmark has in decontam.benchmarks (the matches table's `benchmark`)."""
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    fim: FimSettings = field(default_factory=FimSettings)
    crossfile: CrossfileSettings = field(default_factory=CrossfileSettings)

    def validate(self) -> None:
        bad = [b for b in self.benchmarks if b not in BENCHMARKS]
        check(not bad, "evaluate.benchmarks", f"unknown {bad} (known: {', '.join(BENCHMARKS)})")
        for name in ("humaneval_limit", "mbpp_limit", "gsm8k_limit", "perplexity_sequences"):
            check(getattr(self, name) >= 0, f"evaluate.{name}", f"must be >= 0, got {getattr(self, name)}")
        for name in ("max_new_tokens", "batch_size", "num_samples"):
            check(getattr(self, name) >= 1, f"evaluate.{name}", f"must be >= 1, got {getattr(self, name)}")
        check(self.temperature >= 0, "evaluate.temperature", f"must be >= 0, got {self.temperature}")
        check(self.num_samples == 1 or self.temperature > 0, "evaluate.temperature",
              "num_samples > 1 needs temperature > 0")
        check(bool(self.ks) and all(1 <= k <= self.num_samples for k in self.ks), "evaluate.ks",
              f"each k must be in [1, num_samples={self.num_samples}], got {list(self.ks)}")
        for name in ("mbpp_path", "gsm8k_path"):
            path = getattr(self, name)
            check(path is None or Path(path).is_file(), f"evaluate.{name}", f"no such file {path!r}")
        unknown = set(self.benchmark_names) - {"humaneval", "mbpp", "gsm8k"}
        check(not unknown, "evaluate.benchmark_names",
              f"unknown keys {sorted(unknown)} (known: humaneval, mbpp, gsm8k)")

    def decontam_name(self, benchmark: str) -> str:
        return self.benchmark_names.get(benchmark, benchmark)

    def generation(self, **overrides):
        from dscoder.eval.generate import GenerationConfig

        base = dict(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size, num_samples=self.num_samples,
                    temperature=self.temperature, seed=self.seed, chat=self.chat)
        return GenerationConfig(**{**base, **overrides}).validate()

    def sandbox_config(self):
        from dscoder.eval.sandbox import SandboxConfig

        s = self.sandbox
        return SandboxConfig(workers=s.workers, timeout_s=s.timeout_s, memory_mb=s.memory_mb, isolation=s.isolation)


# ---------------------------------------------------------------------------- helpers


def skipped(note: str) -> dict:
    return {"status": "skipped", "note": note}


def evenly_spaced(items: list, n: int) -> list:
    """n items spread over the whole list (all when n is 0 or >= len)."""
    if n <= 0 or n >= len(items):
        return list(items)
    return [items[(i * len(items)) // n] for i in range(n)]


def seeded_sample(items: list, n: int, seed: int, salt: str) -> list:
    """n items drawn with a seeded RNG, kept in their original order (all when n is 0)."""
    if n <= 0 or n >= len(items):
        return list(items)
    keep = sorted(random.Random(f"{seed}:{salt}").sample(range(len(items)), n))
    return [items[i] for i in keep]


def missing_fim_sentinels(tokenizer, sentinels: FimSentinels = FimSentinels()) -> list[str]:
    """FIM control strings that are not single tokens of the tokenizer's vocabulary."""
    vocab = tokenizer.get_vocab()
    return [s for s in (sentinels.begin, sentinels.hole, sentinels.end) if s not in vocab]


def clip_task(t: FimTask, max_chars: int) -> FimTask:
    """Keep at most `max_chars` of prefix (its end) and of suffix (its start), at line
    boundaries, so the PSM prompt never has to be cut from the left (that would drop the
    FIM begin sentinel)."""
    prefix, suffix = t.prefix, t.suffix
    if len(prefix) > max_chars:
        cut = prefix[-max_chars:]
        prefix = cut[cut.find("\n") + 1:] if "\n" in cut else cut
    if len(suffix) > max_chars:
        cut = suffix[:max_chars]
        suffix = cut[:cut.rfind("\n")] if "\n" in cut[1:] else cut
    return dataclasses.replace(t, prefix=prefix, suffix=suffix)


def heldout_files(repos_path: Path, tokens_dir: Path,
                  languages=CODE_LANGUAGES) -> dict[str, list[tuple[str, str, str]]]:
    """Code files of the held-out repositories (pack's validation split), per repository
    name: [(path, language, content)] in document order."""
    import pyarrow.parquet as pq

    ids = list(dict.fromkeys(pq.read_table(tokens_dir / "val.docs.parquet", columns=["repo_id"])
                             .column("repo_id").to_pylist()))
    out: dict[str, list[tuple[str, str, str]]] = {}
    for row in read_repos(repos_path, ids, columns=["repo_id", "repo_name", "text", "files"]).to_pylist():
        files = [(f["path"], f["language"], block_content(row["text"], f)) for f in row["files"]
                 if f["language"] in languages]
        if files:
            out[row["repo_name"]] = files
    return dict(sorted(out.items()))


def _layers(layers) -> str:
    return ",".join(layers) if layers else "none"


# ---------------------------------------------------------------------------- benchmarks


def _execution_score(kind: str, problems, model, tokenizer, s: EvaluateSettings, matches: dict) -> dict:
    """Generate for code-execution problems, run them in the sandbox, score pass@k, and
    the contamination view of the score (HumanEval and MBPP share all of it)."""
    from dscoder.eval.humaneval import evaluate_completions, generate_for_problems
    from dscoder.eval.passk import mean_pass_at_k

    completions, chat = generate_for_problems(model, tokenizer, problems, s.generation())
    r = evaluate_completions(problems, completions, ks=s.ks, config=s.sandbox_config(), chat=chat,
                             allow_execution=s.allow_execution)
    per = {t: (len(v), v.count("passed")) for t, v in r.per_problem.items()}
    return {"status": "ok", **r.pass_at_k, "n": len(problems), "chat": chat,
            "outcomes": dict(sorted(r.status_counts.items())), "sandbox_layers": _layers(r.layers),
            "contamination": contam.contamination_view(
                per, lambda t: contam.decontam_item_id(kind, t), matches.get(s.decontam_name(kind)),
                lambda v: mean_pass_at_k(v, s.ks))}


@task(name="humaneval", cache_policy=NO_CACHE)
def run_humaneval(model, tokenizer, s: EvaluateSettings, matches: dict) -> dict:
    from dscoder.eval.humaneval import load_humaneval

    all_problems = load_humaneval()
    problems = evenly_spaced(all_problems, s.humaneval_limit)
    return {**_execution_score("humaneval", problems, model, tokenizer, s, matches),
            "n_total": len(all_problems), "samples_per_problem": s.num_samples}


@task(name="mbpp", cache_policy=NO_CACHE)
def run_mbpp(model, tokenizer, s: EvaluateSettings, matches: dict) -> dict:
    from dscoder.eval.humaneval import load_mbpp

    problems, bad = load_mbpp(s.mbpp_path)
    n_total = len(problems)
    problems = problems[:s.mbpp_limit] if s.mbpp_limit else problems
    if not problems:
        return {**skipped(f"no usable MBPP rows in {s.mbpp_path}"), "rows_skipped": dict(bad)}
    return {**_execution_score("mbpp", problems, model, tokenizer, s, matches),
            "n_total": n_total, "rows_skipped": dict(sorted(bad.items()))}


@task(name="gsm8k-pal", cache_policy=NO_CACHE)
def run_pal(model, tokenizer, s: EvaluateSettings, matches: dict) -> dict:
    from dscoder.eval.generate import chat_prompt, generate_completions, uses_chat
    from dscoder.eval.pal import PAL_STOP, evaluate_pal, load_gsm8k, pal_prompt

    problems, bad = load_gsm8k(s.gsm8k_path)
    n_total = len(problems)
    problems = problems[:s.gsm8k_limit] if s.gsm8k_limit else problems
    if not problems:
        return {**skipped(f"no usable GSM8K rows in {s.gsm8k_path}"), "rows_skipped": dict(bad)}
    cfg = s.generation(num_samples=1, temperature=0.0)
    chat = uses_chat(tokenizer, cfg)
    prompts = [chat_prompt(tokenizer, f"Write a Python program that prints the answer to: {p.question}")
               if chat else pal_prompt(p) for p in problems]
    completions = generate_completions(model, tokenizer, prompts, cfg, stop=() if chat else PAL_STOP)
    r = evaluate_pal(problems, [c[0] for c in completions], config=s.sandbox_config(), chat=chat,
                     allow_execution=s.allow_execution)
    lines = contam.gsm8k_line_ids(s.gsm8k_path)
    return {"status": "ok", "accuracy": r["accuracy"], "n": r["n"], "n_total": n_total, "chat": chat,
            "rows_skipped": dict(sorted(bad.items())), "outcomes": dict(sorted(r["outcomes"].items())),
            "sandbox_layers": _layers(r["layers"]),
            "contamination": contam.contamination_view(
                r["per_item"], lambda t: lines.get(t, t), matches.get(s.decontam_name("gsm8k")),
                lambda v: {"accuracy": sum(o == "correct" for o in v) / len(v)})}


@task(name="humaneval-fim", cache_policy=NO_CACHE)
def run_humaneval_fim(model, tokenizer, s: EvaluateSettings, matches: dict) -> dict:
    from dscoder.eval.fim_infill import evaluate_fim
    from dscoder.eval.humaneval import load_humaneval

    tasks = humaneval_fim_tasks(load_humaneval())
    n_total = len(tasks)
    tasks = seeded_sample(tasks, s.fim.humaneval_tasks, s.seed, "humaneval-fim")
    cfg = s.generation(max_new_tokens=s.fim.max_new_tokens, num_samples=1, temperature=0.0, chat="never")
    metrics, preds = evaluate_fim(model, tokenizer, tasks, config=cfg)
    hits = {t.task_id: line_matches(p, t.target) for t, p in zip(tasks, preds)}
    return {"status": "ok", "exact_match": metrics["exact_match"], "n": len(tasks), "n_total": n_total,
            "problems": len({contam.decontam_item_id("humaneval", t.task_id) for t in tasks}),
            "contamination": contam.contamination_view(
                hits, lambda t: contam.decontam_item_id("humaneval", t), matches.get(s.decontam_name("humaneval")),
                lambda v: {"exact_match": sum(v) / len(v)})}


@task(name="repo-fim", cache_policy=NO_CACHE)
def run_repo_fim(model, tokenizer, s: EvaluateSettings, repos: dict) -> dict:
    from dscoder.eval.fim_infill import evaluate_fim, repo_fim_tasks

    files = [(f"{name}/{path}", lang, text) for name, fs in repos.items() for path, lang, text in fs]
    files = seeded_sample(files, s.fim.repo_files, s.seed, "repo-fim")
    tasks = [clip_task(t, s.fim.max_context_chars)
             for t in repo_fim_tasks(files, per_file=s.fim.repo_tasks_per_file, seed=s.seed)]
    if not tasks:
        return skipped("no maskable lines in the held-out files")
    cfg = s.generation(max_new_tokens=s.fim.max_new_tokens, num_samples=1, temperature=0.0, chat="never")
    metrics, _ = evaluate_fim(model, tokenizer, tasks, config=cfg)
    per_lang = {k.split("/", 1)[1]: v for k, v in metrics.items() if "/" in k}
    counts = {}
    for t in tasks:
        counts[t.language] = counts.get(t.language, 0) + 1
    return {"status": "ok", "exact_match": metrics["exact_match"], "n": len(tasks), "files": len(files),
            "repos": len(repos), "per_language": {lang: {"exact_match": per_lang[lang], "n": counts[lang]}
                                                  for lang in sorted(per_lang)},
            "contamination": {"note": "held-out repositories: never in the training split"}}


@task(name="crossfile", cache_policy=NO_CACHE)
def run_crossfile(model, tokenizer, s: EvaluateSettings, repos: dict) -> dict:
    from dscoder.eval.crossfile import completion_points, evaluate_crossfile

    c = s.crossfile
    points = completion_points(repos.items(), per_file=c.points_per_file, seed=s.seed)
    n_total = len(points)
    points = seeded_sample(points, c.points, s.seed, "crossfile")
    if not points:
        return skipped("no completion point uses a symbol defined in another file of a held-out repository")
    scores = evaluate_crossfile(model, tokenizer, repos, points, max_prompt_tokens=c.max_prompt_tokens,
                                max_new_tokens=c.max_new_tokens, retrieved_tokens=c.retrieved_tokens,
                                batch_size=s.batch_size, retrieval=c.retrieval)
    langs = {}
    for p in points:
        langs[p.language] = langs.get(p.language, 0) + 1
    return {"status": "ok", **{k: {m: v for m, v in d.items() if m != "n"} for k, d in scores.items()},
            "n": len(points), "n_total": n_total, "repos": len({p.repo for p in points}),
            "languages": dict(sorted(langs.items())),
            "contamination": {"note": "held-out repositories: never in the training split"}}


@task(name="perplexity", cache_policy=NO_CACHE)
def run_perplexity(model, tokenizer, s: EvaluateSettings, tokens_dir: str) -> dict:
    import numpy as np
    import torch

    from dscoder.train.data import TokenBlocks, read_meta
    from dscoder.train.loop import n_targets, token_loss_sum

    meta = read_meta(tokens_dir)
    if int(meta["vocab_size"]) != len(tokenizer):
        return skipped(f"validation tokens use a {meta['vocab_size']}-id vocabulary, the model's tokenizer has "
                       f"{len(tokenizer)}: not the pipeline's tokenizer")
    blocks = TokenBlocks(tokens_dir, "val", int(meta["seq_len"]))
    n = min(s.perplexity_sequences, len(blocks))
    if n == 0:
        return skipped("no whole validation block")
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, n, s.batch_size):
            batch = blocks.get(np.arange(start, min(n, start + s.batch_size)))
            total += float(token_loss_sum(model, batch, device))
            count += n_targets([batch])
    loss = total / max(count, 1)
    return {"status": "ok", "val_loss": loss, "perplexity": math.exp(min(loss, 700.0)), "sequences": n,
            "seq_len": blocks.seq_len, "tokens": count}


# ---------------------------------------------------------------------------- flow


@flow(name="evaluate", log_prints=True)
def evaluate(model: str, settings: EvaluateSettings, *, models_dir: Path = MODELS, repos_path: Path = REPOS_IN,
             tokens_dir: Path = TOKENS, matches_path: Path = MATCHES, reports_dir: Path = REPORTS) -> dict:
    import torch

    from dscoder.eval.generate import load_model, uses_chat
    from dscoder.eval.sandbox import probe_layers

    check(bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", model)), "--model", f"not a model name: {model!r}")
    timer = Timer()
    s = settings
    device = ("cuda" if torch.cuda.is_available() else "cpu") if s.device == "auto" else s.device
    lm, tokenizer = load_model(str(Path(models_dir) / model), device=device, dtype=s.dtype)
    chat = uses_chat(tokenizer, s.generation())
    matches = contam.load_matches(matches_path)
    timer.mark("load")
    want = set(s.benchmarks)
    results: dict[str, Any] = {}

    for name in ("humaneval", "mbpp", "gsm8k_pal"):
        if name not in want:
            continue
        path = {"mbpp": s.mbpp_path, "gsm8k_pal": s.gsm8k_path}.get(name, "installed")
        if path is None:
            results[name] = skipped(f"evaluate.{'mbpp' if name == 'mbpp' else 'gsm8k'}_path is null")
        elif not s.allow_execution:
            results[name] = skipped("evaluate.allow_execution is false: model-written code is never run without it")
        else:
            runner = {"humaneval": run_humaneval, "mbpp": run_mbpp, "gsm8k_pal": run_pal}[name]
            results[name] = runner(lm, tokenizer, s, matches)
        timer.mark(name)

    missing = missing_fim_sentinels(tokenizer)
    repos = None
    if want & {"repo_fim", "crossfile"}:
        if (Path(tokens_dir) / "val.docs.parquet").is_file():
            repos = heldout_files(Path(repos_path), Path(tokens_dir))
        timer.mark("heldout")
    for name in ("humaneval_fim", "repo_fim", "crossfile"):
        if name not in want:
            continue
        if name != "crossfile" and missing:
            results[name] = skipped(f"the tokenizer has no FIM sentinel token(s) {missing}")
        elif name == "humaneval_fim":
            results[name] = run_humaneval_fim(lm, tokenizer, s, matches)
        elif repos is None:
            results[name] = skipped(f"no held-out split: {Path(tokens_dir) / 'val.docs.parquet'} is missing")
        elif not repos:
            results[name] = skipped("the held-out repositories hold no code files")
        else:
            results[name] = (run_repo_fim if name == "repo_fim" else run_crossfile)(lm, tokenizer, s, repos)
        timer.mark(name)

    if "perplexity" in want:
        if s.perplexity_sequences == 0:
            results["perplexity"] = skipped("evaluate.perplexity_sequences is 0")
        elif not (Path(tokens_dir) / "meta.json").is_file():
            results["perplexity"] = skipped(f"no validation tokens in {tokens_dir}")
        else:
            results["perplexity"] = run_perplexity(lm, tokenizer, s, str(tokens_dir))
        timer.mark("perplexity")

    layers = probe_layers(s.sandbox_config()) if s.allow_execution and s.sandbox.isolation != "basic" else ()
    report = {
        "model": model,
        "model_dir": str(Path(models_dir) / model),
        "parameters": sum(p.numel() for p in lm.parameters()),
        "device": device,
        "chat": chat,
        "fim_sentinels": not missing,
        "allow_execution": s.allow_execution,
        "sandbox": {"isolation": s.sandbox.isolation, "namespace_layers": _layers(layers),
                    "workers": s.sandbox.workers, "timeout_s": s.sandbox.timeout_s},
        "benchmarks": results,
        "summary": summary(results),
        "timing": {"total_s": timer.total, **{f"{k}_s": v for k, v in timer.marks.items()}},
        "env": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch": torch.__version__},
    }
    write_json(Path(reports_dir) / f"{model}.json", report)
    publish_artifact(f"eval-{re.sub(r'[^a-z0-9-]', '-', model.lower())}", report)
    print(f"evaluate {model}: " + ", ".join(f"{b}.{k}={v:.4g}" for b, d in report["summary"].items()
                                            for k, v in d.items()))
    return report


def summary(results: dict) -> dict[str, Any]:
    """The headline figure of each benchmark that ran, and the same on its never-matched items
    (what `dvc metrics show` users scan)."""
    out: dict[str, Any] = {}
    for name, key in (("humaneval", "pass@1"), ("mbpp", "pass@1"), ("gsm8k_pal", "accuracy"),
                      ("humaneval_fim", "exact_match"), ("repo_fim", "exact_match"), ("perplexity", "perplexity")):
        r = results.get(name) or {}
        if key in r:
            out[name] = {key: r[key]}
            clean = (r.get("contamination") or {}).get("clean") or {}
            if key in clean:
                out[name][f"clean_{key}"] = clean[key]
    cf = results.get("crossfile") or {}
    for mode in ("in_file", "bm25"):
        if mode in cf:
            out[f"crossfile_{mode}"] = {"exact_match": cf[mode]["exact_match"],
                                        "edit_similarity": cf[mode]["edit_similarity"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="model directory name under artifacts/models/")
    ap.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = ap.parse_args()
    evaluate(args.model, build(EvaluateSettings, load_params(args.params).get("evaluate"), "evaluate"))


if __name__ == "__main__":
    main()
