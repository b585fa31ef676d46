"""The model card of an exported model: `README.md` in the Hugging Face format (YAML front
matter, then markdown), beside `model_card.json`, the facts it was rendered from.

    python -m dscoder.train.model_card artifacts/models/base --eval reports/eval/base.json --out card/README.md

The stage that trains a model gathers the facts (what made it: the recipe's stages and their
params, the data each training stage saw: repositories, files and tokens per language, the
sources and their licences where a source states one) and hands them to `export_hf`, which adds
what only the trainer knows (the architecture, the training settings and results) and writes
both files inside the atomic export, before `manifest.json`. Nothing here reads the project's
reports or params: the caller passes every fact.

Byte-stable: the same facts give the same bytes (sorted keys, no timestamps, no absolute paths:
an absolute path is shown as `.../<its last component>`). The dscoder revision is the package version
and the library versions that decide the weights (torch, transformers), not a git commit: a
rerun that reproduces the weights at a later commit reproduces the whole folder, so the stages
downstream (which depend on the folder's hash) stay cached.

Scores are not known at export (the evaluate stage runs on the exported folder); `render_card`
with `evaluation=` (an evaluate report, `reports/eval/<model>.json`) adds them, with the
contamination view (each score again on the items that never matched training data), to the
Hugging Face `model-index` and the body: that is what the command above prints or writes.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from importlib import metadata as md
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

CARD_FILE = "README.md"
FACTS_FILE = "model_card.json"
FORMAT = "dscoder.model_card/1"

PAPER = "https://arxiv.org/abs/2401.14196"

#: Licence of the sources that are parts of the running Python (the standard library, its C headers).
PYTHON_LICENSE = "PSF-2.0"

#: Summary keys of an evaluate report: (benchmark key in `benchmarks`, display name, HF dataset type).
BENCHMARKS = {
    "humaneval": ("humaneval", "HumanEval", "openai_humaneval"),
    "humaneval_fim": ("humaneval_fim", "HumanEval FIM (single line)", "openai_humaneval"),
    "mbpp": ("mbpp", "MBPP", "mbpp"),
    "gsm8k_pal": ("gsm8k_pal", "GSM8K (PAL)", "gsm8k"),
    "repo_fim": ("repo_fim", "repository FIM (held-out repositories)", "dscoder/held-out"),
    "crossfile_bm25": ("crossfile", "cross-file completion (BM25 context)", "dscoder/held-out"),
    "crossfile_in_file": ("crossfile", "cross-file completion (in-file context)", "dscoder/held-out"),
    "perplexity": ("perplexity", "perplexity (held-out repositories)", "dscoder/held-out"),
}


# --------------------------------------------------------------------------- facts helpers


def revision() -> dict[str, str]:
    """The dscoder version and those of the libraries that decide the exported bytes."""
    out = {}
    for name in ("dscoder", "torch", "transformers"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            if name == "dscoder":
                from dscoder import __version__

                out[name] = __version__
    return out


def source_license(source: str | None) -> str | None:
    """The licence a source states, from the source label ingest records (`python_dist:six==1.17.0`,
    `stdlib:json@3.11.7`, ...): an installed distribution's metadata (License-Expression, else its
    licence classifiers, else a one-line License field), Python's own licence for the standard
    library and its headers; None where the source states none that ingest can see (folders,
    archives, git, sdists, npm, Parquet; a library vendored inside a distribution)."""
    if not source:
        return None
    kind, _, rest = source.partition(":")
    if kind in ("stdlib", "sysconfig"):
        return PYTHON_LICENSE
    if kind != "python_dist":
        return None
    name, _, version = rest.partition("==")
    version, _, subdir = version.partition("/")
    if "_vendor/" in subdir + "/" or "vendored" in subdir:
        return None  # vendored code keeps its own licence, which the distribution's metadata does not state
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        return None
    if version and dist.version != version:
        return None  # another version is installed now: its metadata may not be the ingested one's
    meta = dist.metadata
    if meta.get("License-Expression"):
        return str(meta["License-Expression"]).strip()
    classifiers = sorted({c.split("::")[-1].strip() for c in meta.get_all("Classifier") or []
                          if c.startswith("License ::") and c.split("::")[-1].strip() != "OSI Approved"})
    if classifiers:
        return " / ".join(classifiers)
    text = (meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 80 and text.upper() not in ("UNKNOWN", "NONE"):
        return text
    return None


_ABS = re.compile(r"(^|[\s:=(#@,])((?:~|[A-Za-z]:)?[/\\](?![/\\\s])[^\s:#@,]+)")


def scrub(value: Any) -> Any:
    """`value` with every absolute path inside a string replaced by `.../<last component>`
    (recursively through dicts and lists); URLs are left alone."""
    if isinstance(value, str):
        def short(m: re.Match) -> str:
            parts = [p for p in re.split(r"[/\\]", m.group(2)) if p]
            return m.group(1) + ".../" + (parts[-1] if parts else "")
        return _ABS.sub(short, value)
    if isinstance(value, Mapping):
        return {str(k): scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def evaluation_from_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """The scores of an evaluate report (`reports/eval/<model>.json`), one entry per benchmark
    key of its `summary`: each metric, its value on the clean items (those that never matched
    training data), and how many items matched. Skipped benchmarks are listed with their note."""
    summary = report.get("summary") or {}
    benches = report.get("benchmarks") or {}
    out: dict[str, Any] = {}
    for key, metrics in sorted(summary.items()):
        src = BENCHMARKS.get(key, (key, key, "dscoder/" + key))[0]
        bench = benches.get(src) or {}
        contamination = bench.get("contamination") or {}
        entry: dict[str, Any] = {"metrics": {m: v for m, v in sorted(metrics.items()) if not m.startswith("clean_")}}
        clean = {m[len("clean_"):]: v for m, v in sorted(metrics.items()) if m.startswith("clean_")}
        if clean:
            entry["clean"] = clean
        for k in ("n", "n_total"):
            if isinstance(bench.get(k), int):
                entry[k] = bench[k]
        for k in ("matched_items", "matched_items_evaluated", "clean_n"):
            if isinstance(contamination.get(k), int):
                entry[k] = contamination[k]
        if contamination.get("note"):
            entry["contamination_note"] = contamination["note"]
        out[key] = entry
    skipped = {name: b.get("note") or b.get("status") for name, b in sorted(benches.items())
               if isinstance(b, dict) and b.get("status") not in (None, "ok")}
    result = {"benchmarks": out}
    if skipped:
        result["skipped"] = skipped
    return result


def architecture(config: Any, dtype: str | None = None) -> dict[str, Any]:
    """The model's shape from a LlamaConfig (or its dict)."""
    c = config if isinstance(config, Mapping) else config.to_dict()
    out = {k: c.get(src) for k, src in (
        ("architecture", "architectures"), ("model_type", "model_type"), ("layers", "num_hidden_layers"),
        ("hidden_size", "hidden_size"), ("intermediate_size", "intermediate_size"),
        ("attention_heads", "num_attention_heads"), ("kv_heads", "num_key_value_heads"),
        ("vocab_size", "vocab_size"), ("max_position_embeddings", "max_position_embeddings"),
        ("rope", "rope_parameters"))}
    if isinstance(out["architecture"], list):
        out["architecture"] = out["architecture"][0] if out["architecture"] else None
    out["architecture"] = out["architecture"] or "LlamaForCausalLM"
    if out["rope"] is None and c.get("rope_theta") is not None:
        out["rope"] = {"rope_theta": c.get("rope_theta"), **({"scaling": c["rope_scaling"]} if c.get("rope_scaling") else {})}
    if dtype:
        out["dtype"] = dtype
    return {k: v for k, v in out.items() if v is not None}


#: The trainer's summary keys a card shows (`params` as `parameters`: the count, not settings).
TRAINING_RESULTS = {"steps": "steps", "tokens": "tokens", "seq_len": "seq_len", "world_size": "world_size",
                    "device": "device", "final_train_loss": "final_train_loss", "final_val_loss": "final_val_loss",
                    "final_lr": "final_lr", "params": "parameters"}
TRAINING_SETTINGS = ("model_preset", "init_from", "global_batch_size", "lr", "schedule", "warmup_steps", "max_steps",
                     "step_fractions", "step_multipliers", "min_lr_ratio", "beta1", "beta2", "weight_decay",
                     "grad_clip", "loss_mask", "rope_scaling_factor", "rope_theta", "seed", "eval_sequences",
                     "mixed_precision", "export_dtype")


def complete_facts(facts: Mapping[str, Any] | None, *, name: str, config: Any = None, dtype: str | None = None,
                   train_config: Mapping[str, Any] | None = None, results: Mapping[str, Any] | None = None) -> dict:
    """The stage's facts plus what the export knows: the folder's name, the architecture, the
    training settings and results (of this run: the last entry of `stages`), the revision."""
    out = json.loads(json.dumps(dict(facts or {}), default=str))
    out["format"] = FORMAT
    out["name"] = name
    out.setdefault("stages", [])
    out["revision"] = revision()
    if config is not None:
        out["model"] = architecture(config, dtype)
    stage = (train_config or {}).get("run_name") or out.get("stage") or "train"
    out.setdefault("stage", stage)
    if not out["stages"] or out["stages"][-1].get("stage") != out["stage"]:
        out["stages"].append({"stage": out["stage"]})
    this = out["stages"][-1]
    this["model"] = name
    if train_config:
        this["settings"] = {k: train_config[k] for k in TRAINING_SETTINGS if k in train_config}
    if results:
        this["results"] = {shown: results[k] for k, shown in TRAINING_RESULTS.items() if results.get(k) is not None}
    if results and "final_val_loss" in this["results"]:
        out.setdefault("validation", {"loss": this["results"]["final_val_loss"]})
    return scrub(out)


# --------------------------------------------------------------------------- rendering


def _num(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.4g}"
    return str(v)


def _cell(v: Any) -> str:
    return _num(v).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: Iterable[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=True, allow_unicode=True, default_flow_style=False, width=100).rstrip("\n")


def _languages(data: Mapping[str, Any]) -> list[str]:
    langs = data.get("languages") or {}
    return [lang for lang, _ in sorted(langs.items(), key=lambda kv: (-int(kv[1].get("tokens") or 0), kv[0]))
            if not lang.startswith("(")]


def _model_index(facts: Mapping[str, Any]) -> list[dict] | None:
    results = []
    val = (facts.get("validation") or {}).get("loss")
    if isinstance(val, (int, float)) and math.isfinite(val):
        results.append({
            "task": {"type": "text-generation", "name": "Text Generation"},
            "dataset": {"type": "dscoder/held-out", "name": "validation split of the training tokens (held-out repositories)"},
            "metrics": [{"type": "loss", "name": "validation loss", "value": val},
                        {"type": "perplexity", "name": "validation perplexity", "value": math.exp(min(val, 700.0))}],
        })
    ev = (facts.get("evaluation") or {}).get("benchmarks") or {}
    for key, entry in sorted(ev.items()):
        _, title, dtype = BENCHMARKS.get(key, (key, key, "dscoder/" + key))
        metrics = []
        for m, v in sorted((entry.get("metrics") or {}).items()):
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                metrics.append({"type": m, "name": m, "value": v})
                cv = (entry.get("clean") or {}).get(m)
                if isinstance(cv, (int, float)) and not isinstance(cv, bool) and math.isfinite(cv):
                    metrics.append({"type": m, "name": f"{m} (items never matched in training data)", "value": cv})
        if metrics:
            results.append({"task": {"type": "text-generation", "name": "Text Generation"},
                            "dataset": {"type": dtype, "name": title}, "metrics": metrics})
    return [{"name": facts.get("name") or "model", "results": results}] if results else None


def card_metadata(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The YAML front matter: Hugging Face's model card fields plus a short `dscoder` block."""
    tags = {"code", "dscoder", "deepseek-coder-recipe", "text-generation"}
    if facts.get("stage"):
        tags.add(f"dscoder-{facts['stage']}")
    for st in facts.get("stages") or []:
        for lang in [x for x in _languages(st.get("data") or {}) if x != "text"][:5]:
            tags.add(lang)
    meta: dict[str, Any] = {
        "language": ["code"],
        "library_name": "transformers",
        "license": "other",
        "license_name": "training-data-licences",
        "pipeline_tag": "text-generation",
        "tags": sorted(tags),
    }
    index = _model_index(facts)
    if index:
        meta["model-index"] = index
        meta["metrics"] = sorted({m["type"] for r in index[0]["results"] for m in r["metrics"]})
    meta["dscoder"] = {
        "format": FORMAT,
        "stage": facts.get("stage"),
        "recipe": [st.get("stage") for st in facts.get("stages") or []],
        "revision": facts.get("revision") or {},
        "paper": PAPER,
    }
    return meta


def _data_lines(data: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    splits = data.get("splits") or {}
    if splits:
        keys = [k for k in ("repos", "docs", "tokens") if any(k in s for s in splits.values())]
        lines += _table(["split", *keys], [[name, *(s.get(k) for k in keys)] for name, s in sorted(splits.items())])
        lines.append("")
    langs = data.get("languages") or {}
    if langs:
        total = sum(int(v.get("tokens") or 0) for v in langs.values()) or 1
        order = sorted(langs.items(), key=lambda kv: (-int(kv[1].get("tokens") or 0), kv[0]))
        lines.append(f"Tokens per language ({data.get('languages_split', 'train')} split; `(special)`: "
                     "document and FIM sentinel tokens):")
        lines.append("")
        lines += _table(["language", "files", "tokens", "share"],
                        [[lang, v.get("files"), v.get("tokens"), f"{100 * int(v.get('tokens') or 0) / total:.2f}%"]
                         for lang, v in order])
        lines.append("")
    for key, value in sorted(data.items()):
        if key in ("splits", "languages", "languages_split", "sources", "pipeline"):
            continue
        lines += [f"{key}:", "", "```yaml", _yaml(value), "```", ""]
    pipeline = data.get("pipeline") or {}
    if pipeline:
        lines += ["What the data stages kept (their reports' headline figures):", ""]
        lines += _table(["stage", "figures"], [[st, ", ".join(f"{k} {_num(v)}" for k, v in sorted(fig.items()))]
                                               for st, fig in pipeline.items()])
        lines.append("")
    sources = data.get("sources") or []
    if sources:
        stated = sum(1 for s in sources if s.get("license"))
        lines += [f"Sources of the training split ({len(sources)}; a licence where the source states one: "
                  f"{stated} of {len(sources)}):", ""]
        lines += _table(["source", "repositories", "tokens", "licence"],
                        [[f"`{s.get('source')}`", s.get("repositories"), s.get("tokens"), s.get("license") or "not stated"]
                         for s in sources])
        lines.append("")
    return lines


def _eval_lines(facts: Mapping[str, Any]) -> list[str]:
    ev = facts.get("evaluation")
    name = facts.get("name") or "model"
    if not ev:
        return [f"Not evaluated when exported: the evaluate stage scores this folder (`dvc repro evaluate@{name}` "
                f"writes `reports/eval/{name}.json`). `python -m dscoder.train.model_card <this folder> "
                f"--eval reports/eval/{name}.json --out <dir>/README.md` writes this card with the scores, each "
                "also on the items that never matched training data.", ""]
    rows = []
    for key, e in sorted((ev.get("benchmarks") or {}).items()):
        title = BENCHMARKS.get(key, (key, key, ""))[1]
        for m, v in sorted((e.get("metrics") or {}).items()):
            clean = (e.get("clean") or {}).get(m)
            matched = e.get("matched_items")
            contam = (f"{matched} matched" + (f", {e['clean_n']} clean of {e.get('n')}" if "clean_n" in e else "")
                      if matched is not None else e.get("contamination_note") or "")
            rows.append([title, m, v, "" if clean is None else clean, e.get("n", ""), contam])
    lines = ["Scores (the `clean` column: the same metric on the items that never matched training data in "
             "decontamination):", ""]
    lines += _table(["benchmark", "metric", "score", "clean", "items", "contamination"], rows)
    lines.append("")
    for bench, note in sorted((ev.get("skipped") or {}).items()):
        lines.append(f"- {bench}: not run ({note})")
    if ev.get("skipped"):
        lines.append("")
    return lines


def render_card(facts: Mapping[str, Any], evaluation: Mapping[str, Any] | None = None) -> str:
    """The card's text. `evaluation`: an evaluate report (or `evaluation_from_report`'s output)."""
    facts = dict(facts)
    if evaluation is not None:
        facts["evaluation"] = evaluation if "benchmarks" in evaluation and "summary" not in evaluation \
            else evaluation_from_report(evaluation)
    facts = scrub(facts)
    name = facts.get("name") or "model"
    stages = facts.get("stages") or []
    rev = facts.get("revision") or {}
    model = facts.get("model") or {}
    out = ["---", _yaml(card_metadata(facts)), "---", "",
           f"# {name}", "",
           f"A causal language model for code, trained by dscoder with the DeepSeek-Coder "
           f"recipe ([arXiv 2401.14196]({PAPER})); this folder is the output of the `{facts.get('stage')}` stage. "
           "Generated from the run's facts (`model_card.json` beside it); do not edit by hand.", ""]
    out += ["## Use", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
            'tok = AutoTokenizer.from_pretrained("path/to/this/folder")',
            'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")', "```", ""]
    if model:
        out += ["## Model", ""]
        out += _table(["field", "value"], [[k, json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v]
                                 for k, v in sorted(model.items())])
        out.append("")
    out += ["## Recipe", "",
            "The stages that made this model, in order, with the parameters each ran with:", ""]
    out += _table(["#", "stage", "output model", "trained on (tokens)", "final train / val loss"],
                  [[i + 1, st.get("stage"), st.get("model") or "",
                    (st.get("results") or {}).get("tokens", ""),
                    " / ".join(_num((st.get("results") or {}).get(k)) for k in ("final_train_loss", "final_val_loss"))
                    if st.get("results") else ""] for i, st in enumerate(stages)])
    out.append("")
    for st in stages:
        if st.get("params") is None and not st.get("settings"):
            continue
        out += [f"### {st.get('stage')}", ""]
        if st.get("params") is not None:
            out += ["```yaml", _yaml(st["params"]) if st["params"] else "{}", "```", ""]
        if st.get("settings"):
            out += ["Resolved trainer settings:", "", "```yaml", _yaml(st["settings"]), "```", ""]
        if st.get("results"):
            out += _table(["result", "value"], [[k, v] for k, v in sorted(st["results"].items())])
            out.append("")
    data_stages = [st for st in stages if st.get("data")]
    out += ["## Training data", ""]
    if not data_stages:
        out += ["No data facts were recorded for this run.", ""]
    for st in data_stages:
        out += [f"### Seen in `{st.get('stage')}`" + (f" (→ {st['model']})" if st.get("model") else ""), ""]
        out += _data_lines(st["data"])
    out += ["## Licence", "",
            "dscoder (the code) is Apache-2.0. These weights are trained on the sources listed under *Training "
            "data*; their licences, where a source states one, are listed there. No licence is chosen for the "
            "weights here: whoever publishes them decides, in line with those licences.", ""]
    out += ["## Evaluation", ""]
    out += _eval_lines(facts)
    out += ["## Revision", ""]
    out += _table(["package", "version"], [[k, v] for k, v in sorted(rev.items())])
    out.append("")
    return "\n".join(out)


def write_card(folder: str | Path, facts: Mapping[str, Any]) -> Path:
    """Write README.md and model_card.json into `folder` (the export's temporary folder)."""
    folder = Path(folder)
    (folder / FACTS_FILE).write_text(json.dumps(facts, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    path = folder / CARD_FILE
    path.write_text(render_card(facts), encoding="utf-8")
    return path


def read_facts(model_dir: str | Path) -> dict[str, Any] | None:
    """The facts a dscoder export carries (None for a folder dscoder did not export)."""
    p = Path(model_dir) / FACTS_FILE
    if not p.is_file():
        return None
    facts = json.loads(p.read_text(encoding="utf-8"))
    return facts if isinstance(facts, dict) and facts.get("format") == FORMAT else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dscoder.train.model_card",
                                 description="Render an exported model's card, optionally with its evaluation scores.")
    ap.add_argument("model_dir", help="an exported model folder (holding model_card.json)")
    ap.add_argument("--eval", dest="eval_report", help="an evaluate report (reports/eval/<model>.json)")
    ap.add_argument("--out", help="write the card here (default: print it)")
    args = ap.parse_args(argv)
    facts = read_facts(args.model_dir)
    if facts is None:
        ap.error(f"{args.model_dir}: no {FACTS_FILE} (not a dscoder export)")
    report = json.loads(Path(args.eval_report).read_text()) if args.eval_report else None
    text = render_card(facts, evaluation=report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
