"""params.yaml's `paths` is the one place a pipeline path is written: dvc.yaml's data deps and
outs (resolved against params.yaml) are exactly what each stage's code says it reads and writes
(its READS / WRITES), the code reaches them only through `Paths`, and no stage module spells a
path of its own."""

from __future__ import annotations

import ast
import copy
import importlib
import re
import shlex
import textwrap
import types
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import pytest
import yaml

from dscoder.config import ConfigError
from dscoder.paths import Paths
from flows.deps import LOCK, is_code_dep

ROOT = Path(__file__).resolve().parents[2]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
DAG = yaml.safe_load((ROOT / "dvc.yaml").read_text())


# --------------------------------------------------------------------------- dvc.yaml side

def interpolate(text: str, ctx: dict[str, Any]) -> str:
    """DVC's `${a.b}` interpolation of one string against `ctx` (params.yaml, plus `item`)."""
    def one(m: re.Match) -> str:
        node: Any = ctx
        for part in m.group(1).strip().split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"${{{m.group(1)}}}: not defined in params.yaml")
            node = node[part]
        return str(node)
    return re.sub(r"\$\{([^}]+)\}", one, text)


def _names(entries) -> list[str]:
    """The paths of a deps/outs/metrics/plots list (a string, or a one-key mapping of options)."""
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def _module(cmd: str) -> str:
    argv = shlex.split(cmd)
    return argv[argv.index("-m") + 1]


def declared(dag: dict, params: dict) -> dict[str, tuple[str, dict[str, str], set[str], set[str]]]:
    """{stage address: (module, foreach item context, data deps, outputs)} of dvc.yaml, resolved
    against params.yaml as DVC resolves it. Data deps: every dep but code and the lock file."""
    out = {}
    for name, stage in dag["stages"].items():
        runs = [(name, stage, {})]
        if "foreach" in stage:
            runs = [(f"{name}@{item}", stage["do"], {"item": item}) for item in stage["foreach"]]
        for address, body, extra in runs:
            ctx = {**params, **extra}
            deps = {interpolate(d, ctx) for d in _names(body.get("deps")) if not is_code_dep(d, ROOT) and d != LOCK}
            outs = {interpolate(o, ctx) for key in ("outs", "metrics", "plots") for o in _names(body.get(key))}
            out[address] = (_module(interpolate(body["cmd"], ctx)), extra, deps, outs)
    return out


def evaluated_models(dag: dict) -> list[str]:
    """The models the `foreach` stage runs over (a stage ref's `{model}`)."""
    return [str(i) for s in dag["stages"].values() if "foreach" in s for i in s["foreach"]]


# --------------------------------------------------------------------------- code side

def expand(refs, paths: Paths, params: dict, models: list[str]) -> set[str]:
    """The paths a stage's READS / WRITES name; `{model}` stands for the run's model (its
    foreach item), or every evaluated model in a stage that reads them all."""
    out = set()
    for ref in refs:
        if isinstance(ref, tuple) and "{model}" in ref[1]:
            out |= {paths.ref((ref[0], ref[1].format(model=m))) for m in models}
        else:
            out.add(paths.ref(ref, params))
    return out


def mismatches(dag: dict, params: dict, load: Callable[[str], Any] = importlib.import_module) -> list[str]:
    """Every way a stage's code and its dvc.yaml entry disagree (empty: they agree)."""
    paths = Paths.from_params(params)
    problems = []
    for address, (module, extra, deps, outs) in declared(dag, params).items():
        mod = load(module)
        models = [extra["item"]] if "item" in extra else evaluated_models(dag)
        reads = expand(getattr(mod, "READS", ()), paths, params, models)
        writes = expand(getattr(mod, "WRITES", ()), paths, params, models)
        for label, dvc, code in (("deps", deps, reads), ("outs", outs, writes)):
            problems += [f"{address}: dvc.yaml {label} {p}, not in {module}'s {'READS' if label == 'deps' else 'WRITES'}"
                         for p in sorted(dvc - code)]
            problems += [f"{address}: {module} {'reads' if label == 'deps' else 'writes'} {p}, not in dvc.yaml's {label}"
                         for p in sorted(code - dvc)]
    return problems


def top_folders(params: dict) -> tuple[str, ...]:
    """The first folder of every declared path (data/, artifacts/, ...), plus models/."""
    tops = {PurePosixPath(v).parts[0] + "/" for v in params["paths"].values()}
    return tuple(sorted(tops | {"models/"}))


def hard_coded_paths(source: str, tops: tuple[str, ...]) -> list[str]:
    """String literals (docstrings aside) naming a pipeline path: under one of `tops`, or
    containing a `models/...` folder."""
    tree = ast.parse(source)
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
            if n.value.startswith(tops) or "/models/" in n.value:
                found.append(n.value)
    return found


def keys_used(source: str) -> set[str]:
    """The `paths` entries a module reads: `paths.<key>`, or a key handed to a helper by name
    (`trainer_paths(paths, ..., tokenizer="tokenizer")`)."""
    keys = set(Paths.keys())
    used = set()
    for n in ast.walk(ast.parse(source)):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "paths" and n.attr in keys:
            used.add(n.attr)
        elif isinstance(n, ast.keyword) and isinstance(n.value, ast.Constant) and n.value.value in keys:
            used.add(n.value.value)
    return used


def key_problems(name: str, source: str, mod: Any) -> list[str]:
    """A stage module's plain READS / WRITES keys that its code never reads through `paths`, and
    the keys it reads that it declares nowhere (CARD_READS: read on purpose without a DVC dep)."""
    declared_keys = {r for r in (*getattr(mod, "READS", ()), *getattr(mod, "WRITES", ()))
                     if isinstance(r, str) and "." not in r}
    allowed = declared_keys | {r[0] for r in (*mod.READS, *mod.WRITES) if isinstance(r, tuple)} | \
        set(getattr(mod, "CARD_READS", ()))
    used = keys_used(source)
    return ([f"{name}: declares paths.{k} but its code never uses it" for k in sorted(declared_keys - used)]
            + [f"{name}: uses paths.{k}, declared in neither READS, WRITES nor CARD_READS" for k in sorted(used - allowed)])


def stage_modules() -> dict[str, Path]:
    """{module name: file} of every stage dvc.yaml runs."""
    return {m: Path(importlib.import_module(m).__file__) for m, *_ in declared(DAG, PARAMS).values()}


# --------------------------------------------------------------------------- the checks

def test_every_stage_reads_and_writes_what_dvc_yaml_declares():
    assert mismatches(DAG, PARAMS) == []


def test_the_resolution_here_is_dvcs(tmp_path):
    """`declared` resolves dvc.yaml as DVC 3 does (its own index of a copy of dvc.yaml + params.yaml)."""
    import shutil

    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    Repo.init(str(tmp_path), no_scm=True)
    with Repo(str(tmp_path)) as repo:
        dvc = {s.name: ({d.def_path for d in s.deps if not isinstance(d, ParamsDependency)
                         and not is_code_dep(d.def_path, ROOT) and d.def_path != LOCK},
                              {o.def_path for o in s.outs}) for s in repo.index.stages}
    ours = {address: (deps, outs) for address, (_, _, deps, outs) in declared(DAG, PARAMS).items()}
    assert ours == dvc and "evaluate@v1.5" in ours
    assert PARAMS["paths"]["clean_repos"] in ours["tokenizer"][0]


def test_every_declared_path_is_some_stage_dep_or_output():
    seen = {p for *_, deps, outs in declared(DAG, PARAMS).values() for p in deps | outs}
    unused = [k for k, v in PARAMS["paths"].items() if not any(p == v or p.startswith(v + "/") for p in seen)]
    assert unused == []


def test_a_renamed_path_moves_in_dvc_yaml_and_in_the_code_together():
    params = copy.deepcopy(PARAMS)
    params["paths"]["filtered_files"] = "data/elsewhere/kept.parquet"
    params["paths"]["models"] = "exports"
    stages = declared(DAG, params)
    assert "data/elsewhere/kept.parquet" in stages["filter"][3] and "data/elsewhere/kept.parquet" in stages["repo_docs"][2]
    assert "exports/base" in stages["pretrain"][3] and "exports/base" in stages["evaluate@base"][2]
    assert PARAMS["paths"]["filtered_files"] not in stages["filter"][3]
    assert mismatches(DAG, params) == []


def test_the_checker_finds_a_planted_mismatch_on_either_side():
    dag = copy.deepcopy(DAG)
    dag["stages"]["filter"]["outs"][1] = "data/filtered/drops.parquet"   # dvc.yaml renamed, the code not
    problems = mismatches(dag, PARAMS)
    assert "filter: dvc.yaml outs data/filtered/drops.parquet, not in stages.filter's WRITES" in problems
    assert f"filter: stages.filter writes {PARAMS['paths']['filtered_audit']}, not in dvc.yaml's outs" in problems
    assert len(problems) == 2

    def load(name):  # the code reads one input too many
        mod = importlib.import_module(name)
        if name == "stages.dedup":
            return types.SimpleNamespace(READS=(*mod.READS, "clean_matches"), WRITES=mod.WRITES)
        return mod
    assert mismatches(DAG, PARAMS, load) == [
        f"dedup: stages.dedup reads {PARAMS['paths']['clean_matches']}, not in dvc.yaml's deps"]


def test_no_stage_module_hard_codes_a_pipeline_path():
    tops = top_folders(PARAMS)
    assert {"data/", "artifacts/", "checkpoints/", "reports/"} <= set(tops)
    found = {str(p.relative_to(ROOT)): hits for p in sorted((ROOT / "stages").rglob("*.py"))
             if (hits := hard_coded_paths(p.read_text(), tops))}
    assert found == {}


def test_the_literal_check_sees_a_planted_path():
    source = textwrap.dedent('''
        """A docstring may name data/raw/files.parquet."""
        OUT = Path("data/raw/files.parquet")
        MODEL = "artifacts/models/base"
        EXPORT = ("models/v1.5", f"{stage}.json", "checkpoints")
    ''')
    assert sorted(hard_coded_paths(source, top_folders(PARAMS))) == [
        "artifacts/models/base", "data/raw/files.parquet", "models/v1.5"]


def test_stage_code_reads_exactly_the_paths_it_declares():
    problems = []
    for name, path in stage_modules().items():
        problems += key_problems(name, path.read_text(), importlib.import_module(name))
    assert problems == []


def test_the_key_check_sees_an_undeclared_and_an_unused_key():
    mod = types.SimpleNamespace(READS=("raw_files",), WRITES=("filtered_files", ("reports", "x.json")))
    source = "def f(paths):\n    return paths.raw_files, paths.clean_repos, paths.reports, g(key='tokens')\n"
    assert key_problems("m", source, mod) == ["m: declares paths.filtered_files but its code never uses it",
                                              "m: uses paths.clean_repos, declared in neither READS, WRITES nor CARD_READS",
                                              "m: uses paths.tokens, declared in neither READS, WRITES nor CARD_READS"]


# --------------------------------------------------------------------------- Paths itself

def test_paths_fail_fast_naming_the_key():
    section = dict(PARAMS["paths"])
    assert Paths.from_params({"paths": section}).clean_repos == section["clean_repos"]
    with pytest.raises(ConfigError, match=r"^paths: missing section"):
        Paths.from_params({"filter": {}})
    with pytest.raises(ConfigError, match=r"^paths\.raw_audit: missing"):
        Paths.from_params({"paths": {k: v for k, v in section.items() if k != "raw_audit"}})
    with pytest.raises(ConfigError, match=r"^paths\.raw_filez: unknown parameter"):
        Paths.from_params({"paths": {**section, "raw_filez": "data/x.parquet"}})
    with pytest.raises(ConfigError, match=r"^paths\.tokens: must be a path inside the project"):
        Paths.from_params({"paths": {**section, "tokens": "/abs/tokens"}})
    with pytest.raises(ConfigError, match=r"^paths\.nope: unknown path"):
        Paths.from_params({"paths": section}).get("nope")
    with pytest.raises(ConfigError, match=r"^continue_pretrain\.nope: missing"):
        Paths.from_params({"paths": section}).ref("continue_pretrain.nope", PARAMS)


def test_a_stage_main_takes_its_paths_from_its_params_file(tmp_path, monkeypatch):
    """`--params` decides the paths (and a file without them fails before any work, naming the section)."""
    from stages import common

    params = copy.deepcopy(PARAMS)
    params["paths"]["reports"] = "elsewhere/reports"
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    assert common.load_paths(common.load_params(tmp_path / "p.yaml")).report("filter") == "elsewhere/reports/filter.json"
    assert common.load_paths() == Paths.from_params(PARAMS)  # a flow called directly: the project's params.yaml
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump({"filter": {}}))
    monkeypatch.setattr("sys.argv", ["filter", "--params", str(tmp_path / "bare.yaml")])
    monkeypatch.chdir(tmp_path)
    from stages.filter import main
    with pytest.raises(ConfigError, match=r"^paths: missing section"):
        main()
