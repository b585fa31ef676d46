"""CrossCodeEval's metrics (Ding et al. 2023, "CrossCodeEval: A Diverse and Multilingual
Benchmark for Cross-File Code Completion", Sec. 4): a prediction is cut to its first
statement with tree-sitter and its comments are removed, then compared with the reference:

- code exact match (EM): the two, each line stripped and blank lines dropped, are equal;
- edit similarity (ES): rapidfuzz's `fuzz.ratio` (0-100, the normalised Indel similarity
  their released scorer uses) of the same two strings;
- identifier exact match (ID-EM): the identifiers (tree-sitter leaves whose node type ends in
  `identifier`), in order, are equal;
- identifier F1 (ID-F1): F1 of the two sets of identifiers (both empty: 1).

Every function takes a dscoder language id; a language with no tree-sitter grammar is cut at
the first line and keeps its comments (`has_grammar` tells which). The statement cut: the first
top-level node tree-sitter parses without error; when it has none (an unfinished line such as
`def f(x):`), the first line.
"""

from __future__ import annotations

from typing import Sequence

from dscoder.data.treesitter import get_parser, grammar_name


def _parser(language: str):
    return get_parser(grammar_name(language))


def has_grammar(language: str) -> bool:
    return _parser(language) is not None


def first_statement(code: str, language: str) -> str:
    """The first statement of `code` (see the module docstring), indentation of its first
    line removed."""
    lines = code.lstrip("\n").split("\n")
    indent = lines[0][:len(lines[0]) - len(lines[0].lstrip())]
    body = []
    for line in lines:  # dedent by the first line; stop where the block it is in ends
        if line.strip() and not line.startswith(indent):
            break
        body.append(line[len(indent):] if line.startswith(indent) else line.strip())
    text = "\n".join(body)
    parser = _parser(language)
    first_line = body[0]
    if parser is None:
        return first_line
    data = text.encode("utf-8")
    root = parser.parse(data).root_node
    nodes = [n for n in root.named_children if "comment" not in n.type]
    if not nodes or nodes[0].has_error or nodes[0].is_missing:
        return first_line
    return data[:nodes[0].end_byte].decode("utf-8", "replace")


def _comment_spans(data: bytes, language: str) -> list[tuple[int, int]]:
    parser = _parser(language)
    if parser is None:
        return []
    spans, stack = [], [parser.parse(data).root_node]
    while stack:
        node = stack.pop()
        if "comment" in node.type:
            spans.append((node.start_byte, node.end_byte))
        else:
            stack.extend(node.children)
    return sorted(spans)


def remove_comments(code: str, language: str) -> str:
    """`code` without its comments, each line stripped, blank lines dropped."""
    data = code.encode("utf-8")
    out, at = [], 0
    for start, end in _comment_spans(data, language):
        out.append(data[at:start])
        at = max(at, end)
    out.append(data[at:])
    text = b"".join(out).decode("utf-8", "replace")
    return "\n".join(line.strip() for line in text.split("\n") if line.strip())


def normalize(code: str, language: str, *, cut: bool = True) -> str:
    """What EM and ES compare: first statement (when `cut`), comments removed."""
    return remove_comments(first_statement(code, language) if cut and code.strip() else code,
                           language)


def identifiers(code: str, language: str) -> list[str]:
    """Identifier leaves in source order (tree-sitter); empty without a grammar."""
    parser = _parser(language)
    if parser is None:
        return []
    data = code.encode("utf-8")
    out, stack = [], [parser.parse(data).root_node]
    while stack:
        node = stack.pop()
        if node.child_count == 0 and node.type.endswith("identifier"):
            out.append((node.start_byte, data[node.start_byte:node.end_byte].decode()))
        stack.extend(node.children)
    return [name for _, name in sorted(out)]


def identifier_f1(predicted: Sequence[str], reference: Sequence[str]) -> float:
    p, r = set(predicted), set(reference)
    if not p and not r:
        return 1.0
    tp = len(p & r)
    if tp == 0:
        return 0.0
    precision, recall = tp / len(p), tp / len(r)
    return 2 * precision * recall / (precision + recall)


def edit_similarity(a: str, b: str) -> float:
    """rapidfuzz's fuzz.ratio: 100 * (1 - Indel distance / (len(a) + len(b)))."""
    from rapidfuzz import fuzz

    return float(fuzz.ratio(a, b))


def score_one(prediction: str, reference: str, language: str) -> dict[str, float]:
    """The four metrics for one completion (the reference is cut the same way)."""
    pred, ref = normalize(prediction, language), normalize(reference, language)
    pred_ids, ref_ids = identifiers(pred, language), identifiers(ref, language)
    return {"exact_match": float(pred == ref), "edit_similarity": edit_similarity(pred, ref),
            "identifier_exact_match": float(pred_ids == ref_ids),
            "identifier_f1": identifier_f1(pred_ids, ref_ids)}


METRICS = ("exact_match", "edit_similarity", "identifier_exact_match", "identifier_f1")


def mean_scores(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {m: 0.0 for m in METRICS}
    return {m: sum(r[m] for r in rows) / len(rows) for m in METRICS}
