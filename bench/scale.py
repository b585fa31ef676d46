"""Every data stage at 1x, 4x and ~12x the default corpus (and >= 2 GB with --big): MB in, wall
seconds, MB/s and the peak RSS of each stage's whole process tree.

    .venv/bin/python bench/scale.py                       # 1x, 4x, ~12x; every data stage
    .venv/bin/python bench/scale.py --sizes 1,4 --stages ingest,filter --runner dask --workers 2
    .venv/bin/python bench/scale.py --big --sizes 1       # the default corpus and one of >= 2 GB
    options: --set runner.batch_bytes=8000000 (any params key), --out results.json, --keep,
             --workdir DIR (reused: a stage whose outputs are there is not rerun as a prerequisite)

Corpora, all real code already on the machine (nothing is downloaded):
- 1x: `ingest.sources` of params.yaml as it is (~116 repositories, ~27 MB ingested).
- Nx (N < ~10): the default sources plus whole package directories of .venv's site-packages as
  `dir` sources (one repository each), taken in a fixed pseudo-random order until the estimated
  ingestible bytes reach N times the default's; a package that would overshoot is skipped.
- ~12x: a `dirs` source over .venv's site-packages: every installed package is one repository,
  torch (one ~80 MB repository) included. Its real ratio to 1x is printed (13-14x here).
- --big (>= 2 GB): that corpus plus mutated copies of site-packages as further `dirs` sources
  until >= 2 GB. A verbatim copy would be honest input for ingest and filter but dedup would
  rightly remove it, so later stages would only see one copy. Each copy is therefore a
  consistent *fork*: in copy k, about 20% of the distinct identifiers of 3+ characters
  (language keywords, literals like true/null, dunder names and `__future__` features
  excepted) get the suffix `_k` everywhere, in file contents and in file and directory names
  alike, so imports still resolve, code still parses and the language mix, file sizes and
  near-duplicates *within* a copy stay what they were, while word 5-gram Jaccard falls to
  ~0.3-0.4 against the original and ~0.2 between copies (requests, click, jinja2: every
  mutated .py file still compiles), below the 0.7 threshold. Files of no known language are hard links (ingest skips
  them anyway). This is real code in real layouts, but 1/N of it is original: count it as a
  stress test of volume, not of diversity.

Each stage runs as the user runs it, `python -m stages.<name> --params params.yaml` with the
working directory a scratch project folder (data/, reports/, artifacts/ land there), against
one `prefect server` on 127.0.0.1 for the whole bench (as `python -m flows.server` does), so
Prefect's start-up does not dominate small stages. bench/_rss.py samples the stage process and
all its descendants every 0.1 s: `tree MB` is the peak of the sum of their RSS, `proc MB` the
peak RSS of the largest single process (the driver or a worker), `busy` CPU seconds /
(wall x workers). `MB in` is what the stage reads: ingest the bytes it ingested, filter and
repo_docs the files' bytes, the others the repository documents' UTF-8 bytes. The tokenizer
trains on a sample capped by `tokenizer.sample_chars`, so its MB/s is not expected to hold
with scale. Dedup is shown next to datatrove's MinHash pipeline (signature, buckets, cluster,
filter, reading and writing Parquet) on the same repository documents with the same bands x
rows, when datatrove is importable by /work/bench-venv/bin/python or .venv's python (see
bench/dedup.py for that side venv); otherwise a note says it was skipped.

The checks of the issue's "Done when" (peak RSS of the largest process, and of the largest
worker process alone, at ~12x <= 1.25x its 1x figure, whole tree <= 2 GB, MB/s at ~12x >= 0.9x its 1x figure) are printed as PASS/FAIL
lines for the largest size run against 1x, and everything goes to a JSON file (--out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ("ingest", "filter", "repo_docs", "dedup", "decontam", "tokenizer", "pack")
# what each stage reads (for MB in) and the outputs that show it ran
INPUT = {"filter": ("files", "data/raw/files.parquet"), "repo_docs": ("files", "data/filtered/files.parquet"),
         "dedup": ("repos", "data/repos/repos.parquet"), "decontam": ("repos", "data/dedup/repos.parquet"),
         "tokenizer": ("repos", "data/clean/repos.parquet"), "pack": ("repos", "data/clean/repos.parquet")}
OUTPUT = {"ingest": "data/raw/files.parquet", "filter": "data/filtered/files.parquet",
          "repo_docs": "data/repos/repos.parquet", "dedup": "data/dedup/repos.parquet",
          "decontam": "data/clean/repos.parquet", "tokenizer": "artifacts/tokenizer", "pack": "data/tokens/meta.json"}
NEEDS = {"filter": ["ingest"], "repo_docs": ["filter"], "dedup": ["repo_docs"], "decontam": ["dedup"],
         "tokenizer": ["decontam"], "pack": ["decontam", "tokenizer"]}
DEFAULT_BASE_BYTES = 27.3e6  # the default corpus, ingested, when it cannot be estimated
BIG_BYTES = 2.0e9
RSS_RATIO_MAX, TREE_MB_MAX, MBPS_RATIO_MIN = 1.25, 2000.0, 0.9
IGNORED = {".git", ".hg", ".svn", "__pycache__", ".dvc", ".mypy_cache", ".pytest_cache"}


def site_packages() -> Path:
    for p in sorted((ROOT / ".venv" / "lib").glob("python3*/site-packages")):
        return p
    import numpy

    return Path(numpy.__file__).resolve().parent.parent


# --------------------------------------------------------------------------- corpus estimates


def _language(path: str) -> str | None:
    from dscoder.data.languages import detect_language

    return detect_language(path)


def estimate_dir(root: Path, max_file_bytes: int) -> int:
    """Bytes ingest would take from a directory: files of a known language, not too large."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in IGNORED and not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full) or _language(name) is None:
                continue
            try:
                size = os.path.getsize(full)
            except OSError:
                continue
            if size <= max_file_bytes:
                total += size
    return total


def estimate_specs(specs: list[dict], max_file_bytes: int) -> int | None:
    """Bytes ingest would take from source specs, by dscoder's own expansion (no reading)."""
    try:
        from dscoder.data import sources as src

        total = 0
        for spec in specs:
            try:
                for _, entries in src.expand(spec, Path(tempfile.gettempdir())):
                    for e in entries:
                        if e.skip is None and e.size is not None and e.size <= max_file_bytes and _language(e.path):
                            total += e.size
            except Exception:  # a missing source: ingest audits it; it adds nothing
                continue
        return total
    except Exception:
        return None


def packages(site: Path) -> list[Path]:
    return sorted(p for p in site.iterdir() if p.is_dir() and not p.is_symlink() and p.name not in IGNORED)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def plan_corpus(label: str, n: float, base_specs: list[dict], base_bytes: int, site: Path, site_est: dict[str, int],
                max_file_bytes: int) -> dict:
    """Source specs for a corpus of about n x the default, and how many mutated copies it needs."""
    target = n * base_bytes
    site_total = sum(site_est.values())
    if n <= 1:
        return {"label": label, "specs": list(base_specs), "est_bytes": base_bytes, "copies": 0,
                "how": "params.yaml ingest.sources"}
    if target >= 0.8 * site_total:
        copies = 0
        while site_total * (1 + copies) < target:
            copies += 1
        how = f"dirs over {site} (every package one repository)"
        if copies:
            how += f" + {copies} mutated copies of it"
        return {"label": label, "specs": [{"type": "dirs", "path": str(site)}], "est_bytes": site_total * (1 + copies),
                "copies": copies, "how": how}
    in_default = {_norm(s.get("name", "")) for s in base_specs if s.get("type") == "python_dist" and not s.get("subdir")}
    pool = [p for p in packages(site) if not p.name.endswith((".dist-info", ".egg-info", ".data"))
            and _norm(p.name) not in in_default and site_est.get(p.name, 0) > 0]
    pool.sort(key=lambda p: zlib.crc32(p.name.encode()))
    specs, total, picked = list(base_specs), base_bytes, 0
    for p in pool:
        need = target - total
        if need <= 0.01 * target:
            break
        if site_est[p.name] > 1.1 * need:
            continue
        specs.append({"type": "dir", "path": str(p), "name": f"site-packages/{p.name}"})
        total += site_est[p.name]
        picked += 1
    return {"label": label, "specs": specs, "est_bytes": total, "copies": 0,
            "how": f"params.yaml sources + {picked} package directories of {site} as dir sources"}


# --------------------------------------------------------------------------- mutated copies (--big)

_WORD = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_]*")
_KEEP = frozenset("""
False None True and as assert async await break class continue def del elif else except finally for from global if
import in is lambda nonlocal not or pass raise return try while with yield match case type self cls print
nested_scopes generators division absolute_import with_statement print_function unicode_literals barry_as_FLUFL
generator_stop annotations
auto char const double enum extern float goto inline int long register restrict short signed sizeof static struct
switch typedef union unsigned void volatile default include define undef ifdef ifndef endif pragma error line
defined once elif bool true false NULL nullptr
alignas alignof and_eq bitand bitor catch char16_t char32_t char8_t compl concept consteval constexpr constinit
const_cast co_await co_return co_yield decltype delete dynamic_cast explicit export friend mutable namespace new
noexcept not_eq operator or_eq private protected public reinterpret_cast requires static_assert static_cast
template this thread_local throw typeid typename using virtual wchar_t xor xor_eq override final std size_t
abstract boolean byte extends implements instanceof interface native package strictfp super synchronized
throws transient var let function typeof undefined null arguments debugger get set of readonly declare keyof
module never unknown any string number object symbol bigint infer is satisfies constructor prototype require
exports fn impl mut pub mod crate Self trait where loop move ref dyn unsafe macro_rules func chan defer
fallthrough range select map go base checked decimal delegate event fixed implicit internal lock out params
sbyte sealed stackalloc uint ulong unchecked ushort value partial record init nameof dynamic
php echo array elseif endforeach endfor endwhile endswitch endif foreach insteadof list clone callable trait
require_once include_once end unless until elsif begin rescue ensure then nil redo retry alias undef puts
attr_accessor attr_reader attr_writer require_relative local repeat
fi done esac do in local export readonly shift unset source alias exit
cdef cpdef cimport ctypedef nogil gil DEF IF ELIF ELSE api fused bint Py_ssize_t
yes no on off
important media keyframes supports charset font face
""".split())
_KEEP_CI = frozenset("""select from where insert into values update delete create table drop alter index join inner
outer left right on and or not null primary key foreign references unique default group order by having limit
offset union all distinct as case when then else end begin commit rollback exists integer text varchar char int
real blob boolean view trigger if set like between is in with returning constraint check autoincrement cascade
transaction pragma true false doctype html head body""".split())


def mutate_words(text: str, tag: str, share: float = 0.2) -> str:
    """Suffix `_{tag}` to about `share` of the distinct identifiers (same decision everywhere)."""
    cache: dict[str, str] = {}
    threshold = int(share * 2**32)

    def sub(m: re.Match) -> str:
        w = m.group(0)
        out = cache.get(w)
        if out is None:
            if (len(w) < 3 or w.startswith("__") or w in _KEEP or w.lower() in _KEEP_CI
                    or zlib.crc32(f"{tag}:{w}".encode()) >= threshold):
                out = w
            else:
                out = f"{w}_{tag}"
            cache[w] = out
        return out

    return _WORD.sub(sub, text)


def _mutate_name(name: str, tag: str, is_file: bool) -> str:
    stem, dot, rest = name.partition(".")
    new = mutate_words(stem, tag) + dot + rest
    if is_file and _language(new) != _language(name):  # Makefile, CMakeLists.txt...: keep the name
        return name
    return new


def copy_package(src: str, dest_root: str, tag: str, max_file_bytes: int) -> int:
    """Write the mutated copy of one package directory; returns the bytes of text written."""
    src_p = Path(src)
    written = 0
    for dirpath, dirnames, filenames in os.walk(src_p):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED and not os.path.islink(os.path.join(dirpath, d)))
        rel = Path(dirpath).relative_to(src_p.parent)
        out_dir = Path(dest_root).joinpath(*[_mutate_name(part, tag, False) for part in rel.parts])
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            full = Path(dirpath) / name
            if full.is_symlink():
                continue
            target = out_dir / _mutate_name(name, tag, True)
            data = None
            if _language(name) is not None:
                try:
                    if full.stat().st_size <= max_file_bytes:
                        data = full.read_bytes().decode("utf-8")
                except (OSError, UnicodeDecodeError):
                    data = None
            if data is None:
                try:
                    os.link(full, target)
                except OSError:
                    pass  # another file system: skip files that ingest would not take anyway
                continue
            out = mutate_words(data, tag).encode("utf-8")
            target.write_bytes(out)
            written += len(out)
    return written


def build_copies(site: Path, dest: Path, copies: int, workers: int, max_file_bytes: int) -> list[dict]:
    """`dirs` specs of `copies` mutated copies of site-packages under dest/copy-k."""
    specs, jobs = [], []
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for k in range(1, copies + 1):
            root = dest / f"copy-{k}"
            if (root / ".complete").exists():
                specs.append({"type": "dirs", "path": str(root)})
                continue
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            jobs.append((k, root, [pool.submit(copy_package, str(p), str(root), f"k{k}", max_file_bytes)
                                   for p in packages(site)]))
            specs.append({"type": "dirs", "path": str(root)})
        for k, root, futs in jobs:
            mb = sum(f.result() for f in futs) / 1e6
            (root / ".complete").write_text(f"{mb:.1f} MB\n")
            print(f"  copy {k}: {mb:.0f} MB of mutated text ({time.perf_counter() - t0:.0f} s)", flush=True)
    return specs


# --------------------------------------------------------------------------- measuring


def input_mb(project: Path, stage: str) -> float | None:
    """MB a stage reads: files' bytes (`size`) or repository documents' UTF-8 bytes (`text`)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    kind, rel = INPUT.get(stage, ("files", OUTPUT["ingest"]))
    path = project / rel
    if not path.exists():
        return None
    try:
        pf = pq.ParquetFile(path)
        if kind == "files":
            total = sum(pc.sum(b.column(0)).as_py() or 0 for b in pf.iter_batches(batch_size=65536, columns=["size"]))
        else:
            total = sum(pc.sum(pc.binary_length(b.column(0))).as_py() or 0
                        for b in pf.iter_batches(batch_size=16, columns=["text"]))
        return round(total / 1e6, 3)
    except Exception as e:  # a schema the bench does not know: report without MB/s
        print(f"  (could not read MB in for {stage} from {rel}: {e})")
        return None


def stage_env(api_url: str, prefect_home: Path) -> dict:
    env = dict(os.environ)
    env.update({"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                "PREFECT_API_URL": api_url, "PREFECT_HOME": str(prefect_home),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1"})
    return env


def python_for_stages() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def run_stage(project: Path, stage: str, env: dict, workers: int) -> dict:
    from bench._rss import run_sampled, tail

    log = project / "logs" / f"{stage}.log"
    log.parent.mkdir(exist_ok=True)
    r = run_sampled([python_for_stages(), "-m", f"stages.{stage}", "--params", "params.yaml"], cwd=project, env=env,
                    log_path=log)
    out = {"stage": stage, **{k: v for k, v in r.as_dict().items() if k != "cmd"}, "log": str(log)}
    out["busy"] = round(r.cpu_s / max(r.wall_s * workers, 1e-9), 2)
    if r.returncode != 0:
        out["error_tail"] = tail(log, 25)
    return out


# --------------------------------------------------------------------------- datatrove (dedup's peer)


def datatrove_python() -> str | None:
    for py in ("/work/bench-venv/bin/python", str(ROOT / ".venv" / "bin" / "python")):
        if Path(py).exists() and subprocess.run([py, "-c", "import datatrove, xxhash"], capture_output=True).returncode == 0:
            return py
    return None


def datatrove_job(repos: str, work: str, bands: int, rows: int, workers: int) -> None:
    """datatrove's MinHash dedup end to end from the repository Parquet to deduplicated Parquet
    (runs in the datatrove venv, as a child of the bench, so the same sampler measures it)."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                          MinhashDedupSignature)
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter
    from datatrove.utils.hashing import HashConfig

    w = Path(work)
    cfg = MinhashConfig(n_grams=5, num_buckets=bands, hashes_per_bucket=rows, seed=1,
                        hash_config=HashConfig(precision=64))

    def reader():
        return ParquetReader(str(Path(repos).parent), glob_pattern=Path(repos).name, text_key="text", id_key="repo_id")

    common = {"logging_dir": str(w / "logs"), "skip_completed": False}
    LocalPipelineExecutor(pipeline=[reader(), MinhashDedupSignature(str(w / "sigs"), config=cfg)],
                          tasks=1, workers=1, **common).run()
    LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(str(w / "sigs"), str(w / "buckets"), config=cfg)],
                          tasks=bands, workers=workers, **common).run()
    LocalPipelineExecutor(pipeline=[MinhashDedupCluster(str(w / "buckets"), str(w / "remove"), config=cfg)],
                          tasks=1, workers=1, **common).run()
    LocalPipelineExecutor(pipeline=[reader(), MinhashDedupFilter(str(w / "remove")), ParquetWriter(str(w / "out"))],
                          tasks=1, workers=1, **common).run()


def run_datatrove(py: str, project: Path, workers: int) -> dict:
    from bench._rss import run_sampled, tail

    repos = project / INPUT["dedup"][1]
    report = project / "reports" / "dedup.json"
    bands, rows = 25, 10
    with contextlib.suppress(Exception):
        rep = json.loads(report.read_text())
        bands, rows = int(rep["bands"]), int(rep["rows"])
    work = project / "datatrove"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    log = project / "logs" / "datatrove-dedup.log"
    r = run_sampled([py, str(Path(__file__).resolve()), "--_datatrove", str(repos), str(work), str(bands), str(rows),
                     str(workers)], cwd=project, log_path=log)
    out = {"stage": f"dedup: datatrove MinHash ({bands}x{rows})",
           **{k: v for k, v in r.as_dict().items() if k != "cmd"}, "log": str(log),
           "busy": round(r.cpu_s / max(r.wall_s * workers, 1e-9), 2)}
    if r.returncode != 0:
        out["error_tail"] = tail(log, 25)
    shutil.rmtree(work, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- report


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_corpus(c: dict) -> None:
    print(f"\n{c['label']}: {c['how']}\n  ingested {fmt(c.get('ingested_mb'), '.1f')} MB "
          f"({fmt(c.get('ratio'), '.1f')}x the default), {c.get('repos', '?')} repositories")
    print(f"  {'stage':<34} {'MB in':>8} {'wall s':>8} {'MB/s':>7} {'tree MB':>8} {'proc MB':>8} {'procs':>5} "
          f"{'busy':>5}  largest process")
    for s in c["stages"]:
        flag = "" if s.get("returncode", 0) == 0 else "  FAILED (see log)"
        print(f"  {s['stage']:<34} {fmt(s.get('mb_in'), '.1f'):>8} {s['wall_s']:>8.1f} {fmt(s.get('mb_per_s'), '.2f'):>7} "
              f"{s['peak_tree_mb']:>8.0f} {s['peak_proc_mb']:>8.0f} {s['max_procs']:>5} {s['busy']:>5.2f}  "
              f"{_short(s.get('peak_proc_cmd', ''))}{flag}")
    for note in c.get("notes", []):
        print(f"  note: {note}")


def _short(cmd: str) -> str:
    m = re.search(r"-m (stages\.\w+)", cmd)
    if m:
        return m.group(1) + " (driver)"
    for key in ("multiprocessing", "spawn_main", "distributed", "default_worker", "ray", "datatrove", "--_datatrove"):
        if key in cmd:
            return {"spawn_main": "worker process", "multiprocessing": "worker process", "distributed": "dask worker",
                    "default_worker": "ray worker", "--_datatrove": "datatrove"}.get(key, key)
    return cmd[:40]


def checks(corpora: list[dict]) -> list[dict]:
    base = next((c for c in corpora if c["n"] == 1), None)
    others = [c for c in corpora if c is not base and c.get("stages")]
    if base is None or not others:
        return []
    top = max(others, key=lambda c: c.get("ingested_mb") or 0)
    rows = []
    by_base = {s["stage"]: s for s in base["stages"] if s.get("returncode") == 0}
    for s in top["stages"]:
        b = by_base.get(s["stage"])
        if s.get("returncode") != 0 or b is None:
            continue
        name = s["stage"]
        rss = s["peak_proc_mb"] / max(b["peak_proc_mb"], 1e-9)
        rows.append({"stage": name, "check": "peak RSS of the largest process vs 1x", "value": round(rss, 2),
                     "limit": f"<= {RSS_RATIO_MAX}", "pass": rss <= RSS_RATIO_MAX,
                     "detail": f"{b['peak_proc_mb']:.0f} -> {s['peak_proc_mb']:.0f} MB"})
        if s.get("peak_child_mb") and b.get("peak_child_mb"):  # the workers alone (a driver can hide them)
            w = s["peak_child_mb"] / b["peak_child_mb"]
            rows.append({"stage": name, "check": "peak RSS of the largest worker vs 1x", "value": round(w, 2),
                         "limit": f"<= {RSS_RATIO_MAX}", "pass": w <= RSS_RATIO_MAX,
                         "detail": f"{b['peak_child_mb']:.0f} -> {s['peak_child_mb']:.0f} MB"})
        rows.append({"stage": name, "check": "peak RSS of the whole process tree", "value": s["peak_tree_mb"],
                     "limit": f"<= {TREE_MB_MAX:.0f} MB", "pass": s["peak_tree_mb"] <= TREE_MB_MAX,
                     "detail": f"{s['peak_tree_mb']:.0f} MB"})
        if s.get("mb_per_s") and b.get("mb_per_s"):
            r = s["mb_per_s"] / b["mb_per_s"]
            rows.append({"stage": name, "check": "MB/s vs 1x", "value": round(r, 2), "limit": f">= {MBPS_RATIO_MIN}",
                         "pass": r >= MBPS_RATIO_MIN,
                         "detail": f"{b['mb_per_s']:.2f} -> {s['mb_per_s']:.2f} MB/s, busy {b['busy']:.2f} -> {s['busy']:.2f}"})
    for r in rows:
        r["at"] = top["label"]
    return rows


def print_summary(corpora: list[dict], rows: list[dict]) -> None:
    ran = [c for c in corpora if c.get("stages")]
    if len(ran) > 1:
        print("\nside by side (MB/s | peak RSS of the largest process MB | whole tree MB)")
        head = "".join(f" {c['label'] + ' MB/s':>11}" for c in ran) + "".join(f" {c['label'] + ' proc':>10}" for c in ran) \
            + "".join(f" {c['label'] + ' tree':>10}" for c in ran)
        print(f"  {'stage':<34}{head}")
        names = list(dict.fromkeys(s["stage"] for c in ran for s in c["stages"]))
        for name in names:
            cells = [next((s for s in c["stages"] if s["stage"] == name), None) for c in ran]
            line = "".join(f" {fmt(s and s.get('mb_per_s'), '.2f'):>11}" for s in cells)
            line += "".join(f" {fmt(s and s['peak_proc_mb'], '.0f'):>10}" for s in cells)
            line += "".join(f" {fmt(s and s['peak_tree_mb'], '.0f'):>10}" for s in cells)
            print(f"  {name:<34}{line}")
    if rows:
        at = rows[0]["at"]
        print(f"\nchecks of the issue's 'Done when' at {at} vs 1x" +
              ("" if at.startswith("12") or at == "big" else " (the criterion is stated at ~12x)"))
        for r in rows:
            print(f"  {'PASS' if r['pass'] else 'FAIL'}  {r['stage']:<10} {r['check']:<40} {r['value']!s:>7} "
                  f"(limit {r['limit']}; {r['detail']})")


# --------------------------------------------------------------------------- main


def set_key(params: dict, dotted: str, value) -> None:
    d = params
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def run_corpus(c: dict, base_params: dict, args, workdir: Path, env_base: tuple[str, Path], site: Path) -> dict:
    import yaml

    project = workdir / f"corpus-{c['label']}"
    project.mkdir(parents=True, exist_ok=True)
    specs = list(c["specs"])
    if c["copies"]:
        print(f"{c['label']}: building {c['copies']} mutated copies of site-packages ...", flush=True)
        specs += build_copies(site, workdir / "copies", c["copies"], args.workers,
                              int(base_params["ingest"].get("max_file_bytes", 1_000_000)))
    params = json.loads(json.dumps(base_params))
    params["ingest"]["sources"] = specs
    params["ingest"]["cache_dir"] = str(project / ".cache" / "sources")
    set_key(params, "runner.kind", args.runner)
    set_key(params, "runner.workers", args.workers)
    for kv in args.set:
        k, _, v = kv.partition("=")
        set_key(params, k, yaml.safe_load(v))
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = stage_env(*env_base)
    selected = [s for s in STAGES if s in args.stages]
    needed: set[str] = set()

    def need(stage: str) -> None:
        for dep in NEEDS.get(stage, []):
            if not (project / OUTPUT[dep]).exists() and dep not in needed:
                needed.add(dep)
                need(dep)

    for s in selected:
        need(s)
    c = {**{k: v for k, v in c.items() if k != "specs"}, "n_sources": len(specs), "project": str(project),
         "stages": [], "notes": []}
    for stage in STAGES:
        if stage not in selected and stage not in needed:
            continue
        mb_in = input_mb(project, stage) if stage != "ingest" else None
        print(f"{c['label']}: {stage}{' (prerequisite, not reported)' if stage not in selected else ''} ...", flush=True)
        r = run_stage(project, stage, env, args.workers)
        if stage == "ingest":
            mb_in = input_mb(project, "ingest")
        if r["returncode"] != 0:
            print(f"  {stage} FAILED (rc {r['returncode']}), log {r['log']}:\n{r.get('error_tail', '')}")
        r["mb_in"] = mb_in
        r["mb_per_s"] = round(mb_in / r["wall_s"], 3) if mb_in and r["returncode"] == 0 else None
        if stage in selected:
            c["stages"].append(r)
        if r["returncode"] != 0:
            c["notes"].append(f"{stage} failed: later stages not run")
            break
        if stage == "dedup" and "dedup" in selected:
            if args.datatrove_python and mb_in and mb_in > args.datatrove_max_mb:
                c["notes"].append(f"datatrove skipped: {mb_in:.0f} MB of documents > --datatrove-max-mb "
                                  f"{args.datatrove_max_mb:g} (its signature step runs at ~0.7 MB/s on one core)")
            elif args.datatrove_python:
                print(f"{c['label']}: dedup with datatrove ...", flush=True)
                c["stages"].append(run_datatrove(args.datatrove_python, project, args.workers))
                c["stages"][-1]["mb_in"] = mb_in
                if c["stages"][-1]["returncode"] == 0 and mb_in:
                    c["stages"][-1]["mb_per_s"] = round(mb_in / c["stages"][-1]["wall_s"], 3)
            elif args.no_datatrove:
                c["notes"].append("datatrove's MinHash pipeline not run (--no-datatrove)")
            else:
                c["notes"].append("datatrove not importable by /work/bench-venv/bin/python nor .venv's python: "
                                  "its MinHash pipeline was not run (see bench/dedup.py to set up the side venv)")
    ing = project / OUTPUT["ingest"]
    if ing.exists():
        import pyarrow.parquet as pq

        c["ingested_mb"] = input_mb(project, "ingest")
        with contextlib.suppress(Exception):
            c["repos"] = len(set(pq.read_table(ing, columns=["repo_id"]).column("repo_id").to_pylist()))
    return c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,4,12", help="multiples of the default corpus (default 1,4,12)")
    ap.add_argument("--big", action="store_true", help=f"also a corpus of >= {BIG_BYTES / 1e9:.0f} GB")
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated data stages (default: all)")
    ap.add_argument("--runner", default="process", choices=["process", "dask"], help="runner.kind")
    ap.add_argument("--workers", type=int, default=2, help="runner.workers (default 2)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a params key")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"), help="params file to start from")
    ap.add_argument("--out", default="scale-results.json", help="JSON of the results (default scale-results.json)")
    ap.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir, removed unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (corpora, outputs, logs)")
    ap.add_argument("--no-datatrove", action="store_true", help="skip datatrove's side of dedup")
    ap.add_argument("--datatrove-max-mb", type=float, default=400.0,
                    help="run datatrove only on corpora whose dedup input is at most this many MB (default 400)")
    ap.add_argument("--_datatrove", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._datatrove:
        repos, work, bands, rows, workers = args._datatrove
        datatrove_job(repos, work, int(bands), int(rows), int(workers))
        return 0

    import yaml

    from flows.server import prefect_server

    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(args.stages) - set(STAGES)
    if unknown:
        ap.error(f"unknown stages {sorted(unknown)}; known: {', '.join(STAGES)}")
    sizes = [float(x) for x in args.sizes.split(",") if x.strip()]
    base_params = yaml.safe_load(Path(args.params).read_text())
    max_file = int(base_params["ingest"].get("max_file_bytes", 1_000_000))
    base_specs = base_params["ingest"]["sources"]
    args.datatrove_python = None if args.no_datatrove or "dedup" not in args.stages else datatrove_python()

    t0 = time.perf_counter()
    site = site_packages()
    site_est = {p.name: estimate_dir(p, max_file) for p in packages(site)}
    base_bytes = estimate_specs(base_specs, max_file) or int(DEFAULT_BASE_BYTES)
    plans = [plan_corpus(f"{x:g}x", x, base_specs, base_bytes, site, site_est, max_file) for x in sizes]
    if args.big:
        plans.append({**plan_corpus("big", BIG_BYTES * 1.02 / base_bytes, base_specs, base_bytes, site, site_est,
                                    max_file), "label": "big"})
    for p, x in zip(plans, sizes + [None]):
        p["n"] = x if x is not None else round(p["est_bytes"] / base_bytes, 1)
    print(f"default corpus ~{base_bytes / 1e6:.1f} MB (estimated); site-packages ~{sum(site_est.values()) / 1e6:.0f} MB "
          f"in {len(site_est)} directories; planned in {time.perf_counter() - t0:.1f} s")
    for p in plans:
        print(f"  {p['label']}: ~{p['est_bytes'] / 1e6:.0f} MB, {p['how']}")

    own_tmp = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="dscoder-scale-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    prefect_home = workdir / "prefect-home"
    prefect_home.mkdir(exist_ok=True)
    os.environ["PREFECT_HOME"] = str(prefect_home)  # the server's database lives there
    os.environ.pop("PREFECT_API_URL", None)
    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
               "cpus": os.cpu_count(), "runner": args.runner, "workers": args.workers, "overrides": args.set,
               "base_est_mb": round(base_bytes / 1e6, 2), "corpora": [], "checks": []}
    try:
        with prefect_server(log_path=str(workdir / "prefect-server.log")) as api_url:
            print(f"prefect server: {api_url}; scratch: {workdir}", flush=True)
            for plan in plans:
                c = run_corpus(plan, base_params, args, workdir, (api_url, prefect_home), site)
                if c.get("ingested_mb"):
                    base = next((x for x in results["corpora"] if x["n"] == 1), None)
                    ref = (base or {}).get("ingested_mb") or base_bytes / 1e6
                    c["ratio"] = round(c["ingested_mb"] / ref, 2)
                results["corpora"].append(c)
                print_corpus(c)
                Path(args.out).write_text(json.dumps(results, indent=1))
        results["checks"] = checks(results["corpora"])
        print_summary(results["corpora"], results["checks"])
        results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        Path(args.out).write_text(json.dumps(results, indent=1))
        print(f"\nresults: {Path(args.out).resolve()}" + (f"; scratch kept in {workdir}" if args.keep or not own_tmp else ""))
    finally:
        if own_tmp and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = [s for c in results["corpora"] for s in c.get("stages", []) if s.get("returncode")]
    return 1 if failed else 0


if __name__ == "__main__":
    # a SIGTERM (kill, a CI timeout) unwinds like Ctrl-C, so the Prefect server and scratch go too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
