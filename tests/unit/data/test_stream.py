"""The streaming step pattern: shard plans by bytes, bounded batches, a layout that ignores sharding."""

from __future__ import annotations

import hashlib
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dscoder.data import stream
from dscoder.data.stream import Batch, PartWriter, concat_parts, iter_batches, iter_groups, plan_shards, row_nbytes

SCHEMA = pa.schema([("repo_id", pa.string()), ("path", pa.string()), ("content", pa.string())])


def _rows(n_repos: int = 40, seed: int = 0, giant: int = 7) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for r in range(n_repos):
        n_files = 60 if r == giant else rng.randint(1, 6)
        for f in range(n_files):
            rows.append({"repo_id": f"r{r:03d}", "path": f"f{f}.py", "content": "x" * rng.randint(10, 3000)})
    return rows


def _write(path, rows, groups_of: int = 50) -> None:
    with PartWriter(path, SCHEMA) as w:
        for i in range(0, len(rows), groups_of):
            w.write(rows[i:i + groups_of])


def _md5(p) -> str:
    return hashlib.md5(open(p, "rb").read()).hexdigest()


@pytest.fixture
def small_groups(monkeypatch):
    """Small row groups, so the tests cross many row-group boundaries."""
    monkeypatch.setattr(stream, "ROW_GROUP_BYTES", 20_000)
    monkeypatch.setattr(stream, "ROW_GROUP_ROWS", 17)


def test_plan_covers_every_row_once_on_group_boundaries(tmp_path, small_groups):
    rows = _rows()
    src = tmp_path / "in.parquet"
    _write(src, rows)
    for shards, shard_bytes in [(1, 10**9), (4, 10**9), (3, 20_000), (50, 1)]:
        plan = plan_shards(src, shards=shards, shard_bytes=shard_bytes)
        assert plan[0].start == 0 and plan[-1].stop == len(rows)
        assert all(a.stop == b.start for a, b in zip(plan, plan[1:]))
        ids = [r["repo_id"] for r in rows]
        for s in plan:  # never splits a repository
            assert s.start == 0 or ids[s.start] != ids[s.start - 1]
        assert sum(s.nbytes for s in plan) == int(row_nbytes(pa.Table.from_pylist(rows, schema=SCHEMA)).sum())
        assert len(plan) >= min(shards, 40)


def test_giant_repository_gets_its_own_shard(tmp_path, small_groups):
    rows = _rows(giant=7)
    src = tmp_path / "in.parquet"
    _write(src, rows)
    plan = plan_shards(src, shards=8, shard_bytes=10**9)
    ids = [r["repo_id"] for r in rows]
    giant = [s for s in plan if "r007" in ids[s.start:s.stop]]
    assert len(giant) == 1 and set(ids[giant[0].start:giant[0].stop]) == {"r007"}
    assert stream.largest_first(plan)[0] == giant[0]


def test_batches_bounded_whole_groups_and_lossless(tmp_path, small_groups):
    rows = _rows()
    src = tmp_path / "in.parquet"
    _write(src, rows)
    budget = 12_000
    max_row = max(len(r["content"]) + len(r["path"]) + len(r["repo_id"]) for r in rows)
    batches = list(iter_batches(src, batch_bytes=budget))
    assert pa.concat_tables([b.table for b in batches]).to_pylist() == rows
    for b in batches:
        size = int(row_nbytes(b.table).sum())
        assert size <= budget + max_row
        ids = b.table.column("repo_id").to_pylist()
        if len(set(ids)) > 1:  # several groups: only the first may be the tail of a piece
            assert not b.continues
    pieces = [b for b in batches if b.continues]
    assert pieces, "the giant repository must arrive in pieces"
    groups = list(iter_groups(batches))
    whole = {}
    for t, first, last in groups:
        rid = t.column("repo_id")[0].as_py()
        whole.setdefault(rid, []).append((first, last))
    assert whole["r007"][0][0] and whole["r007"][-1][1]
    assert not any(first for first, _ in whole["r007"][1:])
    assert all(v == [(True, True)] for k, v in whole.items() if k != "r007")


def test_concat_bytes_do_not_depend_on_the_parts(tmp_path, small_groups):
    rows = _rows()
    digests = set()
    for n_parts in (1, 3, 7):
        parts = []
        k = -(-len(rows) // n_parts)
        for i in range(n_parts):
            p = tmp_path / f"p{n_parts}-{i}.parquet"
            _write(p, rows[i * k:(i + 1) * k], groups_of=5 + i)
            parts.append(p)
        out = tmp_path / f"out{n_parts}.parquet"
        assert concat_parts(parts, out, SCHEMA) == len(rows)
        assert pq.read_table(out).to_pylist() == rows
        digests.add(_md5(out))
    assert len(digests) == 1
    md = pq.ParquetFile(out).metadata
    assert md.num_row_groups > 1
    assert all(md.row_group(i).num_rows <= 17 for i in range(md.num_row_groups))


def test_row_groups_bounded_by_the_rule_whatever_the_writes(tmp_path, small_groups):
    """Every row group holds at most ROW_GROUP_BYTES and ROW_GROUP_ROWS, unless it is one row
    larger than that; and it is full: its next row would not fit. Rows of 30,000 bytes (over
    the 20,000 limit) sit among small ones; the layout is the same however the rows were
    handed to the writer."""
    rng = random.Random(5)
    rows = [{"repo_id": f"r{i // 4:03d}", "path": f"f{i}.py",
             "content": "y" * (30_000 if i % 37 == 5 else rng.randint(10, 4000))} for i in range(400)]
    sizes = row_nbytes(pa.Table.from_pylist(rows, schema=SCHEMA)).tolist()
    digests = set()
    for groups_of in (1, 7, 400):
        out = tmp_path / f"w{groups_of}.parquet"
        _write(out, rows, groups_of=groups_of)
        digests.add(_md5(out))
    assert len(digests) == 1
    md, start, big = pq.ParquetFile(out).metadata, 0, 0
    for i in range(md.num_row_groups):
        n = md.row_group(i).num_rows
        nbytes = sum(sizes[start:start + n])
        if n == 1 and nbytes > stream.ROW_GROUP_BYTES:
            big += 1
        else:
            assert nbytes <= stream.ROW_GROUP_BYTES and n <= stream.ROW_GROUP_ROWS, (i, n, nbytes)
        if start + n < len(rows):  # full: the next row would not have fit
            assert n == stream.ROW_GROUP_ROWS or nbytes + sizes[start + n] > stream.ROW_GROUP_BYTES, i
        start += n
    assert start == len(rows) and big == sum(s > stream.ROW_GROUP_BYTES for s in sizes) > 0


def test_batch_without_key_and_empty_input(tmp_path):
    src = tmp_path / "empty.parquet"
    _write(src, [])
    assert list(iter_batches(src, batch_bytes=10)) == []
    assert plan_shards(src, shards=4, shard_bytes=10) == []
    assert isinstance(Batch(pa.table({"a": [1]}), 0), Batch)


def test_groups_are_whole_at_every_batch_size(tmp_path, small_groups):
    """Whatever the batch size, each group comes as first piece .. last piece, never merged
    with its neighbour: also when a piece fills up exactly at the end of a row group."""
    rows = _rows(n_repos=25, seed=3)
    src = tmp_path / "in.parquet"
    _write(src, rows)
    want: dict[str, list[dict]] = {}
    for r in rows:
        want.setdefault(r["repo_id"], []).append(r)
    for budget in range(300, 40_000, 397):
        got: dict[str, list[dict]] = {}
        open_id = None
        for t, first, last in iter_groups(iter_batches(src, batch_bytes=budget)):
            rid = t.column("repo_id")[0].as_py()
            assert set(t.column("repo_id").to_pylist()) == {rid}
            assert first == (open_id is None), (budget, rid)
            assert first or rid == open_id, (budget, rid)
            got.setdefault(rid, []).extend(t.to_pylist())
            open_id = None if last else rid
        assert open_id is None and got == want, budget


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=300), cuts=st.lists(st.integers(0, 300)),
       chunk=st.integers(1, 9))
def test_utf8_text_spans_equal_string_slices(text, cuts, chunk):
    """Span by span decoding, with chunks that split multi-byte characters, gives exactly
    the slices of the decoded string."""
    from dscoder.data.stream import Utf8Text

    points = sorted(min(c, len(text)) for c in cuts)
    bounds = [(a, b) for a, b in zip(points[::2], points[1::2])]
    value = Utf8Text.of(pa.array([None, "ab", text, "z"]).slice(1, 3), 1)
    value.CHUNK_BYTES = chunk
    assert len(value) == len(text) and str(value) == text
    assert list(value.spans(bounds)) == [text[a:b] for a, b in bounds]
