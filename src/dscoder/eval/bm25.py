"""Okapi BM25 over code chunks (Robertson & Zaragoza 2009), for cross-file retrieval.
Small on purpose: no BM25 package is among the project's dependencies."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")


def code_tokens(text: str) -> list[str]:
    """Identifiers (also split at '_' and camelCase humps) and numbers, lowercased."""
    out = []
    for tok in _TOKEN.findall(text):
        out.append(tok.lower())
        parts = [p for p in re.split(r"_|(?<=[a-z0-9])(?=[A-Z])", tok) if p]
        if len(parts) > 1:
            out += [p.lower() for p in parts]
    return out


class BM25:
    """Scores documents (token lists) against a query; k1, b as in the usual defaults."""

    def __init__(self, docs: Sequence[Sequence[str]], *, k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self.tf = [Counter(d) for d in docs]
        self.len = [len(d) for d in docs]
        self.avg = sum(self.len) / len(docs) if docs else 0.0
        df = Counter(t for c in self.tf for t in c)
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: Sequence[str]) -> list[float]:
        out = []
        for tf, n in zip(self.tf, self.len):
            s = 0.0
            norm = self.k1 * (1 - self.b + self.b * n / self.avg) if self.avg else self.k1
            for t in set(query):
                f = tf.get(t)
                if f:
                    s += self.idf[t] * f * (self.k1 + 1) / (f + norm)
            out.append(s)
        return out

    def top(self, query: Sequence[str], k: int) -> list[int]:
        """Indices of the k best documents, best first (ties: earlier document first)."""
        s = self.scores(query)
        return sorted(range(len(s)), key=lambda i: (-s[i], i))[:k]
