"""Tree-sitter parsers for dscoder language ids, cached per process.

Grammars come from tree-sitter-language-pack 0.13.0, which ships them built in (newer
releases download grammars on first use, which fails offline).
"""

from __future__ import annotations

import functools

#: dscoder language id → grammar name where they differ.
GRAMMAR_NAMES = {
    "shell": "bash", "common-lisp": "commonlisp", "emacs-lisp": "elisp", "makefile": "make",
    "protocol-buffer": "proto", "assembly": "asm", "restructuredtext": "rst", "tex": "latex",
    "visual-basic": "vb", "standard-ml": "sml", "xslt": "xml",
}


def grammar_name(language: str, path: str = "") -> str:
    if language == "typescript" and path.endswith(".tsx"):
        return "tsx"
    return GRAMMAR_NAMES.get(language, language)


@functools.lru_cache(maxsize=None)
def get_parser(grammar: str):
    """A parser for a grammar name, or None when the pack has no such grammar."""
    from tree_sitter_language_pack import get_parser as _get

    try:
        return _get(grammar)
    except LookupError:
        return None


@functools.lru_cache(maxsize=None)
def get_language(grammar: str):
    from tree_sitter_language_pack import get_language as _get

    try:
        return _get(grammar)
    except LookupError:
        return None


def error_share(source: bytes, grammar: str) -> float | None:
    """Share of the source's bytes covered by ERROR or MISSING nodes; None if no grammar."""
    parser = get_parser(grammar)
    if parser is None:
        return None
    tree = parser.parse(source)
    root = tree.root_node
    if not root.has_error:
        return 0.0
    bad = 0
    stack = [root]
    while stack:  # visit only subtrees that contain an error
        node = stack.pop()
        if node.is_error:
            bad += max(node.end_byte - node.start_byte, 1)
        elif node.is_missing:
            bad += 1
        elif node.has_error:
            stack.extend(node.children)
    return min(1.0, bad / max(len(source), 1))
