"""The instruction data set: user files + mined examples, decontaminated, split, written.

Order and splits are deterministic: user files in params order (records in file order), then
mined examples in corpus row order. Mined examples are split by repository
(`dscoder.tokens.split.val_repo_ids`, the same rule as pretraining, so with the same seed and fraction a
repository held out there is held out here); user records, which have no repository, by a
seeded hash of their id. Decontamination scans every conversation's text (all turns) with the
`decontam` stage's BenchmarkIndex (10-gram / exact short-string rules, Sec. 2.4) and audits
each hit as `benchmark:<name>`.

Output directory (`write_instruct_data`): train.jsonl, validation.jsonl (one Example per line,
sorted keys), audit.parquet (schemas.AUDIT, stage "instruct_data"), meta.json (counts, params),
written atomically as one directory.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Iterable, Mapping

import numpy as np
import pyarrow as pa

from dscoder.config import Settings, check
from dscoder.instruct.mining import MiningSettings, mine_repos
from dscoder.instruct.records import Example, audit_row, content_key, load_instruction_file
from dscoder.io import atomic_path, write_json, write_parquet
from dscoder.tokens.split import repo_unit, val_repo_ids
from dscoder.schemas import AUDIT

SPLITS = ("train", "validation")


@dataclass(frozen=True, kw_only=True)
class InstructFile(Settings):
    """One user instruction file (an entry of params `instruct_data.files`)."""
    section: ClassVar[str] = "instruct_data.files"


    name: str
    """Source name used in ids, the audit and the report."""
    path: str
    """JSONL or JSON file in Alpaca or chat form (see dscoder.instruct.records)."""


@dataclass(frozen=True, kw_only=True)
class InstructDataSettings(Settings):
    section: ClassVar[str] = "instruct_data"

    files: tuple[InstructFile, ...] = ()
    """User instruction files; none in the default profile."""
    mine: bool = True
    """Mine documented functions from the clean corpus (dscoder.instruct.mining)."""
    mining: MiningSettings = field(default_factory=MiningSettings)
    """Mining settings."""
    max_chars: int = 32000
    """A conversation longer than this (characters of all turns) is audited as too_long; 0: no limit."""
    val_fraction: float = 0.05
    """Expected share of repositories (mined) and of records (user files) held out."""
    split_seed: int = 0
    """Salt of the split hash (the same rule as pack.split_seed)."""

    def __post_init__(self) -> None:
        # params.yaml gives the files as mappings; build each into an InstructFile
        files = tuple(InstructFile.from_dict(f, "instruct_data.files") if isinstance(f, dict) else f for f in self.files)
        object.__setattr__(self, "files", files)

    def validate(self) -> None:
        names = [f.name for f in self.files]
        check(len(set(names)) == len(names), "instruct_data.files", f"names must be unique, got {names}")
        check(all(n and not n.startswith("mined") for n in names), "instruct_data.files",
              "names must be non-empty and not start with 'mined'")
        check(self.max_chars >= 0, "instruct_data.max_chars", f"must be >= 0, got {self.max_chars}")
        check(0.0 <= self.val_fraction < 1.0, "instruct_data.val_fraction", f"must be in [0, 1), got {self.val_fraction}")
        self.mining.validate()


@dataclass
class InstructData:
    train: list[Example] = field(default_factory=list)
    validation: list[Example] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def decontaminate_examples(examples: list[Example], index: Any, batch: int = 512
                           ) -> tuple[list[Example], list[dict[str, Any]], Counter]:
    """Examples with no benchmark hit, audit rows of the others (first hit per benchmark),
    and hit counts per benchmark. `index` is a dscoder.data.decontam.BenchmarkIndex."""
    from dscoder.data import ngrams

    kept, audit, hits_per = [], [], Counter()
    for b0 in range(0, len(examples), batch):
        chunk = examples[b0: b0 + batch]
        toks = [ngrams.words(e.text(), lowercase=True) for e in chunk]
        tokens = [t for ts in toks for t in ts]
        file_of = np.repeat(np.arange(len(chunk)), [len(ts) for ts in toks])
        hits: dict[int, dict[str, Any]] = {}
        for i, m in index.find(tokens, ngrams.word_hashes(tokens), file_of):
            hits.setdefault(i, {}).setdefault(m.string.benchmark, m)
        for i, e in enumerate(chunk):
            if i not in hits:
                kept.append(e)
                continue
            for bench, m in hits[i].items():
                hits_per[bench] += 1
                audit.append(audit_row(f"benchmark:{bench}", source=e.source, path=e.path or e.id, repo_id=e.repo_id,
                                       language=e.language, size=len(e.text().encode()),
                                       detail=f"{e.id} | {m.string.item_id} {m.string.field} {m.kind}: {m.ngram}"))
    return kept, audit, hits_per


def build_instruct_data(rows: Iterable[Mapping[str, Any]], params: InstructDataSettings, index: Any | None) -> InstructData:
    """User files + mined examples (from clean REPOS rows), deduplicated across sources,
    decontaminated with `index` (None: skipped, recorded in stats), split."""
    params.validate()
    out = InstructData()
    examples: list[Example] = []
    per_source: dict[str, dict[str, int]] = {}
    for f in params.files:
        r = load_instruction_file(f.path, name=f.name, max_chars=params.max_chars)
        examples.extend(r.examples)
        out.audit.extend(r.audit)
        per_source[f.name] = {"records": r.records, "valid": len(r.examples), "rejected": len(r.audit)}
    mining_stats: Counter = Counter()
    if params.mine:
        mined = mine_repos(rows, params.mining)
        mining_stats = mined.stats
        for e in mined.examples:
            chars = len(e.text())
            if params.max_chars and chars > params.max_chars:
                out.audit.append(audit_row("too_long", source=e.source, path=e.path, repo_id=e.repo_id,
                                           language=e.language, detail=f"{chars} chars > {params.max_chars}"))
            else:
                examples.append(e)
    seen: dict[str, str] = {}
    unique = []
    for e in examples:  # the same function vendored in two repositories, or a user record twice
        key = content_key(e.messages)
        if key in seen:
            out.audit.append(audit_row("duplicate", source=e.source, path=e.path or e.id, repo_id=e.repo_id,
                                       language=e.language, detail=f"{e.id} same as {seen[key]}"))
            continue
        seen[key] = e.id
        unique.append(e)
    hits: Counter = Counter()
    if index is not None:
        unique, audit, hits = decontaminate_examples(unique, index)
        out.audit.extend(audit)
    val_repos = val_repo_ids({e.repo_id for e in unique if e.repo_id}, params.val_fraction, params.split_seed)
    for e in unique:
        held = e.repo_id in val_repos if e.repo_id else repo_unit(e.id, params.split_seed) < params.val_fraction
        (out.validation if held else out.train).append(replace(e, split="validation" if held else "train"))
    reasons = Counter(a["reason"] for a in out.audit)
    out.stats = {
        "train": len(out.train), "validation": len(out.validation),
        "train_repos": len({e.repo_id for e in out.train if e.repo_id}),
        "validation_repos": len({e.repo_id for e in out.validation if e.repo_id}),
        "by_source": dict(sorted(Counter(e.source for e in unique).items())),
        "user_files": per_source, "mining": dict(sorted(mining_stats.items())),
        "rejected": dict(sorted(reasons.items())), "benchmark_hits": dict(sorted(hits.items())),
        "decontaminated": index is not None,
    }
    return out


def write_instruct_data(out_dir: str | os.PathLike, data: InstructData, params: InstructDataSettings) -> None:
    """Write the directory described in the module docstring, atomically."""
    with atomic_path(out_dir, is_dir=True) as tmp:
        for split in SPLITS:
            with open(tmp / f"{split}.jsonl", "w", encoding="utf-8") as fh:
                for e in getattr(data, split):
                    fh.write(json.dumps(e.to_json(), ensure_ascii=False, sort_keys=True) + "\n")
        write_parquet(tmp / "audit.parquet", pa.Table.from_pylist(data.audit, schema=AUDIT), schema=AUDIT)
        write_json(tmp / "meta.json", {"stats": data.stats, "params": params.to_dict()})


def read_examples(path: str | os.PathLike) -> list[Example]:
    """Examples of a train.jsonl / validation.jsonl written by `write_instruct_data`."""
    with open(path, encoding="utf-8") as fh:
        return [Example.from_json(json.loads(line)) for line in fh if line.strip()]
