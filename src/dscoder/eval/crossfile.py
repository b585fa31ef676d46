"""Cross-file code completion (docs/recipe.md §3, paper Sec. 4.3, CrossCodeEval-style): completion
points in held-out repositories whose line uses a symbol defined in another file of the repo;
CrossCodeEval's exact match, edit similarity, identifier exact match and identifier F1 over
the prediction cut to one statement (dscoder.eval.code_metrics), without and with
BM25-retrieved cross-file context, for every language with a tree-sitter grammar.

Paper settings (Sec. 4.3): prompt at most 2048 tokens, 50 generated tokens, at most 512 tokens
of retrieved context."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from dscoder.eval import code_metrics
from dscoder.eval.generate import GenerationSettings, generate_completions

_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
COMMENT = {"python": "#", "ruby": "#", "shell": "#", "cython": "#", "perl": "#", "r": "#"}
# Node types (by suffix) whose `name` field, or identifier `declarator`, is a definition.
_DEFINING = ("definition", "declaration", "declarator", "item", "spec", "signature")


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
    """Names a file defines (functions, classes, methods, types, variables), read from its
    tree-sitter parse; empty for a language without a grammar."""
    parser = code_metrics._parser(language)
    if parser is None:
        return set()
    data = text.encode("utf-8")
    names, stack = set(), [parser.parse(data).root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.named_children)
        if not node.type.endswith(_DEFINING):
            continue
        for field in ("name", "declarator"):
            child = node.child_by_field_name(field)
            if child is not None and child.type.endswith("identifier"):
                names.add(data[child.start_byte:child.end_byte].decode("utf-8", "replace"))
    return {n for n in names if not (n.startswith("__") and n.endswith("__"))}  # not __init__


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
            if not code_metrics.has_grammar(lang):
                continue
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


def code_tokens(text: str) -> list[str]:
    """Identifiers (also split at '_' and camelCase humps) and numbers, lowercased: the terms
    BM25 matches."""
    out = []
    for tok in _TOKEN.findall(text):
        out.append(tok.lower())
        parts = [p for p in re.split(r"_|(?<=[a-z0-9])(?=[A-Z])", tok) if p]
        if len(parts) > 1:
            out += [p.lower() for p in parts]
    return out


def retrieve_context(point: CompletionPoint, files: Sequence[tuple[str, str, str]], tokenizer,
                     *, max_tokens: int = 512, chunk_lines: int = 10, query_lines: int = 10,
                     ) -> str:
    """BM25 (bm25s, Lucene scoring) over sliding windows of the repo's other files, queried
    with the last `query_lines` lines of the prefix; best chunks, each headed by its path as
    a comment, until `max_tokens` (Sec. 4.3: 512)."""
    import bm25s

    chunks = []
    for path, _, text in files:
        if path == point.path:
            continue
        rows = text.split("\n")
        for s in range(0, max(1, len(rows) - chunk_lines // 2), max(1, chunk_lines // 2)):
            chunks.append((path, "\n".join(rows[s:s + chunk_lines])))
    query = code_tokens("\n".join(point.prefix.split("\n")[-query_lines - 1:]))
    if not chunks or not query:
        return ""
    index = bm25s.BM25()
    index.index([code_tokens(c) or ["\0"] for _, c in chunks], show_progress=False)
    order, scores = index.retrieve([query], k=len(chunks), show_progress=False)
    mark = COMMENT.get(point.language, "//")
    out, used = [], 0
    for i, s in zip(order[0].tolist(), scores[0].tolist()):
        if s <= 0:
            break
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


def score(predictions: Sequence[str], points: Sequence[CompletionPoint]) -> dict:
    """CrossCodeEval's EM, ES, ID-EM and ID-F1 (dscoder.eval.code_metrics), overall and per
    language, plus each point's row."""
    rows = [code_metrics.score_one(pred, p.target, p.language)
            for pred, p in zip(predictions, points)]
    per_language = {}
    for lang in sorted({p.language for p in points}):
        mine = [r for r, p in zip(rows, points) if p.language == lang]
        per_language[lang] = {**code_metrics.mean_scores(mine), "n": len(mine)}
    return {**code_metrics.mean_scores(rows), "n": len(points), "per_language": per_language}


MODES = ("in_file", "bm25")


def crossfile_prompts(tokenizer, repos: dict[str, Sequence[tuple[str, str, str]]],
                      points: Sequence[CompletionPoint], mode: str, *, max_prompt_tokens: int = 2048,
                      max_new_tokens: int = 50, retrieved_tokens: int = 512) -> list[str]:
    """One prompt per point: `in_file` = the in-file prefix; `bm25` = retrieved chunks of the
    repository's other files, then the prefix; within `max_prompt_tokens - max_new_tokens`
    tokens, BOS included."""
    budget = max_prompt_tokens - max_new_tokens - 1
    return [fit_prompt(retrieve_context(p, repos[p.repo], tokenizer, max_tokens=retrieved_tokens)
                       if mode == "bm25" else "", p.prefix, tokenizer, budget) for p in points]


def evaluate_crossfile(model, tokenizer, repos: dict[str, Sequence[tuple[str, str, str]]],
                       points: Sequence[CompletionPoint], *, max_prompt_tokens: int = 2048,
                       max_new_tokens: int = 50, retrieved_tokens: int = 512,
                       batch_size: int = 8, retrieval: bool = True) -> dict[str, dict]:
    """Greedy completions without and (`retrieval`) with BM25 retrieval (Sec. 4.3 settings
    by default), scored per mode."""
    cfg = GenerationSettings(max_new_tokens=max_new_tokens, batch_size=batch_size,
                             max_prompt_tokens=max_prompt_tokens - max_new_tokens)
    out = {}
    for mode in MODES[:2 if retrieval else 1]:
        prompts = crossfile_prompts(tokenizer, repos, points, mode, max_prompt_tokens=max_prompt_tokens,
                                    max_new_tokens=max_new_tokens, retrieved_tokens=retrieved_tokens)
        out[mode] = score([c[0] for c in generate_completions(model, tokenizer, prompts, cfg)], points)
    return out
