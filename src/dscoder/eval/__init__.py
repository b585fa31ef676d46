"""Evaluation (docs/recipe.md §3): a sandbox whose judge runs the tests outside the program's
interpreter, HumanEval/MBPP with pass@k, FIM single-line infilling, program-aided math,
cross-file completion with CrossCodeEval's metrics and BM25 retrieval, and the benchmark
registry (`benchmarks/`) the evaluate stage loops over."""
