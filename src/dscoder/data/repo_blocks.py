"""File blocks of a repository document (schemas.REPOS): check spans, drop files, re-concatenate.

A repository document is its files' blocks in order; `text[start:end]` is one block (its
path-comment header followed by the file content). Anything between two blocks (a separator
the ordering step may add) belongs to the block before it, and anything before the first
block stays as the document's prefix, so dropping a file removes exactly its block and the
separator after it, and keeping every file reproduces the text byte for byte.
"""

from __future__ import annotations

from typing import Any, Iterable

from dscoder.data.stream import Utf8Text


def spans_problem(row: dict[str, Any]) -> str | None:
    """Why the `files` spans of a REPOS row cannot be used, or None when they are sound."""
    text = row.get("text")
    files = row.get("files")
    if not isinstance(text, (str, Utf8Text)):  # Utf8Text: decoded span by span (stream.read_rows)
        return "text_not_string"
    if not isinstance(files, list):
        return "files_not_list"
    pos = 0
    for f in files:
        try:
            start, end, header = int(f["start"]), int(f["end"]), int(f["header_chars"])
            f["path"]
        except (KeyError, TypeError, ValueError):
            return "file_span_malformed"
        if not (pos <= start <= end <= len(text)) or not (0 <= header <= end - start):
            return "file_span_out_of_order_or_range"
        pos = end
    return None


def block_content(text: str, span: dict[str, Any]) -> str:
    """The file's own content inside its block (header line(s) excluded)."""
    return text[span["start"] + span["header_chars"] : span["end"]]


def drop_files(row: dict[str, Any], drop: Iterable[int]) -> dict[str, Any] | None:
    """A copy of REPOS row `row` without the files at positions `drop` (indices into `files`).

    Spans, `languages` and `n_files` are recomputed; dependency-edge counts are kept as they
    were measured on the whole repository. Returns None when no file remains. The row's spans
    must be sound (`spans_problem(row) is None`).
    """
    drop = set(drop)
    if not drop:
        return row
    text, files = row["text"], row["files"]
    if len(drop) >= len(files):
        return None
    prefix = text[: files[0]["start"]] if files else ""
    pieces, new_files, pos = [prefix], [], len(prefix)
    for i, f in enumerate(files):
        if i in drop:
            continue
        owned_end = files[i + 1]["start"] if i + 1 < len(files) else len(text)
        pieces.append(text[f["start"] : owned_end])
        new_start = pos
        new_files.append({**f, "start": new_start, "end": new_start + (f["end"] - f["start"])})
        pos += owned_end - f["start"]
    out = dict(row)
    out["text"] = "".join(pieces)
    out["files"] = new_files
    out["n_files"] = len(new_files)
    out["languages"] = sorted({f["language"] for f in new_files})
    return out
