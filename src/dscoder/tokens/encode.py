"""Token ids of long texts, encoded in pieces of bounded size with exactly the ids of the whole.

HF tokenizers holds an `encode_batch_fast` call's per-token and per-byte working data until
it returns, so the memory of encoding grows with the characters of one call. `encode_ids`
keeps each call within `ENCODE_GROUP_CHARS` characters: texts are grouped, and a longer text
is cut where its ids provably cannot change (`piece_bounds`, for the byte-level BPE pipeline
`cut_guard` admits; any other pipeline is encoded whole). Used by the packer
(dscoder.tokens.pack) for every file segment it encodes.
"""

from __future__ import annotations

import itertools
import re
import string
from typing import Sequence

import numpy as np
from tokenizers import models, pre_tokenizers

#: Characters per `encode_batch_fast` call, and the longest piece a text is encoded in
#: (`piece_bounds`). HF tokenizers holds per-token Encoding data (ids, type ids, token
#: strings, offsets, masks) and per-byte alignments during pre-tokenisation until the call
#: returns, and the Python lists of ids cost about 36 bytes a token, so one call's memory
#: grows with its characters. Measured on the heaviest batch at 14x the default corpus (2.06M
#: characters, a 707K-character segment): +141 MB peak at 2,000,000, +73 MB at 262,144,
#: +46 MB at 131,072, +29 MB at 65,536, same ids. Smaller calls cost CPU: the tokenizer's
#: freed memory goes back to the system after each call and is faulted in again (2.2x the
#: page faults at 262,144), about 2-4% of the pack stage on the default corpus, 5% at 131,072.
ENCODE_GROUP_CHARS = 262_144


def _char_class(chars: str) -> str:
    return "[" + "".join(re.escape(c) for c in chars) + "]"


_LETTERS, _DIGITS = string.ascii_letters, string.digits
_PUNCT = string.punctuation  # ASCII: none of these is \s, \p{L} or \p{N}
_SPACE = " \t\n\r"
#: Safe cuts of the GPT-2 split regex (see `piece_bounds`): zero-width matches at p between
#: text[p-1] and text[p], both ASCII of known class, text[p-1] not whitespace, not "'", and
#: text[p] of another class (or whitespace).
_CUT = re.compile("|".join(f"(?<={_char_class(a)})(?={_char_class(b)})" for a, b in (
    (_LETTERS, _DIGITS + _PUNCT + _SPACE),
    (_DIGITS, _LETTERS + _PUNCT + _SPACE),
    (_PUNCT.replace("'", ""), _LETTERS + _DIGITS + _SPACE))))


def cut_guard(tok) -> tuple[str, ...] | None:
    """The added tokens' contents (a cut keeps clear of them), or None when `tok` is not a
    pipeline `piece_bounds`'s rule is proved for: no normaliser, ByteLevel(add_prefix_space=False,
    use_regex=True) alone, a BPE model without dropout, no truncation or padding, and added
    tokens matched as plain strings (no lstrip, rstrip or single_word, whose matches depend
    on the neighbouring characters); then texts are encoded whole."""
    pre, model = tok.pre_tokenizer, tok.model
    plain = (tok.normalizer is None and isinstance(pre, pre_tokenizers.ByteLevel) and not pre.add_prefix_space
             and pre.use_regex and isinstance(model, models.BPE) and model.dropout is None
             and tok.truncation is None and tok.padding is None)
    added = tok.get_added_tokens_decoder().values()
    if not plain or any(a.lstrip or a.rstrip or a.single_word for a in added):
        return None
    return tuple(sorted({a.content for a in added if len(a.content) > 1}))


def piece_bounds(text: str, limit: int, guard: tuple[str, ...] | None) -> list[int]:
    r"""Bounds 0 = b[0] < ... < b[-1] = len(text) of the pieces `text` is encoded in: each
    piece ends at the safe cut nearest at or below `limit` characters past its start; a
    region without one runs on to the first safe cut after it (or to the end), so a piece
    exceeds `limit` only by such a run. `guard` None (`cut_guard`): no cuts.

    A cut p is safe when the ids of text[:p] and of text[p:], concatenated, are those of
    text. For the pipeline `cut_guard` admits, that holds when:
      1. no occurrence of an added token's content straddles p (any added token, special
         or not: a superset of those matched). Leftmost-longest matching then never sees a
         candidate across p, so the added tokens found in the pieces are those found in
         the whole, and p lies between two of them or inside one span of plain text that
         the pre-tokeniser splits;
      2. text[p-1] is an ASCII letter, digit or punctuation character other than "'", and
         text[p] an ASCII character of another of these classes or ASCII whitespace.
         Boundary: the alternatives of the GPT-2 regex (`'s|'t|'re|'ve|'m|'ll|'d`,
         ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`, `\s+(?!\S)`, `\s+`) consume two
         neighbours only within one class, a space before a token, or "'" before a letter,
         so no match covers both text[p-1] and text[p]. Right piece: the regex has no
         lookbehind or anchor, so its matches from p on read text[p:] only. Left piece:
         a match attempt ending at or before p reads past the cut only by trying to
         consume text[p] (which fails at the piece's end as it fails, or is not chosen,
         in the whole) or by the lookahead `(?!\S)` at p, which follows `\s+` ending at
         p, i.e. text[p-1] whitespace. So both pieces give the span's pre-tokens.
    BPE merges never cross a pre-token, so equal pre-tokens give equal ids. Only ASCII is
    classified, so the rule does not depend on the Unicode tables of the regex engine;
    code has such cuts every few characters (`foo(`, `x.`, `1;`, `)\n`)."""
    n = len(text)
    bounds = [0]
    if guard is None:
        return [0, n]
    while n - bounds[-1] > limit:
        p = _safe_cut(text, bounds[-1], bounds[-1] + limit, guard)
        if p is None:
            break
        bounds.append(p)
    bounds.append(n)
    return bounds


def _safe_cut(text: str, lo: int, hi: int, guard: tuple[str, ...]) -> int | None:
    """The largest safe cut p with lo < p <= hi, else the smallest above hi, else None:
    searched backwards in windows that double."""
    def clear(p: int) -> bool:  # no added token's content straddles p
        return all(text.find(c, max(0, p - len(c) + 1), p + len(c) - 1) < 0 for c in guard)

    end, width = hi, 256
    while end > lo:
        begin = max(lo + 1, end - width)
        # endpos end + 1: the lookahead at a cut p <= end sees text[p]
        for m in reversed(list(_CUT.finditer(text, begin, end + 1))):
            if clear(m.start()):
                return m.start()
        end, width = begin - 1, width * 2
    return next((m.start() for m in _CUT.finditer(text, hi + 1) if clear(m.start())), None)


def encode_ids(tok, texts: Sequence[str], limit: int = ENCODE_GROUP_CHARS) -> list[np.ndarray]:
    """Token ids of each text (uint32): texts cut into pieces of at most `limit` characters
    where that leaves the ids unchanged (`piece_bounds`), encoded in groups of at most
    `limit` characters (a piece that runs on beyond it is a group of its own), so that one
    `encode_batch_fast` call's memory stays bounded however long a text is."""
    guard = cut_guard(tok)
    spans = [(k, a, b) for k, text in enumerate(texts)
             for a, b in itertools.pairwise(piece_bounds(text, limit, guard))]
    parts: list[list[np.ndarray]] = [[] for _ in texts]
    start = 0
    while start < len(spans):
        stop, size = start, 0
        while stop < len(spans) and (stop == start or size + spans[stop][2] - spans[stop][1] <= limit):
            size += spans[stop][2] - spans[stop][1]
            stop += 1
        group = spans[start:stop]
        encs = tok.encode_batch_fast([texts[k][a:b] for k, a, b in group], add_special_tokens=False)
        for (k, _, _), e in zip(group, encs):
            parts[k].append(np.asarray(e.ids, np.uint32))
        del encs
        start = stop
    return [p[0] if len(p) == 1 else np.concatenate(p) for p in parts]
