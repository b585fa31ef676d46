"""Find a file's import references in one of two modes: `regex` (the paper's method, Sec. 2.2)
or `tree-sitter` (parse, then query import/include/using/require/use nodes).

Tree-sitter never raises on bad syntax: it returns a tree with ERROR nodes. A file whose tree
has errors keeps what the query found in the partial tree *plus* what the regexes find
(problem "parse_error"), so a syntax error or a grammar gap costs no import the paper's
method would have seen. A file whose grammar is missing or whose parse raises falls back to
the regexes alone ("no_grammar", "parse_failed"). Each such file is reported to the caller.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from dscoder.data.repo_docs.refs import Ref, names_list
from dscoder.data.repo_docs.rules import RULES, LanguageRules
from dscoder.data.treesitter import get_language, get_parser, grammar_name

MODES = ("regex", "tree-sitter")


class Extraction(NamedTuple):
    refs: list[Ref]
    """Distinct references of the file, sorted."""
    problem: str | None
    """None, or why tree-sitter was not (fully) used: parse_error, parse_failed, no_grammar."""


@functools.lru_cache(maxsize=None)
def _regexes(language: str) -> tuple[tuple[str, re.Pattern], ...]:
    return tuple((kind, re.compile(p, re.M)) for kind, p in RULES[language].regexes)


@functools.lru_cache(maxsize=None)
def _query(language: str, grammar: str):
    """The language's query compiled for one grammar (typescript and tsx share a query)."""
    from tree_sitter import Query

    lang = get_language(grammar)
    return None if lang is None else Query(lang, RULES[language].query)


def regex_refs(language: str, content: str) -> set[Ref]:
    rules = RULES[language]
    out: set[Ref] = set()
    for kind, pattern in _regexes(language):
        has_spec, has_names = "spec" in pattern.groupindex, "names" in pattern.groupindex
        for m in pattern.finditer(content):
            text = m.group("spec") if has_spec else m.group(0)
            names = names_list(m.group("names")) if has_names and m.group("names") else ()
            for spec in rules.normaliser(kind)(text):
                out.add(Ref(kind, spec, names))
    return out


def _tree_refs(rules: LanguageRules, matches) -> set[Ref]:
    # One reference per captured node; a query pattern matches once per imported name, so
    # names are gathered over all matches of the same node.
    groups: dict[tuple[str, int], tuple[bytes, set[bytes]]] = {}
    for _, caps in matches:
        names = caps.get("name", ())
        for cap, nodes in caps.items():
            if cap == "name" or cap.startswith("_"):
                continue
            for node in nodes:
                text, got = groups.setdefault((cap, node.start_byte), (node.text, set()))
                got.update(n.text for n in names)
    out: set[Ref] = set()
    for (kind, _), (text, names) in groups.items():
        name_t = tuple(sorted(n.decode("utf-8", "replace") for n in names))
        for spec in rules.normaliser(kind)(text.decode("utf-8", "replace")):
            out.add(Ref(kind, spec, name_t))
    return out


def extract_refs(content: str, language: str, path: str = "", mode: str = "tree-sitter") -> Extraction:
    """The import references of one file. Languages without rules have none."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    rules = RULES.get(language)
    if rules is None:
        return Extraction([], None)
    if mode == "regex" or rules.query is None:
        return Extraction(sorted(regex_refs(language, content)), None)
    grammar = grammar_name(language, path)
    parser, query = get_parser(grammar), _query(language, grammar)
    if parser is None or query is None:
        return Extraction(sorted(regex_refs(language, content)), "no_grammar")
    from tree_sitter import QueryCursor

    try:
        tree = parser.parse(content.encode("utf-8", "replace"))
        found = _tree_refs(rules, QueryCursor(query).matches(tree.root_node))
    except Exception:  # a grammar bug must not stop the run; the regexes still apply
        return Extraction(sorted(regex_refs(language, content)), "parse_failed")
    if tree.root_node.has_error:
        return Extraction(sorted(found | regex_refs(language, content)), "parse_error")
    return Extraction(sorted(found), None)
