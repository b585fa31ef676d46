"""The token-to-source lookup of a token directory (the index `dscoder.tokens.pack` writes).

`TokenIndex(tokens_dir, split)` loads one split's `{split}.docs.parquet` and
`{split}.segments.parquet` (their columns are described in dscoder.tokens.pack) and memory-maps
its token file; `locate(offset)` names the document, file, FIM role and character range a
token came from, and `token_source` narrows a text token to its exact character and byte range
given the document's REPOS row.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow.parquet as pq

from dscoder.tokens.tokenizer import token_nbytes


@dataclass(frozen=True)
class Location:
    """Where token `offset` of a split's stream came from."""

    offset: int
    doc: int
    repo_id: str
    repo_name: str | None
    fim_mode: str
    part: int
    """The document's part number among its repository's documents (0 for most)."""
    special: str | None
    """bos, eos or a sentinel name when the token is one the packer inserted, else None."""
    segment: int | None
    file: int | None
    path: str | None
    language: str | None
    role: str | None
    span: int | None
    char_start: int | None
    """Character range of the segment holding the token, in the original document."""
    char_end: int | None
    token_in_segment: int | None


class TokenIndex:
    """Loads one split's index; `locate(offset)` traces a token back to its source."""

    def __init__(self, tokens_dir: str | os.PathLike, split: str):
        d = Path(tokens_dir)
        self.docs = pq.read_table(d / f"{split}.docs.parquet").to_pydict()
        self.segments = pq.read_table(d / f"{split}.segments.parquet").to_pydict()
        self._doc_start = np.asarray(self.docs["token_start"], np.int64)
        self._seg_start = np.asarray(self.segments["token_start"], np.int64)
        meta = json.loads((d / "meta.json").read_text())
        dtype = np.dtype(meta["dtype"]).newbyteorder("<")
        path = d / f"{split}.bin"  # np.memmap refuses an empty file (a split with no whole block)
        self.tokens = np.memmap(path, dtype=dtype, mode="r") if path.stat().st_size else np.zeros(0, dtype)
        self._special_names = {v: k for k, v in meta["special_ids"].items()}

    def locate(self, offset: int) -> Location:
        d = int(np.searchsorted(self._doc_start, offset, side="right")) - 1
        if d < 0 or offset >= self.docs["token_end"][d]:
            raise IndexError(f"token {offset} is outside every document")
        base = dict(offset=offset, doc=d, repo_id=self.docs["repo_id"][d], repo_name=self.docs["repo_name"][d],
                    fim_mode=self.docs["fim_mode"][d], part=self.docs.get("part", [0] * (d + 1))[d])
        s = int(np.searchsorted(self._seg_start, offset, side="right")) - 1
        if s >= 0 and self.segments["doc"][s] == d and offset < self.segments["token_end"][s]:
            seg = {k: self.segments[k][s] for k in ("file", "path", "language", "role", "span", "char_start", "char_end")}
            return Location(**base, special=None, segment=s, token_in_segment=offset - self.segments["token_start"][s], **seg)
        name = self._special_names.get(int(self.tokens[offset])) if offset < self.tokens.size else None
        return Location(**base, special=name or "unknown", segment=None, file=None, path=None, language=None,
                        role=None, span=None, char_start=None, char_end=None, token_in_segment=None)


def token_source(index: TokenIndex, loc: Location, doc: Mapping[str, Any], tokenizer_dir: str | os.PathLike) -> dict[str, Any]:
    """Exact source of a located text token, given its REPOS row: the token's character range
    in the document and its UTF-8 byte range inside its file block (header included). Uses
    the segment's stored tokens and each id's byte length (no re-encoding), so it is exact
    also for a token holding part of a multi-byte character (the range then covers the whole
    character). Tokens in the dropped tail cannot be looked up (they are not in the file)."""
    if loc.segment is None:
        raise ValueError(f"token {loc.offset} is the inserted token {loc.special!r}, not text")
    if loc.offset >= index.tokens.size:
        raise ValueError(f"token {loc.offset} lies in the tail dropped from the token file")
    nbytes = token_nbytes(str(tokenizer_dir))
    seg_start = loc.offset - loc.token_in_segment
    seg_end = min(index.segments["token_end"][loc.segment], index.tokens.size)
    lengths = nbytes[np.asarray(index.tokens[seg_start:seg_end], dtype=np.int64)]
    text = doc["text"]
    seg_bytes = text[loc.char_start: loc.char_end].encode("utf-8")
    whole = seg_end == index.segments["token_end"][loc.segment]
    if int(lengths.sum()) != len(seg_bytes) if whole else int(lengths.sum()) > len(seg_bytes):
        raise ValueError(f"document {doc.get('repo_id')!r} does not match the segment of token {loc.offset}")
    b0 = int(lengths[: loc.token_in_segment].sum())
    b1 = b0 + int(lengths[loc.token_in_segment])
    c0 = len(seg_bytes[:b0].decode("utf-8", errors="ignore"))  # index of the character holding b0
    head = seg_bytes[:b1].decode("utf-8", errors="ignore")
    c1 = len(head) + (len(head.encode("utf-8")) < b1)  # round up to the whole character
    out: dict[str, Any] = {"char_start": loc.char_start + c0, "char_end": loc.char_start + c1, "path": loc.path}
    if loc.file is not None and loc.file >= 0:
        before = len(text[doc["files"][loc.file]["start"]: loc.char_start].encode("utf-8"))
        out["byte_start"], out["byte_end"] = before + b0, before + b1
    return out
