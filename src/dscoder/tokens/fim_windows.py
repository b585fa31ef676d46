"""Context-level FIM (Bavarian et al. 2022, Sec. 3): FIM applied to each training window.

The packer's token stream (documents joined, BOS ... EOS each) passes through `WindowFim`
before it is written. Window w of a split (tokens [w*seq_len, (w+1)*seq_len) of the written
file) is transformed with probability `rate`, decided by (fim.seed, split, w). A transformed
window takes `seq_len - overhead` tokens of the stream instead of `seq_len`; inside it, the
longest run of text between inserted tokens (one document's text) becomes one example,
`<fim_begin> prefix <fim_hole> suffix <fim_end> middle <eos>` (or SPM / MSP), and the window
is exactly `seq_len` tokens again. So every example lies in one window, whole.

Cut points are token boundaries that are also character boundaries, so every piece is a run
of tokens the tokenizer produced for an exact character range: the index (segment rows) stays
exact without re-encoding, and `token_source` keeps working. Unlike the paper's character
cuts, a middle therefore never starts or ends inside a token: the model is not taught to
complete a partial token (Bavarian et al. cut characters and re-encode; re-encoding changes
token counts and would break the fixed window). The text before and after the example in the
window (another document's end, say) stays as it is.

Only tokens, positions and index rows move here; nothing is re-encoded, so the output depends
only on the stream, not on how it was batched.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from dscoder.tokens import fim as fimlib

#: Windows per output chunk of `WindowFim.feed`.
OUTPUT_WINDOWS = 4096

_SEG_KEYS = ("doc", "file", "path", "language", "role", "span", "char_start", "char_end")


class WindowFim:
    """Turns one split's stream of chunks (positions relative to each chunk, `token_chars`
    set) into chunks of windows with FIM applied (positions relative to each output chunk),
    ready for the split's writer. Feed chunks in stream order, then call `finish`."""

    def __init__(self, split: str, seq_len: int, p: fimlib.PackFimSettings, sid: Mapping[str, int],
                 make_chunk: Callable[..., Any]):
        self.split, self.seq_len, self.p, self.make_chunk = split, seq_len, p, make_chunk
        self.sentinel = {k: np.array([v], np.uint32) for k, v in sid.items()}
        # pending tokens: ids, token_chars, raw segment number (-1: inserted token)
        self.ids, self.chars, self.seg = np.zeros(0, np.uint32), np.zeros(0, np.int32), np.zeros(0, np.int32)
        self.off = 0            # first pending token in the arrays above
        self.raw = 0            # stream position of array index 0
        self.out = 0            # output position of the next token
        self.prev_chars = -2    # token_chars of the token before index `off`
        self.segs: dict[int, dict[str, Any]] = {}  # raw segment number -> its row (+ raw_start)
        self.docs: deque[dict[str, Any]] = deque()  # documents not yet ended in the output
        self.n_segs = self.n_docs = self.n_docs_out = self.windows = 0
        self.units: Counter = Counter()
        self._row: dict[str, Any] | None = None     # the index row still growing
        self._reset_output()

    # ---- input and output chunks --------------------------------------------------
    def feed(self, chunk) -> Iterator[Any]:
        """Add one input chunk; yields output chunks of the windows now complete, at most
        OUTPUT_WINDOWS windows each (so the output held is bounded, whatever the input chunk).

        Pass the chunk without keeping it (`feed(result.chunks.pop(split))`): its arrays are
        freed as soon as they are copied into the pending ones, and what is pending after the
        last complete window (less than a window) is copied out, so between calls this holds
        one window's tokens, not the last input chunk (12 bytes a token: for an 8 MiB document
        at 14x the default corpus, about 35 MB)."""
        base = self.raw + self.ids.size
        seg = np.full(chunk.ids.size, -1, np.int32 if self.n_segs + len(chunk.segments["doc"]) < 2**31 else np.int64)
        cols = chunk.segments
        for i, (a, b) in enumerate(zip(cols["token_start"], cols["token_end"])):
            seg[a:b] = self.n_segs + i
            self.segs[self.n_segs + i] = {**{k: cols[k][i] for k in _SEG_KEYS},
                                          "doc": cols["doc"][i] + self.n_docs, "raw_start": base + a,
                                          "raw_stop": base + b}
        for i in range(len(chunk.docs["doc"])):
            row = {k: chunk.docs[k][i] for k in chunk.docs}
            row.update(doc=self.n_docs + i, raw_start=base + row["token_start"], raw_end=base + row["token_end"],
                       out_start=None, modes=set(), fim_units=0)
            self.docs.append(row)
        self.n_segs += len(cols["doc"])
        self.n_docs += len(chunk.docs["doc"])
        del cols
        self.raw += self.off
        ids, chars = chunk.ids, chunk.token_chars
        del chunk  # the caller keeps none (see above): its index lists are copied into rows already
        self.ids = np.concatenate([self.ids[self.off:], ids])
        del ids
        self.chars = np.concatenate([self.chars[self.off:], chars])
        del chars
        self.seg = np.concatenate([self.seg[self.off:], seg])
        self.off = 0
        del seg
        n = 0
        while self._window():
            n += 1
            if n % OUTPUT_WINDOWS == 0:
                yield self._take_output()
        out = self._take_output()  # drops its views of the pending arrays
        self._compact()
        yield out

    def _compact(self) -> None:
        """Keep only the pending tokens (copies, so the consumed ones are freed)."""
        self.raw += self.off
        self.ids, self.chars, self.seg = (a[self.off:].copy() for a in (self.ids, self.chars, self.seg))
        self.off = 0

    def finish(self) -> Any:
        """The tail (fewer tokens than a window needs), left as it is."""
        if self.ids.size > self.off:
            self._emit_plain(self.off, self.ids.size)
            self._advance(self.ids.size - self.off)
        self._flush_row()
        assert not self.docs, "a document did not end"
        return self._take_output()

    def _reset_output(self) -> None:
        self._ids: list[np.ndarray] = []
        self._seg_rows: list[dict[str, Any]] = []
        self._doc_rows: list[dict[str, Any]] = []
        self._examples: list[tuple[int, int]] = []
        self._units: Counter = Counter()
        self._out0, self._docs0 = self.out, self.n_docs_out

    def _take_output(self) -> Any:
        def columns(rows, names):
            cols = {k: [r[k] for r in rows] for k in names}
            cols["token_start"] = [v - self._out0 for v in cols["token_start"]]
            cols["token_end"] = [v - self._out0 for v in cols["token_end"]]
            cols["doc"] = [v - self._docs0 for v in cols["doc"]]
            return cols

        from dscoder.tokens.pack import DOCS_SCHEMA, SEGMENTS_SCHEMA

        chunk = self.make_chunk(np.concatenate(self._ids) if self._ids else np.zeros(0, np.uint32),
                                columns(self._doc_rows, DOCS_SCHEMA.names),
                                columns(self._seg_rows, SEGMENTS_SCHEMA.names), self._units,
                                np.asarray(self._examples, np.int64).reshape(-1, 2) - self._out0)
        self._reset_output()
        return chunk

    # ---- one window ---------------------------------------------------------------
    def _window(self) -> bool:
        """Emit the next window if enough tokens are pending; False otherwise."""
        avail = self.ids.size - self.off
        mode, u = fimlib.decide(f"{self.split}\0window\0{self.windows}", self.p)
        take = self.seq_len - fimlib.overhead(mode, self.p)
        if avail < take:
            return False
        frag = self._fragment(self.off, self.off + take) if mode != "none" else None
        if frag is None:
            mode, take = "none", self.seq_len
            if avail < take:
                return False
        w0 = self.out
        if frag is None:
            self._emit_plain(self.off, self.off + take)
        else:
            f0, f1, points = frag
            self._emit_plain(self.off, f0)
            begin = self.out
            doc = self._doc_of(int(self.seg[f0]))
            if doc["out_start"] is None and doc["raw_start"] == self.raw + f0:
                doc["out_start"] = begin  # a document without BOS begins with the example
            for item in fimlib.layout(points, mode, u, self.p):
                if isinstance(item, str):
                    self._emit_special(item)
                else:
                    self._emit_run(item.start, item.end, item.role, item.span)
            self._emit_special("eos")
            self._examples.append((begin, self.out))
            self._emit_plain(f1, self.off + take)
            doc["modes"].add(mode)
            doc["fim_units"] += 1
        assert self.out - w0 == self.seq_len, (self.out - w0, self.seq_len)
        self._units[mode] += 1
        self.units[mode] += 1
        self.windows += 1
        self._advance(take)
        return True

    def _fragment(self, a: int, b: int) -> tuple[int, int, list[int]] | None:
        """(start, end, cut points) of the longest run of text tokens in [a, b), trimmed to
        character boundaries; None if there is no such run of at least one token."""
        text = (self.seg[a:b] >= 0).astype(np.int8)
        if not text.any():
            return None
        edges = np.flatnonzero(np.diff(np.concatenate([[0], text, [0]])))
        starts, ends = edges[0::2], edges[1::2]
        k = int(np.argmax(ends - starts))  # the longest run; ties: the first
        ts = np.arange(a + int(starts[k]), a + int(ends[k]) + 1)
        before = np.where(ts > 0, self.chars[np.maximum(ts - 1, 0)], self.prev_chars)
        points = ts[before != -1]  # -1: that token ends inside a character
        if points.size < 2:
            return None
        return int(points[0]), int(points[-1]), points.tolist()

    def _doc_of(self, raw_seg: int) -> dict[str, Any]:
        d = self.segs[raw_seg]["doc"]
        return next(r for r in self.docs if r["doc"] == d)

    def _advance(self, n: int) -> None:
        self.prev_chars = int(self.chars[self.off + n - 1])
        self.off += n
        while self.segs:  # segments in stream order: forget those wholly emitted
            first = next(iter(self.segs))
            if self.segs[first]["raw_stop"] > self.raw + self.off:
                break
            del self.segs[first]

    # ---- emitting -----------------------------------------------------------------
    def _emit_special(self, name: str) -> None:
        self._flush_row()
        self._ids.append(self.sentinel[name])
        self.out += 1

    def _emit_plain(self, a: int, b: int) -> None:
        """Pending tokens [a, b) unchanged (whole text, BOS, EOS), ending documents on the way."""
        if b <= a:
            return
        lo, hi = self.raw + a, self.raw + b
        for d in self.docs:
            if d["raw_start"] >= hi:
                break
            if d["out_start"] is None and d["raw_start"] >= lo:
                d["out_start"] = self.out + d["raw_start"] - lo
        out0 = self.out
        self._emit_run(a, b, None, None)
        while self.docs and lo < self.docs[0]["raw_end"] <= hi:
            d = self.docs.popleft()
            self._doc_rows.append({**d, "token_start": d["out_start"], "token_end": out0 + d["raw_end"] - lo,
                                   "fim_mode": "+".join(sorted(d["modes"])) or "none"})
            self.n_docs_out += 1

    def _emit_run(self, a: int, b: int, role: str | None, span: int | None) -> None:
        """Pending tokens [a, b) at the output position, with index rows playing `role`
        (None: each segment's own role)."""
        if b <= a:
            return
        self._ids.append(self.ids[a:b])
        seg = self.seg[a:b]
        cuts = (np.flatnonzero(np.diff(seg)) + 1).tolist()
        for lo, hi in zip([0, *cuts], [*cuts, b - a]):
            s = int(seg[lo])
            if s < 0:
                self._flush_row()
            else:
                self._add_run(s, a + lo, a + hi, self.out + lo, role, span)
        self.out += b - a

    def _add_run(self, s: int, a: int, b: int, out_a: int, role: str | None, span: int | None) -> None:
        info = self.segs[s]
        role = info["role"] if role is None else role
        span = info["span"] if span is None else span
        row = self._row
        if (row is not None and (row["seg"], row["role"], row["span"]) == (s, role, span)
                and row["token_end"] == out_a and row["raw_end"] == self.raw + a):
            row.update(token_end=out_a + b - a, raw_end=self.raw + b, char_end=int(self.chars[b - 1]))
            return  # the same segment goes on: one row, as without FIM
        self._flush_row()
        first = self.raw + a == info["raw_start"]
        char_start = info["char_start"] if first else int(self.chars[a - 1] if a > 0 else self.prev_chars)
        self._row = {**{k: info[k] for k in _SEG_KEYS}, "role": role, "span": span, "seg": s,
                     "char_start": char_start, "char_end": int(self.chars[b - 1]),
                     "token_start": out_a, "token_end": out_a + b - a, "raw_end": self.raw + b}

    def _flush_row(self) -> None:
        row, self._row = self._row, None
        if row is None:
            return
        assert row["char_start"] >= 0 and row["char_end"] >= 0, "a cut inside a character"
        self._seg_rows.append(row)
