"""The train/validation split of the token step, by repository (Sec. 3.1's held-out data).

A repository goes to validation when blake2b(split_seed, repo_id) as a fraction of 2^64 is
below `val_fraction`, so one repository never lands in both, even when repo_docs split it into
several documents (consecutive rows with one repo_id). With at least two repositories and
0 < val_fraction < 1, the split is then forced non-empty on both sides (the smallest hash
moves to val, the largest to train). The packer (`dscoder.tokens.pack`), the tokenizer stage's
held-out sample, the instruction data and the v1.5 mixture all draw their split here, so with
the same seed and fraction they hold out the same repositories.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

#: `pack.val_fraction` and `pack.split_seed` unless params say otherwise (PackSettings and the
#: tokenizer stage, which holds the same repositories out, both default to these).
VAL_FRACTION = 0.01
SPLIT_SEED = 0


def repo_unit(repo_id: str, seed: int) -> float:
    """A repository's position in [0, 1): the split compares it with val_fraction."""
    h = hashlib.blake2b(f"{seed}\0{repo_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2.0**64


def val_repo_ids(repo_ids: Iterable[str], val_fraction: float, seed: int) -> frozenset[str]:
    """The repositories of the validation split (see the module docstring)."""
    units = {r: repo_unit(r, seed) for r in set(repo_ids)}
    val = {r for r, u in units.items() if u < val_fraction}
    if len(units) >= 2 and 0.0 < val_fraction < 1.0:
        order = sorted(units, key=lambda r: (units[r], r))
        if not val:
            val.add(order[0])
        if len(val) == len(units):
            val.discard(order[-1])
    return frozenset(val)
