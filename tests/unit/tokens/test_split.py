"""The train/validation split by repository (dscoder.tokens.split)."""

from __future__ import annotations

from dscoder.tokens.split import repo_unit, val_repo_ids


def test_split_is_forced_non_empty_on_both_sides():
    assert len(val_repo_ids(["a", "b"], 1e-9, 0)) == 1
    assert len(val_repo_ids(["a", "b"], 1 - 1e-9, 0)) == 1
    assert val_repo_ids(["a"], 0.5, 0) in (frozenset(), frozenset({"a"}))  # one repository: no forcing


def test_split_follows_the_fraction_and_not_the_order():
    ids = [f"r{i}" for i in range(2000)]
    val = val_repo_ids(ids, 0.1, 7)
    assert abs(len(val) - 200) < 60 and val == val_repo_ids(reversed(ids), 0.1, 7)
    assert val == {r for r in ids if repo_unit(r, 7) < 0.1}
    assert val != val_repo_ids(ids, 0.1, 8)  # the seed draws another split
