"""Cross-file code completion (RECIPE.md §3, paper Sec. 4.3, CrossCodeEval-style): completion
points in held-out repositories whose line uses a symbol defined in another file of the repo;
exact match and edit similarity, without and with BM25-retrieved cross-file context.

Paper settings (Sec. 4.3): prompt at most 2048 tokens, 50 generated tokens, at most 512 tokens
of retrieved context."""

from __future__ import annotations

import ast
import random
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from dscoder.eval.bm25 import BM25, code_tokens
from dscoder.eval.generate import GenerationConfig, generate_completions

# Definitions per language: a cheap regex stands in for a parser outside Python.
_DEF_PATTERNS = {
    "python": None,  # ast
    "javascript": r"(?:function|class|const|let|var)\s+([A-Za-z_$][\w$]*)",
    "typescript": r"(?:function|class|interface|type|const|let|var|enum)\s+([A-Za-z_$][\w$]*)",
    "java": r"(?:class|interface|enum)\s+([A-Za-z_]\w*)|\b[\w<>\[\]]+\s+([a-z]\w*)\s*\(",
    "go": r"(?:func(?:\s*\([^)]*\))?|type)\s+([A-Za-z_]\w*)",
    "rust": r"(?:fn|struct|enum|trait|type)\s+([A-Za-z_]\w*)",
}
_IDENT = re.compile(r"[A-Za-z_]\w*")
COMMENT = {"python": "#", "ruby": "#", "shell": "#"}


@dataclass(frozen=True)
class CompletionPoint:
    task_id: str
    repo: str
    path: str
    language: str
    prefix: str
    """In-file code before the line to complete."""
    target: str
    """The line to complete."""
    symbols: tuple[str, ...]
    """Cross-file symbols the line uses."""


def defined_names(text: str, language: str) -> set[str]:
    """Top-level names a file defines (empty set if it does not parse)."""
    if language == "python":
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            return set()
        names = set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        return names
    pattern = _DEF_PATTERNS.get(language)
    if pattern is None:
        return set()
    return {g for m in re.finditer(pattern, text) for g in m.groups() if g}


def completion_points(repos: Iterable[tuple[str, Sequence[tuple[str, str, str]]]], *,
                      per_file: int = 2, min_prefix_lines: int = 3, seed: int = 0,
                      min_symbol_len: int = 4) -> list[CompletionPoint]:
    """Points from repos given as (repo name, [(path, language, text), ...]). A line qualifies
    when it uses a name defined in another file of the repo and not in its own file. Up to
    `per_file` points per file, chosen with a seeded RNG."""
    points = []
    for repo, files in repos:
        defs = {path: defined_names(text, lang) for path, lang, text in files}
        for path, lang, text in files:
            elsewhere = set().union(*(d for p, d in defs.items() if p != path)) - defs[path]
            elsewhere = {n for n in elsewhere if len(n) >= min_symbol_len}
            lines = text.split("\n")
            candidates = []
            for i, line in enumerate(lines):
                if i < min_prefix_lines or not line.strip():
                    continue
                stripped = line.lstrip()
                if stripped.startswith(("import ", "from ", "#", "//")):
                    continue
                used = tuple(sorted({t for t in _IDENT.findall(line) if t in elsewhere}))
                if used:
                    candidates.append((i, used))
            rng = random.Random(f"{seed}:{repo}:{path}")
            for i, used in sorted(rng.sample(candidates, min(per_file, len(candidates)))):
                points.append(CompletionPoint(f"{repo}/{path}/L{i}", repo, path, lang,
                                              "\n".join(lines[:i]) + "\n", lines[i], used))
    return points


def retrieve_context(point: CompletionPoint, files: Sequence[tuple[str, str, str]], tokenizer,
                     *, max_tokens: int = 512, chunk_lines: int = 10, query_lines: int = 10,
                     ) -> str:
    """BM25 over sliding windows of the repo's other files, queried with the last
    `query_lines` lines of the prefix; best chunks, each headed by its path as a comment,
    until `max_tokens` (Sec. 4.3: 512)."""
    chunks = []
    for path, _, text in files:
        if path == point.path:
            continue
        rows = text.split("\n")
        for s in range(0, max(1, len(rows) - chunk_lines // 2), max(1, chunk_lines // 2)):
            chunks.append((path, "\n".join(rows[s:s + chunk_lines])))
    if not chunks:
        return ""
    bm25 = BM25([code_tokens(c) for _, c in chunks])
    query = code_tokens("\n".join(point.prefix.split("\n")[-query_lines - 1:]))
    mark = COMMENT.get(point.language, "//")
    out, used = [], 0
    for i in bm25.top(query, len(chunks)):
        path, chunk = chunks[i]
        piece = "".join(f"{mark} {line}\n" for line in
                        [f"the below code fragment can be found in: {path}"] + chunk.split("\n"))
        n = len(tokenizer(piece, add_special_tokens=False)["input_ids"])
        if used + n > max_tokens:
            break
        out.append(piece)
        used += n
    return "".join(out)


def fit_prompt(context: str, prefix: str, tokenizer, budget: int) -> str:
    """context + prefix within `budget` tokens: the retrieved context stays whole (it was
    already capped), the in-file prefix loses lines from its top."""
    count = lambda t: len(tokenizer(t, add_special_tokens=False)["input_ids"])  # noqa: E731
    lines = prefix.split("\n")
    lo, hi = 0, len(lines)  # smallest start line that fits
    while lo < hi:
        mid = (lo + hi) // 2
        if count(context + "\n".join(lines[mid:])) <= budget:
            hi = mid
        else:
            lo = mid + 1
    return context + "\n".join(lines[lo:])


def edit_similarity(a: str, b: str) -> float:
    """1 - Levenshtein(a, b) / max(len): CrossCodeEval's edit similarity, in [0, 1]."""
    if not a and not b:
        return 1.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1.0 - prev[-1] / max(len(a), len(b))


def score(predictions: Sequence[str], points: Sequence[CompletionPoint]) -> dict[str, float]:
    """Exact match and edit similarity of each prediction's first line vs the target line."""
    if not points:
        return {"exact_match": 0.0, "edit_similarity": 0.0, "n": 0}
    em = es = 0.0
    for pred, p in zip(predictions, points):
        line = pred.split("\n", 1)[0].strip()
        em += line == p.target.strip()
        es += edit_similarity(line, p.target.strip())
    return {"exact_match": em / len(points), "edit_similarity": es / len(points),
            "n": len(points)}


def evaluate_crossfile(model, tokenizer, repos: dict[str, Sequence[tuple[str, str, str]]],
                       points: Sequence[CompletionPoint], *, max_prompt_tokens: int = 2048,
                       max_new_tokens: int = 50, retrieved_tokens: int = 512,
                       batch_size: int = 8, retrieval: bool = True) -> dict[str, dict[str, float]]:
    """Greedy completions without and (`retrieval`) with BM25 retrieval (Sec. 4.3 settings
    by default)."""
    cfg = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=batch_size,
                           max_prompt_tokens=max_prompt_tokens - max_new_tokens)
    out = {}
    for name, use_retrieval in (("in_file", False), ("bm25", True))[:2 if retrieval else 1]:
        prompts = []
        for p in points:
            ctx = retrieve_context(p, repos[p.repo], tokenizer, max_tokens=retrieved_tokens) \
                if use_retrieval else ""
            prompts.append(fit_prompt(ctx, p.prefix, tokenizer,
                                      max_prompt_tokens - max_new_tokens))
        preds = [c[0] for c in generate_completions(model, tokenizer, prompts, cfg, stop=["\n"])]
        out[name] = score(preds, points)
    return out
