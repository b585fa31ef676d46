"""Repository documents, measured two ways (`--compare`, default both).

`modes`: dependency extraction, regex (the paper's method) vs tree-sitter. For both modes,
over the same repositories: edges found / resolved per language, ordering edges, cycles
broken, order quality, and throughput of `build_repo_doc` (files/s, MB/s, one core). Then,
per language, the resolved file→file edges only one mode found; a regex-only edge is a
*false positive* when every regex match behind it lies inside a comment or a string
(tree-sitter's view of the file), so

    true regex edges = regex edges - false positives   and   tree-sitter >= true regex edges

is the check that tree-sitter finds at least as many true intra-repo edges in every language.
(This comparison used to run inside the repo_docs stage, building every document twice.)

`order`: the ordering algorithms, `paper` (Algorithm 1) vs `scc`, on the tree-sitter edges:
per language, ordering edges that lie on no cycle (all satisfiable at once) and inside
cycles, and the share of each that the order respects. Then the same shares for the direct
edges of the independent judges (below), per judged language, with cycles taken from each
judge's own graph.

`judge`: the project's resolved file→file edges (both modes) against judges that share no code
with its extractors or resolvers, per language:
- Python: imports parsed with the standard library's `ast`, resolved by this script's own
  module lookup (`ast_python_edges`);
- C, C++: the compiler. Each repository's files are written to a temporary folder and every
  C/C++ file is preprocessed on its own, `gcc -MM -MG -H -I<root> -I<each include/ folder>
  [-I --cc-include ...]` (`-x c` or `-x c++ -std=c++17` by the file's language; the root and
  `include/` folders are the -I a C build conventionally passes, `numpy.get_include()` and
  `pyarrow.get_include()` among them; gcc does the search). Its direct edges are the headers
  `-H` shows at depth 1 (read directly by the file); `-MM` lists every header of the
  repository the compiler reads for it, directly or not. System headers and files outside
  the repository are skipped; a file whose preprocessing fails (`#error`) is left out.
Reported: precision = project edges the judge also has / project edges; recall = judge edges
the project found / judge edges; for C/C++ also the share of project edges whose target the
compiler reads at all (`-MM`: a wrong file of the same name is not read; an include in a
branch the default macros leave inactive is not read either). Then the share of the judge's
edges that the document order (tree-sitter edges, each algorithm) respects, on and off the
judge's own cycles. The compiler hides a direct include when an earlier include already read
the header (include guards, `#pragma once`): such an edge is implied by the others, so it is
missing from the judge's direct edges, and a project edge to it counts as read, not direct.

Inputs (any mix, repositories are processed one at a time):
    --files PATH   a Parquet of files (schema dscoder.schemas.FILES), grouped by repo_id;
                   default data/filtered/files.parquet when no other input is given
    --dir DIR      every subdirectory of DIR is a repository (paths relative to it)
    --repo DIR     DIR itself is one repository (paths relative to DIR)
    --pkg DIR      DIR is one repository whose paths start with DIR's own name, the layout of
                   an installed package (`requests/api.py`), as the ingest stage stores them

    --cc-include DIR   an extra -I for the compiler judge (headers outside the repository a
                   file needs, e.g. Python's include folder); not part of the repository

    .venv/bin/python bench/repo_docs.py --pkg .venv/lib/python3.11/site-packages/requests
    .venv/bin/python bench/repo_docs.py --files data/filtered/files.parquet --compare order,judge
    .venv/bin/python bench/repo_docs.py --compare judge \
        --pkg .venv/lib/python3.11/site-packages/numpy/_core/include/numpy \
        --pkg .venv/lib/python3.11/site-packages/torch/include/c10
"""

from __future__ import annotations

import argparse
import ast
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

from dscoder.data.repo_docs.extract import _regexes
from dscoder.data.repo_docs.refs import Ref, names_list
from dscoder.data.repo_docs.resolve import RepoIndex
from dscoder.data.repo_docs.rules import RULES
from dscoder.data.languages import NON_CODE, detect_language
from dscoder.data.repo_docs.document import ALGORITHMS, LanguageStats, build_repo_doc
from dscoder.data.treesitter import get_parser, grammar_name

MODES = ("regex", "tree-sitter")
MAX_FILE_BYTES = 1 << 20  # like the filter stage, skip huge (generated) files when reading folders


def _read_tree(root: Path, rel_to: Path) -> list[dict]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", ".git", "node_modules"))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_symlink() or not p.is_file() or p.stat().st_size > MAX_FILE_BYTES:
                continue
            try:
                content = p.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            path = p.relative_to(rel_to).as_posix()
            lang = detect_language(path, content)
            if lang:
                files.append({"path": path, "language": lang, "content": content})
    return files


def load_repos(args) -> list[tuple[str, list[dict]]]:
    repos: list[tuple[str, list[dict]]] = []
    for d in args.dir or ():
        for sub in sorted(Path(d).iterdir()):
            if sub.is_dir():
                repos.append((sub.name, _read_tree(sub, sub)))
    for d in args.repo or ():
        repos.append((Path(d).name, _read_tree(Path(d), Path(d))))
    for d in args.pkg or ():
        p = Path(d).resolve()
        repos.append((p.name, _read_tree(p, p.parent)))
    files = args.files or (None if repos else "data/filtered/files.parquet")
    if files:
        import pyarrow.parquet as pq

        table = pq.read_table(files, columns=["repo_id", "repo_name", "path", "language", "content"])
        by_repo: dict[str, list[dict]] = defaultdict(list)
        names = {}
        for row in table.to_pylist():
            by_repo[row["repo_id"]].append(row)
            names[row["repo_id"]] = row["repo_name"]
        repos += [(names[r], by_repo[r]) for r in sorted(by_repo)]
    return [(n, fs) for n, fs in repos if fs]


_NON_CODE_NODE = re.compile(r"comment|string|heredoc|char_literal")


def _outside_code(tree, content: str, char_pos: int) -> bool:
    byte_pos = len(content[:char_pos].encode("utf-8", "replace"))
    node = tree.root_node.descendant_for_byte_range(byte_pos, byte_pos)
    while node is not None:
        if _NON_CODE_NODE.search(node.type):
            return True
        node = node.parent
    return False


def regex_false_positive(file: dict, target: str, resolve_targets) -> bool:
    """True when every regex match that yields an edge to `target` sits in a comment or a
    string of the file's tree-sitter parse (so the edge is not a real import)."""
    lang = file["language"]
    rules = RULES[lang]
    parser = get_parser(grammar_name(lang, file["path"]))
    if parser is None or rules.query is None:
        return False
    content = file["content"]
    tree = parser.parse(content.encode("utf-8", "replace"))
    for kind, pattern in _regexes(lang):
        for m in pattern.finditer(content):
            refs = rules.normaliser(kind)(m.group("spec") if "spec" in pattern.groupindex else m.group(0))
            if any(target in resolve_targets(kind, spec, m) for spec in refs):
                if not _outside_code(tree, content, m.start("spec") if "spec" in pattern.groupindex else m.start()):
                    return False
    return True


def run(repos, mode: str):
    """build_repo_doc over every repository; per-language stats, per-repo edge sets, timing."""
    stats: dict[str, LanguageStats] = defaultdict(LanguageStats)
    edges: list[set] = []
    n_files = n_bytes = 0
    t0, c0 = time.perf_counter(), time.process_time()
    docs = []
    for _, files in repos:
        doc = build_repo_doc(files, mode=mode)
        docs.append(doc)
        for lang, s in doc.per_language.items():
            stats[lang].add(s)
        edges.append(set(doc.edges))
        n_files += len(files)
        n_bytes += sum(len(f["content"].encode("utf-8", "replace")) for f in files)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # The peer: order quality of plain path order (order="file") on the same edges.
    path_order_ok: dict[str, int] = defaultdict(int)
    for doc in docs:
        lang_of = {f["path"]: f["language"] for f in doc.files}
        for a, b in doc.edges:
            if lang_of[a] not in NON_CODE and lang_of[b] not in NON_CODE:
                path_order_ok[lang_of[a]] += b < a
    timing = {"files": n_files, "bytes": n_bytes, "seconds": wall, "cpu": cpu}
    return stats, edges, timing, path_order_ok


def compare(repos, results) -> dict[str, dict[str, int]]:
    """Per language: resolved pairs of each mode, pairs only one mode found, and how many
    regex-only pairs are false positives (every match behind them in a comment/string)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for i, (_, files) in enumerate(repos):
        file_of = {f["path"]: f for f in files}
        rg, ts = results["regex"][1][i], results["tree-sitter"][1][i]
        for mode, pairs in (("regex", rg), ("tree-sitter", ts)):
            for a, _ in pairs:
                out[file_of[a]["language"]][f"{mode}_pairs"] += 1
        for a, _ in ts - rg:
            out[file_of[a]["language"]]["tree-sitter_only"] += 1
        index = RepoIndex((f["path"], f["language"], f["content"]) for f in files) if rg - ts else None
        for a, b in sorted(rg - ts):
            lang = file_of[a]["language"]

            def targets(kind, spec, m, _a=a, _lang=lang):
                has_names = "names" in m.re.groupindex and m.group("names")
                ref = Ref(kind, spec, names_list(m.group("names")) if has_names else ())
                return RULES[_lang].resolve(ref, _a, index)

            out[lang]["regex_only"] += 1
            out[lang]["regex_false"] += regex_false_positive(file_of[a], b, targets)
    return out


# ---------------------------------------------------------------------------- order: the judge


def _py_module_index(paths: list[str]) -> dict[str, str]:
    """Repository-relative module stem ("a/b/c", "a/b" for a/b/__init__.py) -> file; .py
    before .pyi."""
    index: dict[str, str] = {}
    for p in sorted(paths, key=lambda q: (q.endswith(".pyi"), q)):
        stem = p.rsplit(".", 1)[0]
        if stem.endswith("/__init__") or stem == "__init__":
            stem = stem[: -len("__init__")].rstrip("/")
        index.setdefault(stem, p)
    return index


def _py_roots(paths: list[str], importer: str) -> list[str]:
    """sys.path as `importer` would see it: the folder above its package chain, the
    repository root, src/, then the folder above every top-level package."""
    have = set(paths)

    def is_pkg(d: str) -> bool:
        return bool(d) and (f"{d}/__init__.py" in have or f"{d}/__init__.pyi" in have)

    d = posixpath.dirname(importer)
    while is_pkg(d):
        d = posixpath.dirname(d)
    tops = sorted({posixpath.dirname(posixpath.dirname(p)) for p in have if p.endswith("/__init__.py")
                   and not is_pkg(posixpath.dirname(posixpath.dirname(p)))})
    return list(dict.fromkeys([d, "", "src", *tops]))


def ast_python_edges(files: list[dict], parsed: set[str] | None = None) -> set[tuple[str, str]]:
    """(importer, imported file) pairs between the repository's Python files, from `ast`:
    `import a.b` names its deepest module found, `from a import x` names a.x when that is a
    module and otherwise a, or a's deepest package found (`from a.ext import x` with no a/ext
    file still runs a/__init__.py); relative imports count from the importer's package. The
    paths of the files `ast` could parse are added to `parsed` when given."""
    py = [f for f in files if f["language"] == "python"]
    paths = [f["path"] for f in py]
    index = _py_module_index(paths)
    edges: set[tuple[str, str]] = set()
    for f in py:
        try:
            tree = ast.parse(f["content"])
        except (SyntaxError, ValueError):
            continue
        if parsed is not None:
            parsed.add(f["path"])
        roots = None
        here = posixpath.dirname(f["path"])

        def find(bases: list[str], parts: list[str]) -> str | None:
            for b in bases:
                hit = index.get("/".join(x for x in (b, *parts) if x))
                if hit and (parts or b):
                    return hit
            return None

        def deepest(bases: list[str], parts: list[str]) -> str | None:
            return next((h for k in range(len(parts), 0, -1) if (h := find(bases, parts[:k]))), None)

        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = roots or _py_roots(paths, f["path"])
                for alias in node.names:
                    parts = alias.name.split(".")
                    hit = deepest(roots, parts)
                    if hit:
                        edges.add((f["path"], hit))
            elif isinstance(node, ast.ImportFrom):
                parts = (node.module or "").split(".") if node.module else []
                if node.level:
                    base = here
                    for _ in range(node.level - 1):
                        base = posixpath.dirname(base)
                    bases = [base]
                else:
                    bases = roots = roots or _py_roots(paths, f["path"])
                module = deepest(bases, parts) if parts else find(bases, parts)
                for alias in node.names:
                    sub = find(bases, [*parts, alias.name]) if alias.name != "*" else None
                    hit = sub or module
                    if hit:
                        edges.add((f["path"], hit))
    return {(a, b) for a, b in edges if a != b}


# The compiler judge for C and C++: gcc's own include search and preprocessor.
CC = os.environ.get("CC_JUDGE", "gcc")
CC_LANGS = {"c": ["-x", "c"], "cpp": ["-x", "c++", "-std=c++17"]}
CC_JOBS = max(1, min(2, os.cpu_count() or 1))


def parse_include_tree(stderr: str) -> list[tuple[int, str]]:
    """(depth, path) of each header in gcc's `-H` output, in the order they were read."""
    out = []
    for line in stderr.splitlines():
        if line.startswith("Multiple include guards"):
            break
        m = re.match(r"(\.+) (.+)$", line)
        if m:
            out.append((len(m.group(1)), m.group(2)))
    return out


def parse_make_deps(text: str) -> list[str]:
    """The prerequisites of a make rule as `gcc -M` writes it (continuations, escaped spaces)."""
    body = text.replace("\\\n", " ")
    _, _, deps = body.partition(": ")
    return [d.replace("\\ ", " ") for d in re.split(r"(?<!\\)\s+", deps.strip()) if d]


def _in_repo(root: Path, path: str, have: set[str]) -> str | None:
    """A path gcc printed (relative to `root`, its working folder, or absolute) as a
    repository path, None when it is not one of the repository's files."""
    full = os.path.normpath(path if os.path.isabs(path) else os.path.join(root, path))
    rel = os.path.relpath(full, root)
    return rel if rel in have else None


def repo_include_dirs(paths: Iterable[str]) -> list[str]:
    """The -I a C/C++ build of the repository conventionally passes: its root, then every
    folder named `include` (shallowest first)."""
    dirs = {d for p in paths for d in _parents(p) if posixpath.basename(d) == "include"}
    return [".", *sorted(dirs, key=lambda d: (d.count("/"), d))]


def _parents(path: str) -> Iterable[str]:
    d = posixpath.dirname(path)
    while d:
        yield d
        d = posixpath.dirname(d)


def gcc_includes(root: Path, path: str, lang: str, include_dirs: list[str], have: set[str]):
    """(direct, read) repository files of one file by the compiler, None when it fails.
    `include_dirs`: the -I list, in order (relative ones to the repository root)."""
    cmd = [CC, *CC_LANGS[lang], "-MM", "-MG", "-H", "-MT", "x", *(f"-I{d}" for d in include_dirs), path]
    r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, errors="replace")
    if r.returncode:
        return None
    direct = {q for d, p in parse_include_tree(r.stderr) if d == 1 and (q := _in_repo(root, p, have))}
    read = {q for p in parse_make_deps(r.stdout) if (q := _in_repo(root, p, have))}
    return direct - {path}, read - {path}


class Judge:
    """One repository's judged edges for a language: `direct` (importer, imported) pairs,
    `read` (C/C++: every repository file the compiler reads for the importer; None for
    Python), the importers judged and those the judge failed on."""

    def __init__(self) -> None:
        self.direct: set[tuple[str, str]] = set()
        self.read: set[tuple[str, str]] | None = None
        self.judged: set[str] = set()
        self.failed = 0


def compiler_judges(files: list[dict], include_dirs: list[str]) -> dict[str, Judge]:
    """Per C-family language: the compiler's edges between the repository's files (written to
    a temporary folder, each C/C++ file preprocessed on its own)."""
    cfiles = [f for f in files if f["language"] in CC_LANGS]
    if not cfiles or not shutil.which(CC):
        return {}
    out: dict[str, Judge] = {}
    include_dirs = [*repo_include_dirs(f["path"] for f in files), *(os.path.abspath(d) for d in include_dirs)]
    with tempfile.TemporaryDirectory(prefix="judge-cc-") as tmp:
        root = Path(tmp)
        for f in files:
            p = root / f["path"]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(f["content"].encode("utf-8", "replace"))
        have = {f["path"] for f in files}
        with ThreadPoolExecutor(CC_JOBS) as pool:
            results = pool.map(lambda f: gcc_includes(root, f["path"], f["language"], include_dirs, have), cfiles)
            for f, res in zip(cfiles, results):
                j = out.setdefault(f["language"], Judge())
                j.read = j.read if j.read is not None else set()
                if res is None:
                    j.failed += 1
                    continue
                j.judged.add(f["path"])
                j.direct |= {(f["path"], b) for b in res[0]}
                j.read |= {(f["path"], b) for b in res[1]}
    return out


def judges_of(files: list[dict], include_dirs: list[str]) -> dict[str, Judge]:
    """Every judge of one repository, by the importer's language."""
    out = compiler_judges(files, include_dirs)
    if any(f["language"] == "python" for f in files):
        py = out["python"] = Judge()
        py.direct = ast_python_edges(files, py.judged)
        py.failed = sum(f["language"] == "python" for f in files) - len(py.judged)
    return out


def judge_scc(nodes: list[str], edges: set[tuple[str, str]]) -> dict[str, int]:
    """Strongly connected components of the judge's own graph: node -> component id.
    Kosaraju's two passes (finishing order on the graph, then reachability on its reverse),
    written here so that no project code (its resolver uses Tarjan's) decides the judge's cycles."""
    succ: dict[str, list[str]] = defaultdict(list)
    pred: dict[str, list[str]] = defaultdict(list)
    for a, b in sorted(edges):
        succ[a].append(b)
        pred[b].append(a)
    finished: list[str] = []
    seen: set[str] = set()
    for start in nodes:
        if start in seen:
            continue
        seen.add(start)
        path = [(start, iter(succ[start]))]
        while path:
            v, it = path[-1]
            w = next((x for x in it if x not in seen), None)
            if w is None:
                finished.append(v)
                path.pop()
            else:
                seen.add(w)
                path.append((w, iter(succ[w])))
    comp: dict[str, int] = {}
    n_comp = 0
    for leader in reversed(finished):
        if leader in comp:
            continue
        comp[leader] = cid = n_comp
        n_comp += 1
        todo = [leader]
        while todo:
            for u in pred[todo.pop()]:
                if u not in comp:
                    comp[u] = cid
                    todo.append(u)
    return comp


def _respected_split(order: list[str], edges: set[tuple[str, str]]) -> dict[str, int]:
    pos = {p: i for i, p in enumerate(order)}
    edges = {(a, b) for a, b in edges if a in pos and b in pos}
    comp = judge_scc(list(pos), edges)
    out = dict.fromkeys(["acyclic", "acyclic_ok", "cycle", "cycle_ok"], 0)
    for a, b in edges:
        key = "cycle" if comp[a] == comp[b] else "acyclic"
        out[key] += 1
        out[key + "_ok"] += pos[b] < pos[a]
    return out


def run_orders(repos, judges, mode: str = "tree-sitter"):
    """Per algorithm: per-language stats (tree-sitter edges) and, per judged language, the
    judge's direct edges split on and off its own cycles, with the share the order respects."""
    out = {}
    for alg in ALGORITHMS:
        stats: dict[str, LanguageStats] = defaultdict(LanguageStats)
        judged: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for (_, files), jd in zip(repos, judges):
            doc = build_repo_doc(files, mode=mode, algorithm=alg)
            for lang, st in doc.per_language.items():
                stats[lang].add(st)
            order = [f["path"] for f in doc.files]
            for lang, j in jd.items():
                for key, v in _respected_split(order, j.direct).items():
                    judged[lang][key] += v
                judged[lang]["shared"] += len(j.direct & set(doc.edges))
                judged[lang]["found"] += len(j.direct)
        out[alg] = (stats, judged)
    return out


def run_judges(repos, judges, misses: dict | None = None) -> dict[str, dict[str, dict[str, int]]]:
    """Per mode and judged language: the project's edges (between judged files of the
    language family) against the judge's. `misses`, when given, collects per (mode, language)
    the disagreements: project edges the judge lacks (C/C++: whose target is not even read)
    and judge edges the project lacks, as (repository, importer, imported)."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for mode in MODES:
        per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for (name, files), jd in zip(repos, judges):
            lang_of = {f["path"]: f["language"] for f in files}
            doc_edges = set(build_repo_doc(files, mode=mode).edges)
            for lang, j in jd.items():
                family = {"python"} if lang == "python" else set(CC_LANGS)
                ours = {(a, b) for a, b in doc_edges if a in j.judged and lang_of.get(b) in family}
                c = per[lang]
                c["files"] += len(j.judged)
                c["failed"] += j.failed
                c["judge"] += len(j.direct)
                c["ours"] += len(ours)
                c["both"] += len(ours & j.direct)
                if j.read is not None:
                    c["read"] += len(ours & j.read)
                if misses is not None:
                    extra = ours - (j.read if j.read is not None else j.direct)
                    misses.setdefault((mode, lang), []).extend(
                        [("ours only", name, a, b) for a, b in sorted(extra)]
                        + [("judge only", name, a, b) for a, b in sorted(j.direct - ours)])
        out[mode] = per
    return out


def report_judges(repos, judges, show: int = 0) -> None:
    misses: dict = {}
    res = run_judges(repos, judges, misses)
    print("the project's resolved file→file edges against independent judges (Python: `ast` and this"
          " script's module lookup; C/C++: gcc -MM -MG -H)")
    hdr = (f"{'language':<9} {'mode':<11} {'files':>6} {'failed':>6} {'judge':>6} {'ours':>6} {'both':>6} "
           f"{'precision':>9} {'recall':>7} {'ours read':>9}")
    _header(hdr)
    for lang in sorted(set(res["tree-sitter"]) | set(res["regex"])):
        for mode in MODES:
            c = res[mode][lang]
            read = _pct(c["read"], c["ours"]) if lang in CC_LANGS else "-"
            print(f"{lang:<9} {mode:<11} {c['files']:>6} {c['failed']:>6} {c['judge']:>6} {c['ours']:>6} "
                  f"{c['both']:>6} {_pct(c['both'], c['ours']):>9} {_pct(c['both'], c['judge']):>7} {read:>9}")
    print("judge = the judge's direct edges; ours = the project's edges from the judged files; both = in"
          " both; precision = both/ours, recall = both/judge; ours read = share of ours whose target the"
          " compiler reads for the importer (directly or not); failed = files the judge could not process")
    for (mode, lang), rows in sorted(misses.items()):
        if show and rows:
            print(f"\n{lang}, {mode}: {len(rows)} disagreements (C/C++ `ours only`: target not read by the"
                  f" compiler){', the first ' + str(show) if len(rows) > show else ''}")
            for kind, name, a, b in rows[:show]:
                print(f"  {kind:<10} {name}: {a} -> {b}")


def _header(line: str) -> None:
    print(line)
    print("-" * len(line))


def _pct(ok: int, n: int) -> str:
    """A share; with two decimals where one would round a shortfall up to 100.0%."""
    if not n:
        return "-"
    return f"{ok / n:.2%}" if ok < n and ok / n >= 0.9995 else f"{ok / n:.1%}"


def report_orders(repos, judges) -> None:
    res = run_orders(repos, judges)
    paper, scc = res["paper"][0], res["scc"][0]
    langs = sorted(lg for lg in set(paper) | set(scc) if paper[lg].graph_edges or scc[lg].graph_edges)
    print("ordering algorithms on the tree-sitter edges: ordering edges on no cycle (acyclic) and"
          " inside cycles, and the share of each whose target comes first")
    hdr = (f"{'language':<11} {'algorithm':<9} {'edges':>6} {'acyclic':>7} {'kept':>6} {'share':>7} "
           f"{'in_cycle':>8} {'kept':>6} {'share':>7} {'broken':>6} {'check':>14}")
    _header(hdr)
    for lang in langs:
        for alg in ALGORITHMS:
            s = res[alg][0][lang]
            check = ""
            if alg == "scc":
                ok = s.acyclic_in_order == s.acyclic_edges and s.cycle_in_order >= paper[lang].cycle_in_order
                check = "yes" if ok else "NO"
            print(f"{lang:<11} {alg:<9} {s.graph_edges:>6} {s.acyclic_edges:>7} {s.acyclic_in_order:>6} "
                  f"{_pct(s.acyclic_in_order, s.acyclic_edges):>7} {s.cycle_edges:>8} {s.cycle_in_order:>6} "
                  f"{_pct(s.cycle_in_order, s.cycle_edges):>7} {s.cycles_broken:>6} {check:>14}")
    print("check (scc rows): every acyclic edge kept, and at least as many in-cycle edges as paper")
    print("\nthe judges' direct edges (Python: `ast`, C/C++: the compiler; cycles of the judge's own"
          " graph) and the share of them the order respects")
    hdr2 = (f"{'language':<9} {'algorithm':<9} {'judge':>6} {'in_ts':>6} {'acyclic':>7} {'kept':>6} {'share':>7} "
            f"{'in_cycle':>8} {'kept':>6} {'share':>7} {'all':>7}")
    _header(hdr2)
    for lang in sorted(res["scc"][1]):
        for alg in ALGORITHMS:
            j = res[alg][1][lang]
            print(f"{lang:<9} {alg:<9} {j['found']:>6} {j['shared']:>6} {j['acyclic']:>7} {j['acyclic_ok']:>6} "
                  f"{_pct(j['acyclic_ok'], j['acyclic']):>7} {j['cycle']:>8} {j['cycle_ok']:>6} "
                  f"{_pct(j['cycle_ok'], j['cycle']):>7} {_pct(j['acyclic_ok'] + j['cycle_ok'], j['found']):>7}")
    print("judge = the judge's direct edges; in_ts = of those, also found by tree-sitter")


# ---------------------------------------------------------------------------- main


def report_modes(repos) -> None:
    results = {m: run(repos, m) for m in MODES}
    cmp = compare(repos, results)
    langs = [lg for lg in sorted(set(results["regex"][0]) | set(results["tree-sitter"][0])) if lg in RULES]
    hdr = (f"{'language':<11} {'mode':<11} {'files':>6} {'found':>7} {'resolved':>8} {'share':>6} "
           f"{'edges':>6} {'cycles':>6} {'order_q':>7} {'path_q':>6} {'parse_err':>9}")
    _header(hdr)
    for lang in langs:
        for m in MODES:
            s = results[m][0][lang]
            share = s.edges_resolved / s.edges_found if s.edges_found else 0.0
            oq = f"{s.order_quality:.3f}" if s.order_quality is not None else "-"
            pq = f"{results[m][3][lang] / s.graph_edges:.3f}" if s.graph_edges else "-"
            print(f"{lang:<11} {m:<11} {s.files:>6} {s.edges_found:>7} {s.edges_resolved:>8} {share:>6.1%} "
                  f"{s.graph_edges:>6} {s.cycles_broken:>6} {oq:>7} {pq:>6} {s.parse_errors:>9}")
    print("found/resolved = import references; edges = distinct ordering pairs between code files;"
          " order_q = share of them whose target comes first (default algorithm), path_q = the same under"
          " plain path order (order=file); parse_err = files whose tree had errors (tree-sitter ∪ regex used)")
    print("\ntree-sitter vs regex on resolved file→file pairs; a regex-only pair is false when every"
          " regex match behind it lies in a comment or a string")
    hdr2 = (f"{'language':<11} {'ts_pairs':>8} {'ts_only':>7} {'rx_pairs':>8} {'rx_only':>7} {'rx_false':>8} "
            f"{'rx_true':>7} {'ts>=rx_true':>11}")
    _header(hdr2)
    for lang in langs:
        c = cmp[lang]
        rx_true = c["regex_pairs"] - c["regex_false"]
        missed = c["regex_only"] - c["regex_false"]  # true regex pairs tree-sitter did not find
        verdict = "yes" if c["tree-sitter_pairs"] >= rx_true and missed == 0 else f"NO ({missed} missed)"
        print(f"{lang:<11} {c['tree-sitter_pairs']:>8} {c['tree-sitter_only']:>7} {c['regex_pairs']:>8} "
              f"{c['regex_only']:>7} {c['regex_false']:>8} {rx_true:>7} {verdict:>11}")
    print("\nthroughput of build_repo_doc (extract + resolve + order + assemble), one process;"
          " per CPU second (the machine may be shared) and per wall second")
    print(f"{'mode':<11} {'cpu_s':>7} {'files/cpu_s':>11} {'MB/cpu_s':>8} {'wall_s':>7} {'files/s':>8} {'MB/s':>6}")
    for m in MODES:
        t = results[m][2]
        print(f"{m:<11} {t['cpu']:>7.2f} {t['files'] / t['cpu']:>11.0f} {t['bytes'] / 1e6 / t['cpu']:>8.2f} "
              f"{t['seconds']:>7.2f} {t['files'] / t['seconds']:>8.0f} {t['bytes'] / 1e6 / t['seconds']:>6.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files")
    ap.add_argument("--dir", action="append")
    ap.add_argument("--repo", action="append")
    ap.add_argument("--pkg", action="append")
    ap.add_argument("--cc-include", action="append", default=[], help="an extra -I for the compiler judge")
    ap.add_argument("--show-misses", type=int, default=0, metavar="N",
                    help="judge: list up to N disagreements per language and mode")
    ap.add_argument("--compare", default="modes,order,judge", help="any of modes, order, judge (default: all)")
    args = ap.parse_args(argv)
    repos = load_repos(args)
    if not repos:
        print("no input files", file=sys.stderr)
        return 1
    sections = set(args.compare.split(","))
    bad = sections - {"modes", "order", "judge"}
    if bad:
        ap.error(f"--compare: unknown {sorted(bad)}")
    n_files = sum(len(fs) for _, fs in repos)
    n_bytes = sum(len(f["content"].encode("utf-8", "replace")) for _, fs in repos for f in fs)
    print(f"repositories: {len(repos)}, files: {n_files}, MB: {n_bytes / 1e6:.2f}\n")
    if "modes" in sections:
        report_modes(repos)
    if sections & {"order", "judge"}:
        if not shutil.which(CC) and any(f["language"] in CC_LANGS for _, fs in repos for f in fs):
            print(f"{CC} not found: C/C++ files go unjudged", file=sys.stderr)
        t0 = time.perf_counter()
        judges = [judges_of(files, args.cc_include) for _, files in repos]
        print(f"judges: {time.perf_counter() - t0:.1f} s wall")
    if "judge" in sections:
        print()
        report_judges(repos, judges, args.show_misses)
    if "order" in sections:
        print()
        report_orders(repos, judges)
    return 0


if __name__ == "__main__":
    sys.exit(main())
