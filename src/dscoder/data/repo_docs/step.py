"""repo_docs as a streaming step, and repositories too large for one document.

The step reads schemas.FILES rows in byte-bounded batches of whole repositories
(`dscoder.data.stream`), orders each repository (`document.build_repo_doc`) and writes its
document as soon as it is complete. Documents are assembled in parts of at most
`max_doc_bytes` UTF-8 bytes, cut at file boundaries along the dependency order: each part is
a run of consecutive blocks of the ordered document, so a file's dependencies are in its own
part or an earlier one, and connected files stay together as far as the size allows. Every
part repeats the document's prefix (the repository line of the starcoder2 / qwen2.5
formats) and has its own spans; the parts share the repository's `repo_id` and are numbered
by `part`. Repository-level statistics (edges, cycles) are carried by part 0, so sums over
documents stay repository totals.

A repository larger than a batch arrives in pieces. Its files are spooled to a scratch
folder as they come, ordered from there (each file is read when its imports are extracted,
and again when its part is assembled), so a worker holds one part, never the repository.
Both paths run the same code on the same order, so the output does not depend on which
one a repository took (and so not on `runner.batch_bytes`).

What a worker holds. A part is assembled as UTF-8 bytes and handed to Arrow as they are
(`assemble_parts`, `_row_table`), and let go before the next one is assembled: about twice
`max_doc_bytes` at the peak (the part and its pieces), where a str part, held past its
write, took 8.6x for parts with a character beyond the BMP (test_repo_docs_step). The C heap's free pages are given back
(`pool.trim_heap`) after every batch (by `step.run_shard`, for every step), and for a
spooled repository after its ordering and after each part: what a large repository's graph, a big file's tree-sitter tree or a run of
parts freed is otherwise kept resident under what comes next (the heap only shrinks from
its top), so a worker's RSS climbed with every large repository it had seen. At 14x the
default corpus, all shards in one process: peak 151 MB without the trims, 136 with them
(1x: 116), for 510 trims costing 0.4 s in all. What remains that grows with the corpus is
bounded by one repository and one file: its resolution state (about 680 B a file: the
`RepoIndex` tables and a `FileDeps` each), its ordering (the ordering edges, `scc_order`
and `count_order_stats`: about 280 B a file and 140 B an edge of Python objects at the
peak, 520 and 260 before; torch, 11,297 files and 55,147 edges: 7.7 MB and 10.9 MB, the
latter 20.1 before, plus a 3.5 MB edge list no longer built), and the tree-sitter tree of
its largest file (about 40 B a byte for Python: 17 MB for numpy's 420 KB
test_multiarray.py; `ingest.max_file_bytes` bounds it).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

import pyarrow as pa

from dscoder.data.doc_formats import get_format
from dscoder.data.repo_docs.document import LanguageStats, RepoDoc, RepoDocsSettings, build_repo_doc
from dscoder.data.step import Step, StepContext
from dscoder.data.stream import Batch, iter_groups
from dscoder.pool import trim_heap
from dscoder.schemas import REPOS

_COLUMNS = ("repo_id", "repo_name", "source", "path", "language", "content")


def assemble_parts(order: Sequence[str], files: Mapping[str, Mapping[str, str]], *, doc_format: str,
                   repo_name: str, max_doc_bytes: int) -> Iterator[tuple[bytes, list[dict]]]:
    """(text, spans) of each part, the text as UTF-8 bytes: the blocks of `order` (as
    `document.assemble` lays them out) in runs of at most `max_doc_bytes` bytes; a single
    larger block is a part alone. Spans count characters, as in `document.assemble`.

    Bytes, not a str: a str takes 1, 2 or 4 bytes a character by the widest character in the
    whole part, and keeps the UTF-8 copy Arrow makes of it when the row is written. 46 of
    transformers' 53 parts hold a character beyond the BMP, so each 1 MiB part was a 4 MB str
    joined from its files' strs, plus that copy; as bytes it is 1 MiB joined from 1 MiB of
    pieces, and the encoding that sizes the blocks is the text itself."""
    fmt = get_format(doc_format)
    prefix = fmt.prefix(repo_name)
    head = prefix.encode("utf-8")
    pieces, spans, pos, size = [head], [], len(prefix), len(head)
    for path in order:
        f = files[path]
        header, content = fmt.header(path, f["language"]), f["content"]
        gap = fmt.gap(content)
        block = [header.encode("utf-8"), content.encode("utf-8"), gap.encode("utf-8")]
        nbytes = sum(map(len, block))
        if spans and size + nbytes > max_doc_bytes:
            text, pieces = b"".join(pieces), [head]  # the pieces go before the part is written
            yield text, spans
            del text
            spans, pos, size = [], len(prefix), len(head)
        spans.append({"path": path, "language": f["language"], "start": pos,
                      "end": pos + len(header) + len(content), "header_chars": len(header)})
        pieces += block
        pos += len(header) + len(content) + len(gap)
        size += nbytes
    text, pieces = b"".join(pieces), None
    yield text, spans


def document_rows(doc: RepoDoc, files: Mapping[str, Mapping[str, str]], *, repo_id: str, repo_name: str,
                  source: str, s: RepoDocsSettings) -> Iterator[dict[str, Any]]:
    """The REPOS rows of an ordered repository (one per part), `text` as UTF-8 bytes. A part
    is let go before the next one is assembled, if the caller lets go of its row too (no
    `enumerate` here: its reused result tuple would hold the previous part meanwhile)."""
    k = 0
    for text, spans in assemble_parts(doc.order, files, doc_format=s.doc_format, repo_name=repo_name,
                                      max_doc_bytes=s.max_doc_bytes):
        first = k == 0
        yield {"repo_id": repo_id, "repo_name": repo_name, "source": source, "text": text, "files": spans,
               "languages": sorted({sp["language"] for sp in spans}), "n_files": len(spans),
               "edges_found": doc.edges_found if first else 0, "edges_resolved": doc.edges_resolved if first else 0,
               "cycles_broken": doc.cycles_broken if first else 0, "part": k}
        del text, spans
        k += 1


def _row_table(row: Mapping[str, Any]) -> pa.Table:
    """A REPOS row as a one-row table, its text (UTF-8 bytes) moved into Arrow as it is.
    Given bytes for a string column, `Table.from_pylist` checks them by decoding them into a
    str first: 4 bytes a character for a part with a character beyond the BMP (transformers:
    a 4 MB str for each 1 MiB part). A cast from binary checks them without one."""
    i = REPOS.get_field_index("text")
    text = pa.array([row["text"]], pa.binary()).cast(pa.string())
    return pa.Table.from_pylist([{**row, "text": ""}], schema=REPOS).set_column(i, REPOS.field(i), text)


class SpooledFile(Mapping):
    """A file whose content waits on disk until it is read (`["content"]`).

    A spooled repository holds one of these per file for as long as it is ordered and
    assembled, so it is kept small: slots, the spool's folder shared, the file named by its
    number, the language string shared. Measured on torch (11,297 files, spooled at the
    default batch size): a `pathlib.Path` and two dicts per file held 9 MB (800 B a file,
    and pathlib interns every file name for the life of the process); this holds 1.1 MB
    besides the paths themselves. The content is written and read back untranslated
    (`newline=""`): text mode would turn `\r\n` into `\n`, and a spooled repository
    must come out as it would from a batch.
    """

    __slots__ = ("_path", "_language", "_dir", "_n")

    def __init__(self, path: str, language: str, folder: str, n: int):
        self._path, self._language, self._dir, self._n = path, language, folder, n

    @property
    def where(self) -> str:
        return f"{self._dir}/{self._n:08d}"

    def __getitem__(self, key: str) -> str:
        if key == "content":
            with open(self.where, encoding="utf-8", errors="surrogatepass", newline="") as f:
                return f.read()
        if key == "path":
            return self._path
        if key == "language":
            return self._language
        raise KeyError(key)

    def __iter__(self):
        return iter(("path", "language", "content"))

    def __len__(self) -> int:
        return 3


class Spool:
    """The files of one repository larger than a batch, on disk, in arrival order."""

    def __init__(self, workdir: Path):
        self.dir = Path(tempfile.mkdtemp(prefix="spool-", dir=workdir))
        self.files: list[SpooledFile] = []
        self.meta: tuple[str, str, str] | None = None
        self._languages: dict[str, str] = {}  # one string per language, not one per file

    def add(self, group: pa.Table) -> None:
        cols = group.select(list(_COLUMNS)).to_pydict()
        if self.meta is None:
            self.meta = (cols["repo_id"][0], cols["repo_name"][0], cols["source"][0])
        folder = str(self.dir)
        for path, lang, content in zip(cols["path"], cols["language"], cols["content"]):
            f = SpooledFile(path, self._languages.setdefault(lang, lang), folder, len(self.files))
            with open(f.where, "w", encoding="utf-8", errors="surrogatepass", newline="") as out:
                out.write(content)
            self.files.append(f)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass(frozen=True)
class RepoDocsStep(Step):
    """FILES rows in, one REPOS row per repository (several for a giant one) out."""

    settings: RepoDocsSettings
    stage: ClassVar[str] = "repo_docs"
    schema: ClassVar[pa.Schema] = REPOS
    columns: ClassVar[Sequence[str]] = _COLUMNS

    def begin(self, ctx: StepContext) -> None:
        ctx.state["spool"] = None
        ctx.extra["languages"] = defaultdict(LanguageStats)

    def process(self, batch: Batch, ctx: StepContext) -> None:
        for group, first, last in iter_groups([batch]):
            if first and last:
                files = group.select(list(_COLUMNS)).to_pylist()
                self._emit(files, files[0]["repo_id"], files[0]["repo_name"], files[0]["source"], ctx)
                continue
            if first:
                ctx.state["spool"] = Spool(ctx.workdir)
            spool: Spool = ctx.state["spool"]
            spool.add(group)
            if last:
                ctx.count(("repos_spooled",))
                try:
                    self._emit(spool.files, *spool.meta, ctx, spooled=True)
                finally:
                    spool.remove()
                    ctx.state["spool"] = None

    def _emit(self, files: Sequence[Mapping[str, str]], rid: str, name: str, source: str, ctx: StepContext,
              spooled: bool = False) -> None:
        s = self.settings
        doc = build_repo_doc(files, mode=s.mode, order=s.order, algorithm=s.algorithm, doc_format=s.doc_format,
                             repo_name=name, assemble_text=False, keep_edges=False)
        if spooled:
            trim_heap()
        by_path = {}
        for f in files:
            by_path.setdefault(f["path"], f)  # a repeated path: the first copy (build_repo_doc's rule)
        for lang, st in doc.per_language.items():
            ctx.extra["languages"][lang].add(st)
        parts = 0
        nbytes = 0
        for row in document_rows(doc, by_path, repo_id=rid, repo_name=name, source=source, s=s):
            ctx.write(_row_table(row))
            parts += 1
            nbytes += len(row["text"])
            del row  # not held while the next part is assembled
            if spooled:
                trim_heap()
        ctx.count(("repos",))
        ctx.count(("documents",), parts)
        ctx.count(("files",), doc.n_files)
        ctx.count(("cycles_broken",), doc.cycles_broken)
        if parts > 1:
            ctx.count(("repos_split",))
            ctx.audit("split", repo_id=rid, repo_name=name, size=nbytes,
                      detail=f"{parts} documents of at most {s.max_doc_bytes} bytes")
        for _path, _lang, reason in doc.problems:
            ctx.count(("problems", reason))

    def end(self, ctx: StepContext) -> None:
        if ctx.state["spool"] is not None:  # shards end on repository boundaries: this is a bug, not bad input
            raise AssertionError(f"repository {ctx.state['spool'].meta} still open at the end of shard {ctx.shard.index}")
        ctx.extra["languages"] = dict(ctx.extra["languages"])
