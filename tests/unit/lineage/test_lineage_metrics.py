"""Per-language metrics sum to the stage totals."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dscoder.lineage import metrics as m

LANGS = ["python", "c", "markdown", "yaml"]


@st.composite
def repos(draw):
    out = []
    for i in range(draw(st.integers(1, 6))):
        text, files = draw(st.text(max_size=5)), []  # a prefix before the first block
        for j in range(draw(st.integers(0, 4))):
            body = draw(st.text(min_size=1, max_size=30))
            start = len(text)
            text += body
            files.append({"path": f"f{j}", "language": draw(st.sampled_from(LANGS)), "start": start,
                          "end": len(text) - draw(st.integers(0, min(2, len(body) - 1))), "header_chars": 0})
        out.append({"repo_id": f"r{i}", "text": text, "files": files})
    return out


@settings(max_examples=60, deadline=None)
@given(repos(), st.data())
def test_dedup_by_language_sums_to_totals(rows, data):
    removed = {r["repo_id"] for r in rows if data.draw(st.booleans())}
    bl = m.dedup_by_language(rows, removed)
    assert m.totals(bl, "repos_in") == len(rows)
    assert m.totals(bl, "repos_removed") == len(removed)
    assert m.totals(bl, "bytes_in") == sum(len(r["text"].encode()) for r in rows)
    assert m.totals(bl, "bytes_removed") == sum(len(r["text"].encode()) for r in rows if r["repo_id"] in removed)


def test_decontam_by_language_counts_files_once_and_every_hit():
    matches = pa.table({"repo_id": ["a", "a", "b"], "path": ["x.py", "x.py", "y.c"], "language": ["python", "python", "c"],
                        "size": [10, 10, 7], "benchmark": ["humaneval", "mbpp", "humaneval"]})
    bl = m.decontam_by_language(matches, {"python": 5, "c": 2})
    assert bl["python"] == {"bytes_removed": 10, "files_in": 5, "files_removed": 1, "hits": 2}
    assert m.totals(bl, "bytes_removed") == 17 and m.totals(bl, "files_removed") == 2 and m.totals(bl, "hits") == 3


def test_pack_by_language_sums_to_n_tokens_and_cuts_the_tail():
    seg = pa.table({"doc": [0, 0, 1, 1], "file": [0, -1, 0, 1], "language": ["python", None, "c", "python"],
                    "token_start": [1, 5, 9, 12], "token_end": [5, 6, 12, 20]})
    bl = m.pack_by_language(seg, n_tokens=16)
    assert m.totals(bl, "tokens") == 16
    assert bl["python"]["tokens"] == 4 + 4 and bl["c"]["tokens"] == 3 and bl[m.NONE]["tokens"] == 1
    assert bl[m.SPECIAL]["tokens"] == 16 - 12 and bl["python"]["files"] == 2
