"""FIM: round trip in every mode, layouts, rate, determinism."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dscoder.tokens import fim
from dscoder.config import ConfigError
from dscoder.tokens.fim import PackFimSettings, Piece, Sentinel

MODES = [PackFimSettings(rate=1.0, mode="psm"), PackFimSettings(rate=1.0, mode="spm"),
         PackFimSettings(rate=1.0, mode="psm", spm_share=0.5), PackFimSettings(rate=1.0, mode="msp", msp_spans=1),
         PackFimSettings(rate=1.0, mode="msp", msp_spans=5), PackFimSettings(rate=0.5)]


@settings(max_examples=150, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=80), doc_id=st.text(max_size=8),
       seed=st.integers(0, 2**32), which=st.integers(0, len(MODES) - 1))
def test_undo_recovers_the_document(text, doc_id, seed, which):
    p = PackFimSettings(**{**MODES[which].to_dict(), "seed": seed})
    mode, items = fim.transform(len(text), doc_id, p)
    assert fim.undo(fim.render(items, text)) == text
    # The pieces partition the document: every character is in exactly one piece.
    pieces = sorted((x.start, x.end) for x in items if isinstance(x, Piece))
    assert pieces[0][0] == 0 and pieces[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    assert mode in ("none", "psm", "spm", "msp")


def _shape(items):
    return [x if isinstance(x, str) else x.role for x in items]


def test_layouts():
    _, psm = fim.transform(100, "a", PackFimSettings(rate=1.0))
    assert _shape(psm) == ["fim_begin", "prefix", "fim_hole", "suffix", "fim_end", "middle"]
    _, spm = fim.transform(100, "a", PackFimSettings(rate=1.0, mode="spm"))
    # StarCoder/Code Llama SPM: [PRE, SUF] suffix [MID] prefix middle
    assert _shape(spm) == ["fim_begin", "fim_hole", "suffix", "fim_end", "prefix", "middle"]
    _, msp = fim.transform(100, "a", PackFimSettings(rate=1.0, mode="msp", msp_spans=2))
    assert _shape(msp) == ["fim_begin", "context", "msp_0", "context", "msp_1", "context", "fim_end",
                           "msp_0", "span", "msp_1", "span"]
    mode, none = fim.transform(100, "a", PackFimSettings(rate=0.0))
    assert mode == "none" and none == [Piece("whole", 0, 100)]
    text = "abcdefghij"
    rendered = fim.render(psm, text * 10)
    assert isinstance(rendered[0], Sentinel) and not isinstance(rendered[1], Sentinel)


def test_measured_share_is_within_tolerance_of_rate():
    n = 4000
    for rate in (0.1, 0.5, 0.9):
        share = sum(fim.transform(50, f"repo-{i}", PackFimSettings(rate=rate))[0] != "none" for i in range(n)) / n
        assert abs(share - rate) < 4 * math.sqrt(rate * (1 - rate) / n), (rate, share)
    modes = [fim.transform(50, f"repo-{i}", PackFimSettings(rate=1.0, spm_share=0.3))[0] for i in range(n)]
    assert abs(modes.count("spm") / n - 0.3) < 4 * math.sqrt(0.21 / n)
    assert set(modes) == {"psm", "spm"}


def test_deterministic_per_seed_and_doc_id():
    p = PackFimSettings(rate=1.0)
    assert fim.transform(1000, "x", p) == fim.transform(1000, "x", p)
    draws = {tuple(fim.transform(1000, "x", PackFimSettings(rate=1.0, seed=s))[1][1:2]) for s in range(20)}
    assert len(draws) > 10  # the seed matters
    cuts = [fim.transform(1000, f"d{i}", p)[1][1].end for i in range(200)]
    assert min(cuts) < 100 and max(cuts) > 900  # cut points spread over the document


def test_undo_rejects_unknown_layouts():
    with pytest.raises(ValueError):
        fim.undo([Sentinel("fim_hole"), "x", Sentinel("fim_begin")])
    with pytest.raises(ValueError):
        fim.undo(["text", Sentinel("fim_begin"), "x", Sentinel("fim_hole"), "y", Sentinel("fim_end")])


@pytest.mark.parametrize("kwargs,name", [({"rate": 1.5}, "fim.rate"), ({"mode": "pms"}, "fim.mode"),
                                         ({"mode": "msp", "spm_share": 0.5}, "fim.spm_share"),
                                         ({"msp_spans": 17}, "fim.msp_spans")])
def test_bad_params_name_the_parameter(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        PackFimSettings(**kwargs).validate()


def test_complete_examples_counts_whole_examples_per_window():
    from dscoder.tokens.tokenizer import SPECIAL_IDS as S

    import numpy as np

    b, h, e, eos, bos, x = S["fim_begin"], S["fim_hole"], S["fim_end"], S["eos"], S["bos"], 500
    windows = [
        [bos, b, x, h, x, e, x, eos],        # PSM, whole
        [b, h, x, e, x, x, eos, x],          # SPM, whole
        [x, x, x, x, x, b, x, h],            # begins here, ends in the next window
        [x, e, x, eos, x, x, x, x],          # ... so neither window holds it whole
        [b, x, h, x, e, x, x, x],            # no EOS after the middle
        [b, x, h, bos, e, x, eos, x],        # BOS between the sentinels
        [b, x, S["msp_0"], x, e, S["msp_0"], x, eos],  # MSP: span sentinels are holes
        [b, x, e, x, eos, x, x, x],          # no hole at all
    ]
    tokens = np.array(sum(windows, []) + [b, h, e], dtype=np.uint16)  # a partial tail window
    got = fim.complete_examples(tokens, 8, S)
    assert got.tolist() == [True, True, False, False, False, False, True, False]
