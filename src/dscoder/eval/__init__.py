"""Evaluation (RECIPE.md §3): a sandbox for model-written code, HumanEval/MBPP with pass@k,
FIM single-line infilling, program-aided math and cross-file completion with BM25 retrieval."""
