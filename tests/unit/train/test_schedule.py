"""The LR schedule matches docs/recipe.md §2 (Sec. 3.4) at its breakpoints."""

import math

from hypothesis import given
from hypothesis import strategies as st

from dscoder.train import TrainSettings, final_lr, lr_at

PEAK = 5.3e-4  # Table 2, 1.3B


def cfg(**kw) -> TrainSettings:
    return TrainSettings(**{"lr": PEAK, "warmup_steps": 2000, "max_steps": 100_000, "schedule": "step3", **kw})


def test_warmup_is_linear_from_zero_to_peak():
    c = cfg()
    assert lr_at(c, 0) == PEAK / 2000
    assert math.isclose(lr_at(c, 999), PEAK * 1000 / 2000)
    assert lr_at(c, 1999) == PEAK
    assert lr_at(c, 2000) == PEAK


def test_step3_drops_at_80_and_90_percent():
    c = cfg()
    assert lr_at(c, 79_999) == PEAK
    assert math.isclose(lr_at(c, 80_000), PEAK * math.sqrt(0.1))  # x sqrt(1/10) ≈ 0.316
    assert math.isclose(lr_at(c, 89_999), PEAK * 0.316227766, rel_tol=1e-6)
    assert math.isclose(lr_at(c, 90_000), PEAK * 0.1)
    assert math.isclose(final_lr(c), PEAK * 0.1)  # Sec. 3.6 continues with this LR


def test_cosine_runs_from_peak_to_min_ratio():
    c = cfg(schedule="cosine", warmup_steps=100, max_steps=1000, lr=1e-5, min_lr_ratio=0.1)  # Sec. 3.7
    assert lr_at(c, 99) == 1e-5
    assert math.isclose(lr_at(c, 100), 1e-5)
    assert math.isclose(lr_at(c, 999), 1e-6)
    assert math.isclose(lr_at(c, 100 + 899 // 2), 0.55e-5, rel_tol=2e-3)


def test_constant_schedule():
    c = cfg(schedule="constant", warmup_steps=0)
    assert {lr_at(c, s) for s in (0, 50_000, 99_999)} == {PEAK}


@given(
    schedule=st.sampled_from(["step3", "cosine", "constant"]),
    warmup=st.integers(0, 50),
    max_steps=st.integers(1, 400),
)
def test_after_warmup_never_increases_and_stays_positive(schedule, warmup, max_steps):
    c = cfg(schedule=schedule, warmup_steps=warmup, max_steps=max_steps)
    lrs = [lr_at(c, s) for s in range(max_steps)]
    assert all(0 < x <= PEAK for x in lrs)
    tail = lrs[warmup:]
    assert all(b <= a + 1e-18 for a, b in zip(tail, tail[1:]))
