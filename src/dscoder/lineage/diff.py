"""The data diff between two versions of the pipeline: files and repositories added to or
removed from a set (default: the training set, paths.clean_repos file spans), per
language, each with the decision that changed — the stage, rule and detail that keep it out
at the version where it is absent (filter rule, dedup cluster, decontam benchmark, ...).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from dscoder.lineage.index import SET_AT, Lineage


def _keys(t) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["repo_id"], r["path"]): r for r in t.to_pylist()}


def diff(a: Lineage, b: Lineage, at: str = "clean", decisions: bool = True) -> dict[str, Any]:
    """Files and repositories in the set `at` (index.SET_AT) of `b` but not `a` (added) and of
    `a` but not `b` (removed). Each changed file carries `decision`: `file_decision` at the
    version where it is absent (why it is out there)."""
    fa, fb = _keys(a.set_files(at)), _keys(b.set_files(at))
    added = sorted(set(fb) - set(fa))
    removed = sorted(set(fa) - set(fb))

    def entry(key, row, other: Lineage) -> dict[str, Any]:
        e = {"repo_id": key[0], "repo_name": row["repo_name"], "path": key[1], "language": row["language"]}
        if decisions:
            d = other.file_decision(*key)
            e["decision"] = {k: d.get(k) for k in ("dropped_at", "reason", "detail")}
            cl = next((s.get("cluster") for s in d["steps"] if s.get("cluster")), None)
            if cl is not None and d.get("dropped_at") == "dedup":
                e["decision"]["cluster"] = {"cluster_id": cl["cluster_id"], "jaccard": cl["jaccard"],
                                            "members": cl["members"]}
        return e

    add = [entry(k, fb[k], a) for k in added]
    rem = [entry(k, fa[k], b) for k in removed]
    repos_a = {k[0]: r["repo_name"] for k, r in fa.items()}
    repos_b = {k[0]: r["repo_name"] for k, r in fb.items()}
    by_lang: dict[str, Counter] = defaultdict(Counter)
    for lang_rows, key in ((fa.values(), "files_a"), (fb.values(), "files_b")):
        for r in lang_rows:
            by_lang[r["language"]][key] += 1
    for e in add:
        by_lang[e["language"]]["added"] += 1
    for e in rem:
        by_lang[e["language"]]["removed"] += 1
    by_reason: Counter = Counter()
    for sign, rows in (("+", add), ("-", rem)):
        for e in rows:
            d = e.get("decision") or {}
            by_reason[f"{sign} {d.get('dropped_at')}:{d.get('reason')}"] += 1
    return {
        "a": a.label, "b": b.label, "at": at, "set": b.paths.get(SET_AT[at]),
        "files": {"a": len(fa), "b": len(fb), "added": len(add), "removed": len(rem)},
        "repos": {"a": len(repos_a), "b": len(repos_b),
                  "added": [{"repo_id": r, "repo_name": repos_b[r]} for r in sorted(set(repos_b) - set(repos_a))],
                  "removed": [{"repo_id": r, "repo_name": repos_a[r]} for r in sorted(set(repos_a) - set(repos_b))]},
        "by_language": {k: {m: v.get(m, 0) for m in ("files_a", "files_b", "added", "removed")}
                        for k, v in sorted(by_lang.items()) if v.get("added") or v.get("removed")},
        "by_decision": dict(sorted(by_reason.items())),
        "added": add,
        "removed": rem,
    }


def format_diff(d: dict[str, Any], limit: int = 50) -> list[str]:
    f = d["files"]
    lines = [f"{d['set']} ({d['at']}): {d['a']} → {d['b']}: {f['a']} → {f['b']} files, "
             f"+{f['added']} -{f['removed']}; repositories {d['repos']['a']} → {d['repos']['b']}"]
    for kind in ("added", "removed"):
        for r in d["repos"][kind]:
            lines.append(f"  repository {kind}: {r['repo_name']} ({r['repo_id']})")
    if d["by_language"]:
        lines.append("  per language:   files A → B   added  removed")
        for lang, v in d["by_language"].items():
            lines.append(f"    {lang:<14} {v['files_a']:>6} → {v['files_b']:<6} {v['added']:>5} {v['removed']:>7}")
    if d["by_decision"]:
        lines.append("  by decision (at the revision where the file is out):")
        for k, v in d["by_decision"].items():
            lines.append(f"    {k}: {v}")
    for sign, kind, where in (("+", "added", "A"), ("-", "removed", "B")):
        rows = d[kind]
        for e in rows[:limit]:
            dec = e.get("decision") or {}
            why = f"{dec.get('dropped_at')}: {dec.get('reason')}" + (f" ({dec['detail']})" if dec.get("detail") else "")
            lines.append(f"  {sign} {e['repo_name']}/{e['path']} [{e['language']}]  (at {where}: {why})")
        if len(rows) > limit:
            lines.append(f"  ... {len(rows) - limit} more {kind} (--json lists all)")
    return lines
