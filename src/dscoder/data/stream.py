"""Streaming over the Parquet files that pass between data stages, in batches bounded in bytes.

The step pattern every data stage follows (datatrove's lesson: a step maps a stream of row
batches to row batches and counts what it drops; where it runs is the executor's business):

1. `plan_shards` cuts the input into contiguous row ranges aligned to group (repository)
   boundaries and balanced by bytes, reading only the light columns. A repository larger than
   a shard's share gets a shard of its own.
2. Each shard is read with `iter_batches`: tables of whole repositories, at most `batch_bytes`
   each (plus one row), except that a repository larger than `batch_bytes` arrives in
   consecutive pieces (`Batch.continues`). Only one row group is decoded at a time.
3. The step writes its output rows incrementally with `PartWriter`.
4. `concat_parts` joins the parts in shard order into the output, cutting row groups by a fixed
   rule on the row sequence (`ROW_GROUP_BYTES`, `ROW_GROUP_ROWS`) and writing each row group as
   one contiguous table with the same writer settings, so the output's bytes depend only on
   its rows: not on the shard count, the worker count, the batch size or the executor.

Row groups of the files this module writes are bounded in bytes, so reading one is bounded
too. Nothing here holds a shard, a source or the corpus in memory.

`read_repos` and `repo_ids` stream the rows, or only the ids, of a REPOS file for the stages
that read one from start to end (tokenizer, pack, instruct_data, general_lm, continue_pretrain).
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dscoder.io import atomic_path

#: A row group holds at most this many bytes of row data and `ROW_GROUP_ROWS` rows; a row larger
#: than that is a row group by itself. So reading or writing one row group costs at most about
#: max(ROW_GROUP_BYTES, the largest row) whatever the corpus. Closing a group only once it had
#: passed the limit let it reach twice that with 8 MiB documents, and the drivers' concat and
#: plan then grew with the corpus (decontam's driver at 14x the default corpus: 330 MB against
#: 239 at 1x). 2 MiB, as `runner.batch_bytes`, rather than 8: the default corpus's shards are
#: ~6 MB, so with 8 MiB groups its workers never wrote a full one and their 1x peak measured
#: less than the bound (filter's worker, largest shard: 157 MB at 1x, 192 at 14x with 8 MiB
#: output groups; 152 and 178 with 2 MiB). Fixed, not a parameter: the layout of every output
#: must not depend on any setting.
ROW_GROUP_BYTES = 2 * 2**20
ROW_GROUP_ROWS = 4096
#: The writer settings of every Parquet file a data stage writes.
WRITER_OPTIONS = {"compression": "zstd", "write_statistics": True, "use_dictionary": True}
#: Bytes counted for a fixed-width value or one element of a list column.
_FIXED_BYTES = 8
_LIST_ITEM_BYTES = 64


def row_nbytes(table: pa.Table | pa.RecordBatch) -> np.ndarray:
    """Bytes of each row, as a deterministic function of its values: the length of every
    string/binary value, a fixed charge per list element and per fixed-width value."""
    sizes = np.zeros(table.num_rows, dtype=np.int64)
    for col in table.columns:
        t = col.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
            sizes += pc.fill_null(pc.binary_length(col), 0).to_numpy()
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            sizes += pc.fill_null(pc.list_value_length(col), 0).to_numpy() * _LIST_ITEM_BYTES
        else:
            sizes += _FIXED_BYTES
    return sizes


def _row_groups(pf: pq.ParquetFile) -> list[tuple[int, int]]:
    """(first row, rows) of every row group."""
    out, start = [], 0
    for i in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(i).num_rows
        out.append((start, n))
        start += n
    return out


def iter_slices(path: str | os.PathLike, columns: Sequence[str] | None, start: int = 0,
                stop: int | None = None) -> Iterator[tuple[int, pa.Table]]:
    """(first row, table) for each row group overlapping rows [start, stop), sliced to it."""
    pf = pq.ParquetFile(path)
    stop = pf.metadata.num_rows if stop is None else stop
    for i, (first, n) in enumerate(_row_groups(pf)):
        if first + n <= start or first >= stop or n == 0:
            continue
        t = pf.read_row_group(i, columns=list(columns) if columns is not None else None)
        lo, hi = max(start, first) - first, min(stop, first + n) - first
        yield first + lo, t.slice(lo, hi - lo)


@dataclass(frozen=True)
class Shard:
    """Rows [start, stop) of the input: whole groups (repositories), in input order."""

    index: int
    start: int
    stop: int
    nbytes: int
    groups: int


def group_runs(path: str | os.PathLike, key: str = "repo_id",
               size_columns: Sequence[str] = ()) -> Iterator[tuple[int, int, int]]:
    """(first row, rows, bytes) of each run of equal `key` values, streaming over the key and
    size columns only. Bytes are `row_nbytes` of `size_columns` (of all columns if empty)."""
    cols = list(dict.fromkeys([key, *size_columns])) if size_columns else None
    cur = None  # [key, start, rows, bytes]
    for first, t in iter_slices(path, cols):
        if t.num_rows == 0:
            continue
        keys = t.column(key).to_pylist()
        sizes = row_nbytes(t if not size_columns else t.select(list(size_columns)))
        cuts = [0] + [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]] + [len(keys)]
        csum = np.concatenate([[0], np.cumsum(sizes)])
        for a, b in zip(cuts[:-1], cuts[1:]):
            k, nbytes = keys[a], int(csum[b] - csum[a])
            if cur is not None and a == 0 and cur[0] == k:
                cur[2] += b - a
                cur[3] += nbytes
                continue
            if cur is not None:
                yield cur[1], cur[2], cur[3]
            cur = [k, first + a, b - a, nbytes]
    if cur is not None:
        yield cur[1], cur[2], cur[3]


def plan_shards(path: str | os.PathLike, *, shards: int, shard_bytes: int, key: str = "repo_id",
                size_columns: Sequence[str] = ()) -> list[Shard]:
    """Contiguous shards of whole groups, balanced by bytes.

    The shard count is at least `shards` and large enough that a shard holds about
    `shard_bytes`; groups are added to a shard until it reaches its share of the total, and a
    group larger than a share is a shard by itself. Two streaming passes over the key and
    size columns; the plan holds one entry per shard, not per group.
    """
    class _Runs:  # re-iterable: cut_shards reads the runs twice, streaming both times
        def __iter__(self):
            return group_runs(path, key, size_columns)

    return cut_shards(_Runs(), shards=shards, shard_bytes=shard_bytes)


def cut_shards(groups: Iterable[tuple[int, int, int]], *, shards: int, shard_bytes: int) -> list[Shard]:
    """Contiguous shards over (first row, rows, bytes) groups (re-iterable: read twice)."""
    total = n_groups = 0
    for _, _, b in groups:
        total += b
        n_groups += 1
    if n_groups == 0:
        return []
    share = max(1.0, total / max(1, shards, -(-total // max(1, shard_bytes))))
    out: list[Shard] = []
    start = acc = n = 0

    def close(stop: int) -> None:
        nonlocal start, acc, n
        out.append(Shard(len(out), start, stop, acc, n))
        start, acc, n = stop, 0, 0

    for g_start, g_rows, g_bytes in groups:
        if n and (g_bytes >= share or acc + g_bytes > 1.25 * share):
            close(g_start)  # a giant group gets a shard of its own; no shard grows far past its share
        acc += g_bytes
        n += 1
        if acc >= share:
            close(g_start + g_rows)
    if n:
        close(g_start + g_rows)
    return out


def largest_first(shards: Sequence[Shard]) -> list[Shard]:
    """Submission order for longest-processing-time scheduling: largest shard first (ties by
    index). Results are still assembled in index order."""
    return sorted(shards, key=lambda s: (-s.nbytes, s.index))


@dataclass
class Batch:
    table: pa.Table
    start: int
    """Row of the input where `table` begins."""
    continues: bool = False
    """The last group goes on in the next batch (a group larger than the batch size)."""
    continued: bool = False
    """The first group began in the previous batch."""


def iter_batches(path: str | os.PathLike, columns: Sequence[str] | None = None, *, start: int = 0,
                 stop: int | None = None, batch_bytes: int, key: str | None = "repo_id") -> Iterator[Batch]:
    """Rows [start, stop) in batches of whole groups of at most about `batch_bytes` (one row
    more at most); a group larger than `batch_bytes` comes in consecutive pieces."""
    pending: list[pa.Table] = []
    pbytes, pstart = 0, start
    pkeys: list = []  # key of every pending row (only when grouping)
    continued = False

    def emit(n_rows: int, continues: bool) -> Batch:
        nonlocal pending, pbytes, pstart, pkeys, continued
        table = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
        batch = Batch(table.slice(0, n_rows), pstart, continues, continued)
        rest = table.slice(n_rows)
        pending = [rest] if rest.num_rows else []
        pbytes = int(row_nbytes(rest).sum()) if rest.num_rows else 0
        pkeys = pkeys[n_rows:]
        pstart += n_rows
        continued = continues
        return batch

    deferred = False  # a full piece at the end of a row group: whether its group goes on is not yet known
    for first, t in iter_slices(path, columns, start, stop):
        if t.num_rows == 0:
            continue
        sizes = row_nbytes(t)
        keys = t.column(key).to_pylist() if key else [None] * t.num_rows
        if deferred:
            yield emit(len(pkeys), keys[0] == pkeys[-1])
            deferred = False
        offset = 0
        while offset < t.num_rows:
            # rows of t to add until the pending batch reaches batch_bytes
            csum = pbytes + np.cumsum(sizes[offset:])
            hit = int(np.searchsorted(csum, batch_bytes, side="left"))
            take = min(hit + 1, t.num_rows - offset)
            pending.append(t.slice(offset, take))
            pkeys.extend(keys[offset:offset + take])
            pbytes = int(csum[take - 1])
            offset += take
            if pbytes < batch_bytes:
                continue
            if key is None:
                yield emit(len(pkeys), False)
                continue
            # cut at the last group boundary inside the pending rows, else emit a piece
            cut = next((i for i in range(len(pkeys) - 1, 0, -1) if pkeys[i] != pkeys[i - 1]), 0)
            if cut:
                yield emit(cut, False)
            elif offset == t.num_rows:
                deferred = True  # decided by the next row group's first key, or the end of the range
                break
            else:
                yield emit(len(pkeys), keys[offset] == pkeys[-1])
    if pending:
        yield emit(len(pkeys), False)


def iter_groups(batches: Iterable[Batch], key: str = "repo_id") -> Iterator[tuple[pa.Table, bool, bool]]:
    """(group table, first piece?, last piece?) for each group of each batch, in order."""
    for b in batches:
        keys = b.table.column(key).to_pylist()
        cuts = [0] + [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]] + [len(keys)]
        for j, (a, c) in enumerate(zip(cuts[:-1], cuts[1:])):
            first = not (j == 0 and b.continued)
            last = not (j == len(cuts) - 2 and b.continues)
            yield b.table.slice(a, c - a), first, last


class PartWriter:
    """Writes batches to a Parquet file as they come, in row groups of the fixed rule."""

    def __init__(self, path: str | os.PathLike, schema: pa.Schema):
        self.path = Path(path)
        self.schema = schema
        self.rows = 0
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self.path, schema, **WRITER_OPTIONS)
        self._pending: list[pa.Table] = []
        self._pbytes = 0
        self._prows = 0

    def write(self, table: pa.Table | pa.RecordBatch | Sequence[dict]) -> None:
        if isinstance(table, (list, tuple)):
            table = pa.Table.from_pylist(list(table), schema=self.schema)
        elif isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if table.num_rows == 0:
            return
        table = table.select(self.schema.names).cast(self.schema)
        sizes = row_nbytes(table)
        offset, n = 0, table.num_rows
        while offset < n:
            # the rows that still fit the open row group: bytes and rows within the limits
            csum = self._pbytes + np.cumsum(sizes[offset:])
            fit = min(int(np.searchsorted(csum, ROW_GROUP_BYTES, side="right")), ROW_GROUP_ROWS - self._prows)
            if fit == 0:
                if self._prows:  # the next row does not fit: close the group, try again
                    self._flush()
                    continue
                fit = 1  # a row larger than a row group is a row group of its own
            take = min(fit, n - offset)
            self._pending.append(table.slice(offset, take))
            self._pbytes = int(csum[take - 1])
            self._prows += take
            offset += take
            if offset < n or self._pbytes >= ROW_GROUP_BYTES or self._prows >= ROW_GROUP_ROWS:
                self._flush()  # full, or the next row does not fit

    def _flush(self) -> None:
        if not self._prows:
            return
        group = pa.concat_tables(self._pending).combine_chunks()
        # The pending slices are copied into `group`: let them go before the writer encodes
        # it, which takes about 3x the group again (8 MiB groups of 1 MiB rows, repo_docs at 14x the
        # default corpus: +33 MB during write_table). Holding them through the write cost
        # that worker 4 MB more peak RSS. Same bytes either way.
        self._pending, self._pbytes, self._prows = [], 0, 0
        self._writer.write_table(group, row_group_size=group.num_rows)
        self.rows += group.num_rows

    def close(self) -> int:
        if self._writer is not None:
            self._flush()
            self._writer.close()
            self._writer = None
        return self.rows

    def __enter__(self) -> "PartWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._writer is not None:
            self._writer.close()
            self._writer = None


def concat_parts(parts: Sequence[str | os.PathLike], dest: str | os.PathLike, schema: pa.Schema) -> int:
    """Join part files in order into `dest`, atomically, one row group of a part at a time.
    Returns the number of rows written."""
    with atomic_path(dest) as tmp:
        with PartWriter(tmp, schema) as w:
            for part in parts:
                for _, t in iter_slices(part, None):
                    w.write(t)
        return w.rows


# ---------------------------------------------------------------------------- REPOS rows

#: Input bytes per batch when the caller gives none (`read_repos`, the packer).
BATCH_BYTES = 64 * 2**20

REPO_COLUMNS = ["repo_id", "repo_name", "text", "files", "part"]


def read_repos(path: str | os.PathLike, batch_bytes: int = BATCH_BYTES,
               columns: Sequence[str] = REPO_COLUMNS) -> Iterator[dict[str, Any]]:
    """REPOS rows of a Parquet file (those of `columns` it has), streamed in batches of at
    most about `batch_bytes`."""
    have = set(pq.read_schema(path).names)
    for batch in iter_batches(path, [c for c in columns if c in have], batch_bytes=batch_bytes):
        for rows in batch.table.to_batches(max_chunksize=8):  # a few Python rows at a time
            yield from rows.to_pylist()


def repo_ids(path: str | os.PathLike) -> Iterator[str]:
    """The repo_id of every row of a REPOS file, streamed (one row group at a time)."""
    for _, t in iter_slices(path, ["repo_id"]):
        yield from (r for r in t.column("repo_id").to_pylist() if isinstance(r, str))


class Utf8Text:
    """A string column value kept as its UTF-8 bytes (a view of the Arrow buffer) and
    decoded span by span: `len()` is its length in characters, `spans()` gives exactly the
    strings `text[start:end]` of the decoded value would.

    A Python str costs 1, 2 or 4 bytes per character for the whole value, by its widest
    character: the repository documents larger than 4 MiB of the 14x corpus are all 2 or 4,
    so one 8 MiB document became a 16-32 MB str, plus the decoder's widening copies, for a
    reader that only wants its files one at a time."""

    #: Bytes decoded at a time by `spans`.
    CHUNK_BYTES = 1 << 20

    def __init__(self, data: memoryview, nchars: int):
        self.data, self.nchars = data, nchars

    @classmethod
    def of(cls, column: pa.Array, i: int = 0) -> "Utf8Text":
        """Value `i` of a string (or large_string) array, without copying it."""
        offsets = np.frombuffer(column.buffers()[1], np.int64 if pa.types.is_large_string(column.type) else np.int32)
        lo, hi = int(offsets[column.offset + i]), int(offsets[column.offset + i + 1])
        data = column.buffers()[2]
        view = memoryview(data)[lo:hi] if data is not None else memoryview(b"")
        return cls(view, int(pc.utf8_length(column.slice(i, 1))[0].as_py()))

    def __len__(self) -> int:
        return self.nchars

    def __str__(self) -> str:
        return str(self.data, "utf-8")

    def spans(self, bounds: Iterable[tuple[int, int]]) -> Iterator[str]:
        """`text[start:end]` for each (start, end) in `bounds`, which must be in order
        (starts never decreasing) and within the text. Holds at most one span and one chunk
        of decoded characters."""
        dec = codecs.getincrementaldecoder("utf-8")()
        data, n = self.data, len(self.data)
        buf, buf_start, pos = "", 0, 0  # buf: characters [buf_start, buf_start + len(buf))
        for start, end in bounds:
            if start < buf_start or end < start or end > self.nchars:
                raise ValueError(f"span ({start}, {end}) out of order or range (text of {self.nchars} characters)")
            while buf_start + len(buf) < end:
                piece = dec.decode(data[pos:pos + self.CHUNK_BYTES], final=pos + self.CHUNK_BYTES >= n)
                pos += self.CHUNK_BYTES
                drop = min(start - buf_start, len(buf))  # characters before `start` are never needed again
                buf, buf_start = buf[drop:] + piece, buf_start + drop
            # sliced in place: dropping the consumed head here too would copy the rest of the
            # chunk once per span (torch's 11,297 files: 18 s a pass against 1.6 s)
            yield buf[start - buf_start: end - buf_start]


def read_rows(path: str | os.PathLike, columns: Sequence[str] = REPO_COLUMNS, *, key: str = "repo_id",
              keep: Callable[[Any], bool] | None = None, lazy: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """The rows of a Parquet file (those of `columns` it has) as Python dicts, one decoded at
    a time, in file order; with `keep`, only the rows whose `key` value it accepts, tested on
    the key column before a row is converted. The string columns named in `lazy` come as
    `Utf8Text` rather than str.

    For readers of REPOS files, whose rows can be as large as `repo_docs.max_doc_bytes`:
    `read_repos` decodes whole row groups (`iter_batches`, up to `ROW_GROUP_BYTES` or one
    larger row) with their pages and copies, then converts 8 rows at a time to Python strings
    (1-4 bytes per character each). Here the Parquet reader
    streams pages (a 1 MiB buffered stream, no pre-buffering, one row per record batch), so
    only the row being read and its pages are decoded. Measured on the tokenizer stage's
    driver, which reads all of the corpus three times (sample plan, sample, held-out
    repositories): see `stages.tokenizer`."""
    pf = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    have = set(pf.schema_arrow.names)
    cols = [c for c in columns if c in have]
    if keep is not None and key not in cols:
        cols.append(key)
    lazy = [c for c in lazy if c in cols]
    groups = None  # all row groups; with `keep`, only those holding a kept row (read from the key column)
    if keep is not None:
        groups = [i for i in range(pf.metadata.num_row_groups)
                  if any(keep(k) for k in pf.read_row_group(i, columns=[key]).column(key).to_pylist())]
        if not groups:
            return
    for batch in pf.iter_batches(batch_size=1, row_groups=groups, columns=cols, use_threads=False):
        for i in range(batch.num_rows):
            row = batch.slice(i, 1)
            if keep is not None and not keep(row.column(key)[0].as_py()):
                continue
            out = row.select([c for c in cols if c not in lazy]).to_pylist()[0] if len(lazy) < len(cols) else {}
            for c in lazy:
                col = row.column(c)
                out[c] = None if col.null_count else Utf8Text.of(col)
            yield {c: out[c] for c in cols}
