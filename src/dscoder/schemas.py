"""Row schemas of the Parquet files that pass between stages.

One place declares them so every stage writes, and every test checks, the same layout.
Language ids are lowercase identifiers from `dscoder.data.languages` ("python", "cpp",
"csharp", "javascript", "markdown", ...).
"""

from __future__ import annotations

import pyarrow as pa

#: data/raw/files.parquet and data/filtered/files.parquet: one row per file.
FILES = pa.schema(
    [
        pa.field("repo_id", pa.string(), nullable=False),  # stable id derived from the source spec
        pa.field("repo_name", pa.string(), nullable=False),  # human name, e.g. "requests"
        pa.field("path", pa.string(), nullable=False),  # posix path inside the repository
        pa.field("language", pa.string(), nullable=False),  # language id, see languages.py
        pa.field("content", pa.string(), nullable=False),  # UTF-8 text of the file
        pa.field("size", pa.int64(), nullable=False),  # size of the content in bytes
        pa.field("sha256", pa.string(), nullable=False),  # hex digest of the content bytes
        pa.field("source", pa.string(), nullable=False),  # the source spec the repo came from
    ]
)

#: One file's place inside a repository document: `text[start:end]` is the file's block
#: (its path-comment header line followed by its content). Offsets count characters.
FILE_SPAN = pa.struct(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("language", pa.string(), nullable=False),
        pa.field("start", pa.int64(), nullable=False),
        pa.field("end", pa.int64(), nullable=False),
        pa.field("header_chars", pa.int64(), nullable=False),  # length of the header line(s)
    ]
)

#: data/repos/repos.parquet, data/dedup/repos.parquet, data/clean/repos.parquet:
#: one row per repository, its files concatenated in dependency order (Algorithm 1).
REPOS = pa.schema(
    [
        pa.field("repo_id", pa.string(), nullable=False),
        pa.field("repo_name", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),  # the concatenated repository document
        pa.field("files", pa.list_(FILE_SPAN), nullable=False),  # in document order
        pa.field("languages", pa.list_(pa.string()), nullable=False),  # distinct, sorted
        pa.field("n_files", pa.int64(), nullable=False),
        pa.field("edges_found", pa.int64(), nullable=False),
        pa.field("edges_resolved", pa.int64(), nullable=False),
        pa.field("cycles_broken", pa.int64(), nullable=False),
        # which document of its repository this is: 0, or 0..n-1 for a repository larger than
        # repo_docs.max_doc_bytes, split along its dependency order (dscoder.data.repo_docs.step)
        pa.field("part", pa.int64(), nullable=True),
    ]
)

#: data/dedup/clusters.parquet: one row per repository that took part in dedup.
CLUSTERS = pa.schema(
    [
        pa.field("repo_id", pa.string(), nullable=False),
        pa.field("cluster_id", pa.string(), nullable=False),  # repo_id of the kept member
        pa.field("kept", pa.bool_(), nullable=False),
        pa.field("jaccard", pa.float64(), nullable=False),  # estimated Jaccard to the kept one
    ]
)

#: Audit rows written by every stage that drops something: what, where, why.
AUDIT = pa.schema(
    [
        pa.field("stage", pa.string(), nullable=False),
        pa.field("repo_id", pa.string(), nullable=True),
        pa.field("repo_name", pa.string(), nullable=True),
        pa.field("path", pa.string(), nullable=True),
        pa.field("language", pa.string(), nullable=True),
        pa.field("reason", pa.string(), nullable=False),  # a short rule id, e.g. "max_line_length"
        pa.field("detail", pa.string(), nullable=True),  # free text: measured value, matched item
        pa.field("size", pa.int64(), nullable=True),
    ]
)

#: data/dedup/clusters.parquet at `dedup.level: file` (the ablation): one row per file,
#: ids are `repo_id::path`.
FILE_CLUSTERS = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("repo_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("cluster_id", pa.string(), nullable=False),  # doc_id of the kept file
        pa.field("kept", pa.bool_(), nullable=False),
        pa.field("jaccard", pa.float64(), nullable=False),
    ]
)
