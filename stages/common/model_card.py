"""What a training stage tells its exported model's card (`dscoder.train.model_card`).

Each training stage gathers the facts of what made its model and passes them to
`stages.common.training.run_training(card=...)`; the export renders them into the model folder's
README.md. The facts:

- the recipe so far: the starting model's stages, read from its card facts (`model_card.json`
  in the folder this stage starts from, a DVC dep), else the data stages' sections of
  params.yaml (`runner` left out: outputs never depend on it); then this stage and its params;
- what this stage's data held: for pack's token folder, the splits (repositories, documents,
  tokens), files and tokens per language (reports/pack.json), the FIM settings, the sources of
  the training split's repositories (data/tokens/train.docs.parquet joined with
  data/clean/repos.parquet) with the licence each states, and the data stages' headline
  figures (their reports, as `dscoder.summary` picks them); for the other stages, what their
  data step returned (instruction examples, the v1.5 mixture, the general corpus).

The reports and params.yaml sections read here are those of the run that made the inputs; they
are not DVC deps of the training stages (a change that leaves the token folder as it was must
not retrain a model), so a card can describe the data stages of an earlier run that produced
the same tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from dscoder.train.model_card import read_facts, source_license

DATA_STAGES = ("ingest", "filter", "repo_docs", "dedup", "decontam")
TOKEN_STAGES = ("tokenizer", "pack")


def _read_json(path: str | Path) -> dict[str, Any] | None:
    p = Path(path)
    return json.loads(p.read_text()) if p.is_file() else None


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def recipe(stages: tuple[str, ...] | list[str], params_file: str | Path = "params.yaml") -> list[dict[str, Any]]:
    """`[{stage, params}]` for each of `stages` that has a section in `params_file` (none when
    the file does not exist). ingest's sources appear as their count: the card lists the ones
    the model saw, with their licences, under its data."""
    p = Path(params_file)
    params = (yaml.safe_load(p.read_text()) or {}) if p.is_file() else {}
    out = []
    for stage in stages:
        if stage not in params:
            continue
        section = _plain(params[stage] or {})
        if stage == "ingest" and isinstance(section.get("sources"), list):
            section["sources"] = f"{len(section['sources'])} source specs (those the model saw: under its data)"
        out.append({"stage": stage, "params": section})
    return out


def data_figures(reports_dir: str | Path) -> dict[str, Any]:
    """The data stages' headline figures (`dscoder.summary.summarize`) from the reports that exist."""
    from dscoder.summary import summarize

    reports = {n: r for n in (*DATA_STAGES, "pack") if (r := _read_json(Path(reports_dir) / f"{n}.json"))}
    return summarize(reports)


def training_sources(docs: str | Path, repos: str | Path) -> list[dict[str, Any]]:
    """The sources of a token split's repositories (`<split>.docs.parquet`), each with its
    repositories, tokens and the licence it states; biggest first. Without the repositories file
    each repository is its own entry."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(docs, columns=["repo_id", "repo_name", "token_start", "token_end"])
    spans = pc.subtract(t["token_end"], t["token_start"]).to_pylist()
    by_repo: dict[str, list] = {}
    for rid, name, n in zip(t["repo_id"].to_pylist(), t["repo_name"].to_pylist(), spans):
        by_repo.setdefault(rid, [name, 0])[1] += int(n)
    source_of: dict[str, str] = {}
    if Path(repos).is_file():
        r = pq.read_table(repos, columns=["repo_id", "source"])
        source_of = dict(zip(r["repo_id"].to_pylist(), r["source"].to_pylist()))
    sources: dict[str, dict[str, Any]] = {}
    for rid, (name, n) in by_repo.items():
        src = source_of.get(rid) or f"repository {name}"
        e = sources.setdefault(src, {"source": src, "repositories": 0, "tokens": 0, "license": source_license(src)})
        e["repositories"] += 1
        e["tokens"] += n
    return sorted(sources.values(), key=lambda e: (-e["tokens"], e["source"]))


def code_data(tokens_dir: str | Path, repos: str | Path, reports_dir: str | Path) -> dict[str, Any]:
    """What a model trained on pack's token folder saw (see the module docstring): `tokens_dir`
    (paths.tokens), the repositories it came from (paths.clean_repos), the reports (paths.reports)."""
    tokens_dir = Path(tokens_dir)
    meta = _read_json(tokens_dir / "meta.json") or {}
    out: dict[str, Any] = {}
    splits = {name: {k: s[src] for k, src in (("repos", "n_repos"), ("docs", "n_docs"), ("tokens", "n_tokens"))
                     if isinstance(s.get(src), int)}
              for name, s in sorted((meta.get("splits") or {}).items()) if isinstance(s, dict)}
    if splits:
        out["splits"] = splits
    langs = ((_read_json(Path(reports_dir) / "pack.json") or {}).get("by_language") or {}).get("train")
    if langs:
        out["languages"], out["languages_split"] = langs, "train"
    if (meta.get("params") or {}).get("fim"):
        out["fim"] = meta["params"]["fim"]
    if (tokens_dir / "train.docs.parquet").is_file():
        out["sources"] = training_sources(tokens_dir / "train.docs.parquet", repos)
    figures = data_figures(reports_dir)
    if figures:
        out["pipeline"] = figures
    return _plain(out)


def card_facts(stage: str, section: dict[str, Any] | None, *, start: str | Path | None = None,
               before: tuple[str, ...] | list[str] = (), between: tuple[str, ...] | list[str] = (),
               data: dict[str, Any] | None = None, params_file: str | Path = "params.yaml") -> dict[str, Any]:
    """The facts a training stage hands to its export's card: the stages so far (those of the
    starting model `start`, from its card facts, then the `between` sections of `params_file`;
    without a dscoder starting model, the `before` sections), then this stage with its params
    and `data`."""
    upstream = read_facts(start) if start else None
    if upstream:
        stages = [*(upstream.get("stages") or []), *recipe(between, params_file)]
    else:
        stages = recipe((*before, *between), params_file)
    this: dict[str, Any] = {"stage": stage, "params": _plain(section or {})}
    if data:
        this["data"] = _plain(data)
    facts: dict[str, Any] = {"stage": stage, "stages": [*stages, this]}
    if start:
        facts["started_from"] = {"path": str(start), "name": Path(start).name, "dscoder": upstream is not None}
    return facts


def instruction_data(reports_dir: str | Path) -> dict[str, Any]:
    """The instruction examples' figures (reports/instruct_data.json): examples and repositories
    per split, examples per source, duplicates and benchmark hits dropped."""
    r = _read_json(Path(reports_dir) / "instruct_data.json") or {}
    keep = ("train", "validation", "train_repos", "validation_repos", "by_source", "rejected", "benchmark_hits",
            "decontaminated")
    examples = {k: r[k] for k in keep if k in r}
    return {"examples": _plain(examples)} if examples else {}
