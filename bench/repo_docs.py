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
cycles, and the share of each that the order respects. Then the same shares for Python
against an independent judge: import edges parsed with the standard library's `ast` and
resolved by this script's own module lookup (no tree-sitter, no project resolver), with
cycles taken from the judge's own graph.

Inputs (any mix, repositories are processed one at a time):
    --files PATH   a Parquet of files (schema dscoder.schemas.FILES), grouped by repo_id;
                   default data/filtered/files.parquet when no other input is given
    --dir DIR      every subdirectory of DIR is a repository (paths relative to it)
    --repo DIR     DIR itself is one repository (paths relative to DIR)
    --pkg DIR      DIR is one repository whose paths start with DIR's own name, the layout of
                   an installed package (`requests/api.py`), as the ingest stage stores them

    .venv/bin/python bench/repo_docs.py --pkg .venv/lib/python3.11/site-packages/requests
    .venv/bin/python bench/repo_docs.py --files data/filtered/files.parquet --compare order
"""

from __future__ import annotations

import argparse
import ast
import os
import posixpath
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

from dscoder.data.repo_docs.extract import _regexes
from dscoder.data.repo_docs.refs import Ref, names_list
from dscoder.data.repo_docs.resolve import RepoIndex
from dscoder.data.repo_docs.rules import RULES
from dscoder.data.languages import NON_CODE, detect_language
from dscoder.data.repo_docs.document import ALGORITHMS, LanguageStats, build_repo_doc, strongly_connected
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


def ast_python_edges(files: list[dict]) -> set[tuple[str, str]]:
    """(importer, imported file) pairs between the repository's Python files, from `ast`:
    `import a.b` names its deepest module found, `from a import x` names a.x when that is a
    module and a otherwise, relative imports count from the importer's package."""
    py = [f for f in files if f["language"] == "python"]
    paths = [f["path"] for f in py]
    index = _py_module_index(paths)
    edges: set[tuple[str, str]] = set()
    for f in py:
        try:
            tree = ast.parse(f["content"])
        except (SyntaxError, ValueError):
            continue
        roots = None
        here = posixpath.dirname(f["path"])

        def find(bases: list[str], parts: list[str]) -> str | None:
            for b in bases:
                hit = index.get("/".join(x for x in (b, *parts) if x))
                if hit and (parts or b):
                    return hit
            return None

        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = roots or _py_roots(paths, f["path"])
                for alias in node.names:
                    parts = alias.name.split(".")
                    hit = next((h for k in range(len(parts), 0, -1) if (h := find(roots, parts[:k]))), None)
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
                module = find(bases, parts)
                for alias in node.names:
                    sub = find(bases, [*parts, alias.name]) if alias.name != "*" else None
                    hit = sub or module
                    if hit:
                        edges.add((f["path"], hit))
    return {(a, b) for a, b in edges if a != b}


def _respected_split(order: list[str], edges: set[tuple[str, str]]) -> dict[str, int]:
    pos = {p: i for i, p in enumerate(order)}
    edges = {(a, b) for a, b in edges if a in pos and b in pos}
    comp = strongly_connected(list(pos), edges)
    out = dict.fromkeys(["acyclic", "acyclic_ok", "cycle", "cycle_ok"], 0)
    for a, b in edges:
        key = "cycle" if comp[a] == comp[b] else "acyclic"
        out[key] += 1
        out[key + "_ok"] += pos[b] < pos[a]
    return out


def run_orders(repos, mode: str = "tree-sitter"):
    """Per algorithm: per-language stats (tree-sitter edges) and the Python judge's counts."""
    judge_edges = [ast_python_edges(files) for _, files in repos]
    out = {}
    for alg in ALGORITHMS:
        stats: dict[str, LanguageStats] = defaultdict(LanguageStats)
        judge: dict[str, int] = defaultdict(int)
        for (_, files), jedges in zip(repos, judge_edges):
            doc = build_repo_doc(files, mode=mode, algorithm=alg)
            for lang, st in doc.per_language.items():
                stats[lang].add(st)
            for key, v in _respected_split([f["path"] for f in doc.files], jedges).items():
                judge[key] += v
            judge["shared"] += len(jedges & set(doc.edges))
            judge["found"] += len(jedges)
        out[alg] = (stats, judge)
    return out


def _header(line: str) -> None:
    print(line)
    print("-" * len(line))


def _pct(ok: int, n: int) -> str:
    return f"{ok / n:.1%}" if n else "-"


def report_orders(repos) -> None:
    res = run_orders(repos)
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
    print("\nPython, against the independent judge (imports parsed with `ast`, cycles of the judge's graph)")
    hdr2 = (f"{'algorithm':<9} {'judge':>6} {'in_ts':>6} {'acyclic':>7} {'kept':>6} {'share':>7} "
            f"{'in_cycle':>8} {'kept':>6} {'share':>7} {'all':>7}")
    _header(hdr2)
    for alg in ALGORITHMS:
        j = res[alg][1]
        print(f"{alg:<9} {j['found']:>6} {j['shared']:>6} {j['acyclic']:>7} {j['acyclic_ok']:>6} "
              f"{_pct(j['acyclic_ok'], j['acyclic']):>7} {j['cycle']:>8} {j['cycle_ok']:>6} "
              f"{_pct(j['cycle_ok'], j['cycle']):>7} {_pct(j['acyclic_ok'] + j['cycle_ok'], j['found']):>7}")
    print("judge = Python→Python import edges by `ast`; in_ts = of those, also found by tree-sitter")


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
    ap.add_argument("--compare", default="modes,order", help="modes, order or both (default)")
    args = ap.parse_args(argv)
    repos = load_repos(args)
    if not repos:
        print("no input files", file=sys.stderr)
        return 1
    sections = set(args.compare.split(","))
    bad = sections - {"modes", "order"}
    if bad:
        ap.error(f"--compare: unknown {sorted(bad)}")
    n_files = sum(len(fs) for _, fs in repos)
    n_bytes = sum(len(f["content"].encode("utf-8", "replace")) for _, fs in repos for f in fs)
    print(f"repositories: {len(repos)}, files: {n_files}, MB: {n_bytes / 1e6:.2f}\n")
    if "modes" in sections:
        report_modes(repos)
    if "order" in sections:
        print()
        report_orders(repos)
    return 0


if __name__ == "__main__":
    sys.exit(main())
