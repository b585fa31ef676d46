"""dscoder's MinHash near-dedup — the stage as a user runs it, and its library — vs datatrove.

    .venv/bin/python bench/dedup.py                        # default corpus + the mutated-copy case
    .venv/bin/python bench/dedup.py --corpus mutated --docs 100 --seeds 0 1 2 3 4
    /work/bench-venv/bin/python bench/dedup.py             # the same, with datatrove's columns

Same documents, same work, each measured as a process tree (bench/_rss.py: wall time, peak RSS
of the process and all its children):
- **stage, no server**: `python -m stages.dedup` in a temporary project, as `dvc repro` runs it,
  no PREFECT_API_URL (the stage starts one temporary Prefect server, shared with its workers);
- **stage, server**: the same with a persistent Prefect server started beforehand (`make repro`);
- **library**: the stage's own code with Prefect taken out (bench/_library_stage.py), reading
  and writing included;
- **datatrove**: its four-stage MinHash pipeline (signatures, buckets, clusters, filter; local
  executor, one worker) from the same Parquet documents to the kept documents, once with
  dscoder's normalisation and tokenisation (the text handed over as dscoder's word tokens,
  datatrove's normalisation off, split on whitespace) and once with its defaults (shown apart).
  Both use dscoder's 5-word shingles and bands x rows.

Accuracy, per seed (`--seeds`: min / median / max over them): ground truth is the exact Jaccard
similarity of dscoder's shingle sets over all pairs (pairs whose set sizes alone bound J below
the threshold are counted without intersecting them); recall = true pairs (J >= threshold)
that end in one cluster, overall and per band of exact J ([threshold, 0.8), [0.8, 0.9),
[0.9, 1]); false removals = removed documents whose exact J to the member kept for their
cluster is below `--false-below` (0.6). The stage's own clusters (its seed) are checked equal
to the library's. Every process runs this tree's code (src/ first on PYTHONPATH), the stage and
library runs with the project's interpreter (.venv), datatrove's with the one running this.

Corpora: `default` is data/repos/repos.parquet when present, else built from the default
profile's sources (ingest, filter, repo_docs through their libraries, in a temporary copy);
`mutated` is `--docs` documents: half of them from that corpus (documents under `--max-doc-mb`),
half copies of those with a share of their words replaced (rates spread so the copies' J to
their original runs from ~0.5 to ~1).

datatrove is not a project dependency. It is looked for in the interpreter running this script
(not .venv: a side venv that sees .venv's packages):

    /root/.pyenv/versions/3.11.7/bin/python3.11 -m venv /work/bench-venv
    echo "import site; site.addsitedir('/work/main/.venv/lib/python3.11/site-packages')" \
        > /work/bench-venv/lib/python3.11/site-packages/dscoder-main-venv.pth
    /work/bench-venv/bin/pip install datatrove==0.10.1 xxhash==3.5.0 spacy

Without it, its rows are skipped with a note.
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# This tree's code, here and in every process it starts, ahead of any installed (editable) copy.
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")]))
# The project's interpreter and tools (dvc, python) for the stage and library runs, also when
# this script runs in the datatrove side venv.
PROJECT_BIN = ROOT / ".venv/bin" if (ROOT / ".venv/bin/python").exists() else Path(sys.executable).parent
PROJECT_PY = str(PROJECT_BIN / "python")
os.environ["PATH"] = f"{PROJECT_BIN}{os.pathsep}{os.environ['PATH']}"

from bench._rss import run_sampled, tail  # noqa: E402
from dscoder.data import minhash_dedup as md  # noqa: E402
from dscoder.data import ngrams  # noqa: E402
from dscoder.schemas import REPOS  # noqa: E402


# --------------------------------------------------------------------------- corpora

def build_default_corpus(work: Path) -> Path:
    """data/repos/repos.parquet of the default profile: ingest, filter, repo_docs through their
    libraries (bench/_library_stage.py) in a temporary copy of the project."""
    import yaml

    from tests.integration.dvc_repo import make_dvc_repo

    repo = make_dvc_repo(work / "corpus-proj", yaml.safe_load((ROOT / "params.yaml").read_text()))
    for stage in ("ingest", "filter", "repo_docs"):
        log = work / f"corpus-{stage}.log"
        r = run_sampled([PROJECT_PY, str(ROOT / "bench/_library_stage.py"), f"stages.{stage}"], cwd=repo,
                        env=env_without_api(work), log_path=log)
        if r.returncode:
            raise SystemExit(f"building the default corpus: {stage} failed:\n{tail(log)}")
    return repo / "data/repos/repos.parquet"


def mutated_corpus(src: pa.Table, n_docs: int, max_doc_mb: float, seed: int = 0) -> pa.Table:
    """n_docs // 2 documents of `src` (each under max_doc_mb) and a copy of each with a share of
    its words replaced by other words of the corpus (share spread over 0.2%..8%: J ~0.98..0.5)."""
    rng = random.Random(seed)
    rows = [r for r in src.to_pylist() if len(r["text"].encode()) <= max_doc_mb * 1e6 and len(r["text"]) > 2000]
    rng.shuffle(rows)
    originals = sorted(rows[: n_docs // 2], key=lambda r: r["repo_id"])
    vocab = [w for r in originals[:10] for w in r["text"].split()[:2000]]
    rates = np.linspace(0.002, 0.08, len(originals)) if originals else []
    out = []
    for r, rate in zip(originals, rates):
        out.append(r)
        words = r["text"].split(" ")
        for i in range(len(words)):
            if rng.random() < rate:
                words[i] = rng.choice(vocab)
        text = " ".join(words)
        out.append({**r, "repo_id": r["repo_id"] + f"~{rate:.3f}", "repo_name": r["repo_name"] + "-copy",
                    "text": text, "files": [{"path": "copy.txt", "language": "text", "start": 0, "end": len(text),
                                             "header_chars": 0}], "languages": ["text"], "n_files": 1})
    return pa.Table.from_pylist(out, schema=REPOS)


# --------------------------------------------------------------------------- ground truth

class Truth:
    """Exact Jaccard of dscoder's shingle sets, over all pairs."""

    def __init__(self, table: pa.Table, shingle_size: int, threshold: float) -> None:
        self.ids = table["repo_id"].to_pylist()
        self.sets = {i: np.unique(md.shingle_hashes(t, shingle_size)) for i, t in zip(self.ids, table["text"].to_pylist())}
        self.threshold = threshold
        self.true_j: dict[tuple[str, str], float] = {}  # the true pairs and their exact J
        self.pairs = 0
        for a, b in itertools.combinations(sorted(self.ids), 2):
            self.pairs += 1
            na, nb = len(self.sets[a]), len(self.sets[b])
            if min(na, nb) < threshold * max(na, nb):  # J <= min/max < threshold: no need to intersect
                continue
            j = self.jaccard(a, b)
            if j >= threshold:
                self.true_j[(a, b)] = j
        self.true_pairs = set(self.true_j)
        cuts = [c for c in (0.8, 0.9) if c > threshold]
        #: J ranges the recall is also given for: [threshold, 0.8), [0.8, 0.9), [0.9, 1]
        self.bands = list(zip([threshold, *cuts], [*cuts, 1.0 + 1e-9]))

    def jaccard(self, a: str, b: str) -> float:
        sa, sb = self.sets[a], self.sets[b]
        inter = len(np.intersect1d(sa, sb, assume_unique=True))
        union = len(sa) + len(sb) - inter
        return inter / union if union else 0.0

    def score(self, clusters: dict[str, str], false_below: float) -> dict:
        """clusters: {doc id: id of the member kept for its cluster} (kept docs map to themselves)."""
        found = {(a, b) for a, b in self.true_pairs if clusters.get(a, a) == clusters.get(b, b)}
        removed = [(d, k) for d, k in clusters.items() if d != k]
        false = sum(1 for d, k in removed if self.jaccard(d, k) < false_below)
        by_band = []
        for lo, hi in self.bands:
            pairs = [p for p, j in self.true_j.items() if lo <= j < hi]
            by_band.append(sum(p in found for p in pairs) / len(pairs) if pairs else float("nan"))
        return {"recall": len(found) / len(self.true_pairs) if self.true_pairs else 1.0, "removed": len(removed),
                "false_removals": false, "by_band": by_band}

    def describe(self) -> str:
        """The true pairs' J: how many in each band and their min/median/max."""
        js = sorted(self.true_j.values())
        counts = ", ".join(f"{sum(lo <= j < hi for j in js)} in [{lo:.1f}, {min(hi, 1):.1f}{']' if hi > 1 else ')'}"
                           for lo, hi in self.bands)
        return f"true pairs' exact J: {counts}" + (f"; min/median/max {stats(js, '.3f')}" if js else "")


# --------------------------------------------------------------------------- the runs

def env_without_api(work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(work / "prefect-home"))
    return env


def dedup_project(work: Path, table: pa.Table, params: dict) -> Path:
    """A temporary copy of the project whose data/repos/repos.parquet is `table`."""
    from dscoder.io import write_parquet
    from tests.integration.dvc_repo import make_dvc_repo

    repo = make_dvc_repo(work, params)
    write_parquet(repo / "data/repos/repos.parquet", table, schema=REPOS)
    return repo


def clusters_of(path: Path) -> dict[str, str]:
    t = pq.read_table(path, columns=["repo_id", "cluster_id"]).to_pylist()
    return {r["repo_id"]: r["cluster_id"] for r in t}


def timed_run(name: str, cmd: list[str], repo: Path, env: dict, log: Path) -> dict:
    r = run_sampled(cmd, cwd=repo, env=env, log_path=log)
    if r.returncode:
        raise SystemExit(f"{name} failed ({r.returncode}):\n{tail(log)}")
    return {"name": name, "wall_s": r.wall_s, "tree_mb": r.peak_tree_mb, "cpu_s": r.cpu_s, "procs": r.max_procs}


def library_clusters(table: pa.Table, params: md.DedupSettings, work: Path) -> dict[str, str]:
    """The library's clusters for `params` in this process (the seed sweep)."""
    res = md.run_dedup(table, params, work)
    return {r["repo_id"]: r["cluster_id"] for r in res.clusters.to_pylist()}


def datatrove_available() -> str | None:
    try:
        import datatrove  # noqa: F401
    except ImportError as e:
        return f"datatrove not importable here ({e}); run with /work/bench-venv/bin/python (see the docstring)"
    return None


def run_datatrove(parquet: str, mode: str, shingle_size: int, bands: int, rows: int, seed: int,
                  workdir: Path) -> dict[str, str]:
    """datatrove's four-stage MinHash pipeline; {doc id: kept member's id}. `mode`: `dscoder`
    (dscoder's word tokens as the text, normalisation off, whitespace split) or `default`."""
    import struct

    from datatrove.data import Document
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                          MinhashDedupSignature)
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.hashing import HashConfig

    table = pq.read_table(parquet, columns=["repo_id", "text"])
    ids, texts = table["repo_id"].to_pylist(), table["text"].to_pylist()
    kw = {}
    if mode == "dscoder":
        texts = [b" ".join(ngrams.words(t)).decode("utf-8", "replace") for t in texts]
        from datatrove.utils.text import TextNormConfig

        kw["norm_config"] = TextNormConfig(lowercase=False, norm_whitespace=False, remove_punctuation=False,
                                           norm_unicode_diacritics=False, norm_numbers=False, norm_weekdays=False,
                                           norm_monthnames=False)
    config = MinhashConfig(n_grams=shingle_size, num_buckets=bands, hashes_per_bucket=rows, seed=seed,
                           hash_config=HashConfig(precision=64), **kw)

    class Whitespace:
        def word_tokenize(self, text, *a, **k):
            return text.split()

        def span_tokenize(self, text, *a, **k):  # pragma: no cover - not used by the signature step
            raise NotImplementedError

    def signature_step():
        step = MinhashDedupSignature(str(workdir / "sigs"), config=config)
        if mode == "dscoder":
            step.__dict__["word_tokenizer"] = Whitespace()  # shadows the (lazy) spaCy tokenizer
        return step

    docs = lambda: [Document(text=t, id=i) for i, t in zip(ids, texts)]  # noqa: E731
    common = {"logging_dir": str(workdir / "logs"), "skip_completed": False}
    LocalPipelineExecutor(pipeline=[docs(), signature_step()], tasks=1, workers=1, **common).run()
    LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(str(workdir / "sigs"), str(workdir / "buckets"), config=config)],
                          tasks=bands, workers=1, **common).run()
    LocalPipelineExecutor(pipeline=[MinhashDedupCluster(str(workdir / "buckets"), str(workdir / "remove"), config=config,
                                                        save_cluster_id=True)], tasks=1, workers=1, **common).run()
    kept: list[str] = []

    def collect(data, rank=0, world_size=1):
        for doc in data:
            kept.append(doc.id)
            yield doc

    LocalPipelineExecutor(pipeline=[docs(), MinhashDedupFilter(str(workdir / "remove"), load_cluster_ids=True), collect],
                          tasks=1, workers=1, **common).run()
    members: dict[int, list[str]] = {}
    cfile = workdir / "remove" / "000000.clusters"
    if cfile.exists():
        for doc, cid in struct.iter_unpack("<2I", cfile.read_bytes()):
            members.setdefault(cid, []).append(ids[doc])
    keep = set(kept)
    out = {i: i for i in ids}
    for group in members.values():
        k = [m for m in group if m in keep] or group[:1]
        for m in group:
            out[m] = k[0]
    return out


def stats(values: list[float], fmt: str) -> str:
    return "/".join(format(v, fmt) for v in (min(values), statistics.median_low(values), max(values)))


def bench_corpus(name: str, table: pa.Table, args, work: Path) -> None:
    import yaml

    from flows.server import prefect_server

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    dp = md.DedupSettings.from_dict(params.get("dedup"))
    bands, rows = dp.bands_rows
    mb = sum(len(t.encode()) for t in table["text"].to_pylist()) / 1e6
    runner = params.get("runner") or {}
    print(f"\n== {name}: {table.num_rows} documents, {mb:.1f} MB; threshold {dp.threshold}, {dp.num_perm} perms, "
          f"{bands} bands x {rows} rows; stage runner {runner.get('kind')} x {runner.get('workers')} workers; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    repo = dedup_project(work / name, table, params)
    env = env_without_api(work)
    timings = []
    lib = timed_run("library", [PROJECT_PY, str(ROOT / "bench/_library_stage.py"), "stages.dedup"], repo, env,
                    work / f"{name}-library.log")
    lib_clusters = clusters_of(repo / "data/dedup/clusters.parquet")
    timings.append(lib)
    timings.append(timed_run("stage, no server", ["bash", "-c", "python -m stages.dedup"], repo, env,
                             work / f"{name}-stage.log"))
    stage_clusters = clusters_of(repo / "data/dedup/clusters.parquet")
    with prefect_server(log_path=str(work / "server.log")) as api:
        timings.append(timed_run("stage, server", ["bash", "-c", "python -m stages.dedup"], repo,
                                 {**env, "PREFECT_API_URL": api}, work / f"{name}-stage-server.log"))
    note = datatrove_available()

    def datatrove_cmd(mode: str, tag: str, *extra: str) -> list[str]:
        """One datatrove run in its own process, with this run's shingles, bands and rows."""
        return [sys.executable, __file__, "--_datatrove", mode, str(repo / "data/repos/repos.parquet"),
                str(work / f"{name}-dt-{mode}{tag}"), "--_lsh", str(dp.shingle_size), str(bands), str(rows), *extra]

    if note is None:
        for mode in ("dscoder", "default"):
            timings.append(timed_run(f"datatrove ({mode} norm.)", datatrove_cmd(mode, ""), repo, env,
                                     work / f"{name}-dt-{mode}.log"))

    truth = Truth(table, dp.shingle_size, dp.threshold)
    scores: dict[str, list[dict]] = {"dscoder": []}
    for s in args.seeds:
        scores["dscoder"].append(truth.score(library_clusters(table, dataclasses.replace(dp, seed=s),
                                                              work / f"{name}-seed{s}"), args.false_below))
    if note is None:
        for mode in ("dscoder", "default"):
            scores[f"datatrove ({mode} norm.)"] = []
            for s in args.seeds:
                out = work / f"{name}-dt-{mode}-seed{s}.json"
                subprocess.run(datatrove_cmd(mode, f"-s{s}", "--seed", str(s), "--_out", str(out)), check=True,
                               env=env, capture_output=True)
                scores[f"datatrove ({mode} norm.)"].append(truth.score(json.loads(out.read_text()), args.false_below))

    print(f"{'run':<28} {'wall s':>7} {'cpu s':>7} {'tree MB':>8} {'procs':>5} {'x library':>9} {'MB/s':>6}")
    for t in timings:
        print(f"{t['name']:<28} {t['wall_s']:>7.2f} {t['cpu_s']:>7.2f} {t['tree_mb']:>8.0f} {t['procs']:>5} "
              f"{t['wall_s'] / lib['wall_s']:>9.2f} {mb / t['wall_s']:>6.2f}")
    for t in timings[1:3]:
        ok = t["wall_s"] <= 1.5 * lib["wall_s"] + 2 and t["tree_mb"] <= lib["tree_mb"] + 300
        print(f"  {t['name']}: target 1.5 x {lib['wall_s']:.2f} + 2 = {1.5 * lib['wall_s'] + 2:.2f} s and "
              f"{lib['tree_mb'] + 300:.0f} MB: {'met' if ok else 'MISSED'}")
    if note:
        print(f"  datatrove: skipped: {note}")
    print(f"stage clusters == library clusters (seed {dp.seed}): {stage_clusters == lib_clusters}")
    print(f"\naccuracy vs exact Jaccard over all {truth.pairs} pairs ({len(truth.true_pairs)} with J >= "
          f"{dp.threshold}); seeds {args.seeds}: min/median/max")
    print(truth.describe())
    band_names = [f"J {lo:.1f}-{min(hi, 1):.1f}" for lo, hi in truth.bands]
    print(f"{'pipeline':<28} {'recall':>17} {'removed':>10} {'false removals (J < ' + str(args.false_below) + ')':>28}"
          + "".join(f" {b:>17}" for b in band_names))
    for k, v in scores.items():
        bands_txt = "".join(f" {stats([x['by_band'][i] for x in v], '.3f'):>17}" for i in range(len(band_names)))
        print(f"{k:<28} {stats([x['recall'] for x in v], '.3f'):>17} {stats([x['removed'] for x in v], 'd'):>10} "
              f"{stats([x['false_removals'] for x in v], 'd'):>28}" + bands_txt)
    print("recall = true pairs (exact J of dscoder's shingle sets >= threshold) that end in one cluster, also per"
          " J band; false removals = removed documents whose J to the kept member is below --false-below")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repos", default="data/repos/repos.parquet", help="the default corpus, if present")
    ap.add_argument("--save-corpus", default=None, help="when the default corpus is built, keep a copy here")
    ap.add_argument("--corpus", nargs="+", choices=["default", "mutated"], default=["default", "mutated"])
    ap.add_argument("--docs", type=int, default=100, help="mutated: documents (half originals, half copies)")
    ap.add_argument("--max-doc-mb", type=float, default=1.0, help="mutated: the largest original taken")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--false-below", type=float, default=0.6)
    ap.add_argument("--_datatrove", nargs=3, metavar=("MODE", "PARQUET", "WORKDIR"), help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--_lsh", type=int, nargs=3, default=[5, 32, 8], help=argparse.SUPPRESS)  # shingle, bands, rows
    ap.add_argument("--_out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._datatrove:  # one datatrove run in its own process (measured by the parent)
        mode, parquet, workdir = args._datatrove
        shingle_size, bands, rows = args._lsh
        out = run_datatrove(parquet, mode, shingle_size, bands, rows, args.seed, Path(workdir))
        if args._out:
            Path(args._out).write_text(json.dumps(out))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-dedup-"))
    try:
        src = Path(args.repos)
        if not src.is_file():
            print("building the default corpus (ingest, filter, repo_docs libraries)...", flush=True)
            src = build_default_corpus(work)
            if args.save_corpus:  # for the next run's --repos
                Path(args.save_corpus).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, args.save_corpus)
        default = pq.read_table(src).cast(REPOS)
        if "default" in args.corpus:
            bench_corpus("default", default, args, work)
        if "mutated" in args.corpus:
            bench_corpus("mutated", mutated_corpus(default, args.docs, args.max_doc_mb), args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
