"""Word tokens and stable 64-bit word / n-gram hashes, shared by near-dedup and decontamination.

Tokenization (one definition for both steps, so it is documented once):

- the text is encoded as UTF-8 (unencodable lone surrogates become "?");
- a *word* is a maximal run of bytes in ``[A-Za-z0-9_]`` or ``>= 0x80``. This is StarCoder's
  near-dedup split (``[^A-Za-z_0-9]`` separates tokens) except that non-ASCII bytes stay
  inside words, so Chinese or accented text (docs/recipe.md §1: 3% Chinese) is not erased;
  non-ASCII punctuation therefore sticks to its neighbours, which only makes matching stricter;
- punctuation, operators and whitespace only separate words, so formatting changes
  (re-indentation, ``a+b`` vs ``a + b``) do not change the n-grams;
- ``lowercase=True`` folds ASCII A-Z to a-z (decontamination uses it; dedup is case-sensitive
  because identifiers are case-sensitive in most languages).

Hashes are computed by our own code, not Python's salted ``hash()``: a word hashes to the first
8 bytes of its BLAKE2b digest (computed once per distinct word of a document, which is why this
runs at tens of MB/s in pure Python), and an n-gram to a polynomial over its word hashes
followed by the MurmurHash3 64-bit finalizer. Same text, same hashes, on every machine and run.
"""

from __future__ import annotations

import hashlib
import string

import numpy as np

_WORD_BYTES = frozenset((string.ascii_letters + string.digits + "_").encode()) | frozenset(range(0x80, 0x100))
_NON_WORD = bytes(b for b in range(256) if b not in _WORD_BYTES)
_KEEP_CASE = bytes.maketrans(_NON_WORD, b" " * len(_NON_WORD))
_FOLD_CASE = bytes.maketrans(
    _NON_WORD + string.ascii_uppercase.encode(), b" " * len(_NON_WORD) + string.ascii_lowercase.encode()
)

_K = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier (golden ratio) for the n-gram polynomial
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


def words(text: str, *, lowercase: bool = False) -> list[bytes]:
    """Split `text` into word tokens (UTF-8 bytes), as described in the module docstring."""
    data = text.encode("utf-8", "replace")
    return data.translate(_FOLD_CASE if lowercase else _KEEP_CASE).split()


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: an avalanching bijection on uint64 (wraps on purpose)."""
    h = h ^ (h >> _S33)
    h = h * _M1
    h = h ^ (h >> _S33)
    h = h * _M2
    return h ^ (h >> _S33)


def word_hashes(tokens: list[bytes]) -> np.ndarray:
    """uint64 hash of each token: BLAKE2b-64 of its bytes, computed once per distinct token."""
    if not tokens:
        return np.zeros(0, dtype=np.uint64)
    distinct = dict.fromkeys(tokens)
    index = dict(zip(distinct, range(len(distinct))))
    ids = np.fromiter(map(index.__getitem__, tokens), dtype=np.int64, count=len(tokens))
    digests = b"".join(hashlib.blake2b(t, digest_size=8).digest() for t in distinct)
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)[ids]


def ngram_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """uint64 hash of every run of `n` consecutive word hashes (empty if fewer than `n` words)."""
    m = len(hashes) - n + 1
    if n < 1 or m <= 0:
        return np.zeros(0, dtype=np.uint64)
    h = hashes[:m].copy()
    for i in range(1, n):
        h *= _K
        h += hashes[i : i + m]
    # The length enters the hash so that a 3-gram and a 9-gram can never collide by design.
    return fmix64(h ^ np.uint64(n))


def text_ngram_hashes(text: str, n: int, *, lowercase: bool = False) -> np.ndarray:
    """`ngram_hashes` of the words of `text`."""
    return ngram_hashes(word_hashes(words(text, lowercase=lowercase)), n)
