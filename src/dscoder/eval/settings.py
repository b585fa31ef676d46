"""Settings of the evaluate stage (params.yaml `evaluate:`), one dataclass per part; each
default cites the paper where it comes from (Sec. 4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from dscoder.config import Settings, check
from dscoder.eval.sandbox import SandboxSettings

BENCHMARKS = ("humaneval", "humaneval_fim", "repo_fim", "crossfile", "mbpp", "gsm8k_pal", "perplexity")


@dataclass(frozen=True, kw_only=True)
class FimSettings(Settings):
    section: ClassVar[str] = "evaluate.fim"

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
    path: str | None = None
    """Single-line infilling benchmark (JSONL: prefix, suffix, middle, language); null = tasks
    from the held-out repositories' Python, Java and JavaScript files."""

    def validate(self) -> None:
        for name in ("humaneval_tasks", "repo_files"):
            check(getattr(self, name) >= 0, f"evaluate.fim.{name}", f"must be >= 0, got {getattr(self, name)}")
        for name in ("repo_tasks_per_file", "max_context_chars", "max_new_tokens"):
            check(getattr(self, name) >= 1, f"evaluate.fim.{name}", f"must be >= 1, got {getattr(self, name)}")
        check(self.path is None or Path(self.path).is_file(), "evaluate.fim.path", f"no such file {self.path!r}")


@dataclass(frozen=True, kw_only=True)
class CrossfileSettings(Settings):
    section: ClassVar[str] = "evaluate.crossfile"

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
    section: ClassVar[str] = "evaluate"

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
    mbpp_shots: int = 3
    """Worked examples before each MBPP prompt (Sec. 4.1: 3)."""
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    """The sandbox's own settings (dscoder.eval.sandbox.SandboxSettings): any of its fields."""
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
        check(0 <= self.mbpp_shots <= 3, "evaluate.mbpp_shots", f"must be in 0..3, got {self.mbpp_shots}")
        unknown = set(self.benchmark_names) - {"humaneval", "mbpp", "gsm8k"}
        check(not unknown, "evaluate.benchmark_names",
              f"unknown keys {sorted(unknown)} (known: humaneval, mbpp, gsm8k)")

    def decontam_name(self, benchmark: str) -> str:
        return self.benchmark_names.get(benchmark, benchmark)

    def generation(self, **overrides):
        """The decoding settings of this evaluation, with `overrides`, validated."""
        from dscoder.eval.generate import GenerationSettings

        base = dict(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size, num_samples=self.num_samples,
                    temperature=self.temperature, seed=self.seed, chat=self.chat)
        config = GenerationSettings(**{**base, **overrides})
        config.validate()
        return config
