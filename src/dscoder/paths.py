"""`Paths`: every pipeline artifact's path, declared once in params.yaml's `paths` section.

dvc.yaml names each data dep and output as `${paths.<key>}` (DVC templating reads params.yaml),
each stage reads and writes the same entries through `Paths` (its `READS` / `WRITES` say which),
and lineage, trace and diff find the outputs there too. Renaming an output is one edit of
params.yaml. Paths are relative to the project root, as in dvc.yaml.

A stage's reference to a path (`READS` / `WRITES`, `Paths.ref`) is a key (`"clean_repos"`), a
key and a name below that folder (`("models", "base")`: `<paths.models>/base`), or a dotted
params name whose value is a path (`"continue_pretrain.init_from"`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Mapping, Union

import yaml

from dscoder.config import ConfigError, Settings

Ref = Union[str, tuple[str, str]]


@dataclass(frozen=True, kw_only=True)
class Paths(Settings):
    """The `paths` section of params.yaml: one field per artifact (no defaults: params.yaml is
    the one place they are written). A missing or unknown key fails naming `paths.<key>`."""

    section: ClassVar[str] = "paths"

    raw_files: str
    raw_audit: str
    filtered_files: str
    filtered_audit: str
    repo_docs: str
    repo_docs_audit: str
    dedup_repos: str
    dedup_clusters: str
    clean_repos: str
    clean_audit: str
    clean_matches: str
    tokenizer: str
    tokens: str
    tokens_audit: str
    instruct_data: str
    chat_tokenizer: str
    instruct_tokens: str
    general_tokenizer: str
    general_tokens: str
    v15_tokens: str
    models: str
    """Exported models, one folder per name: `<models>/<name>` (base, base-16k, instruct, general, v1.5)."""
    checkpoints: str
    """Training checkpoints, one folder per training stage: `<checkpoints>/<stage>`."""
    reports: str
    """Stage reports: `<reports>/<stage>.json` (+ `.timing.json`), a trainer's curves in `<reports>/<stage>/`."""

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            p = PurePosixPath(getattr(self, f.name))
            self.require(bool(str(p)) and str(p) != "." and not p.is_absolute() and ".." not in p.parts, f.name,
                         f"must be a path inside the project, got {getattr(self, f.name)!r}")

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> "Paths":
        """The `paths` section of a params dict (the whole params.yaml)."""
        section = (params or {}).get("paths")
        if not isinstance(section, Mapping):
            raise ConfigError("paths: missing section (params.yaml declares every pipeline artifact's path there)")
        missing = [k for k in cls.keys() if k not in section]
        if missing:
            raise ConfigError(f"paths.{missing[0]}: missing (declare it in params.yaml's paths section)")
        return cls.from_dict(dict(section))

    @classmethod
    def load(cls, params_file: str | Path) -> "Paths":
        return cls.from_params(yaml.safe_load(Path(params_file).read_text()) or {})

    def get(self, key: str) -> str:
        """The path of `key`, or a ConfigError naming `paths.<key>`."""
        if key not in self.keys():
            raise ConfigError(f"paths.{key}: unknown path (known: {', '.join(self.keys())})")
        return getattr(self, key)

    def model(self, name: str) -> str:
        return f"{self.models}/{name}"

    def checkpoint(self, stage: str) -> str:
        return f"{self.checkpoints}/{stage}"

    def report(self, name: str) -> str:
        """`<reports>/<name>.json` (`name` may hold a folder: `eval/base`)."""
        return f"{self.reports}/{name}.json"

    def ref(self, ref: Ref, params: Mapping[str, Any] | None = None) -> str:
        """The path a stage reference names (see the module docstring); a dotted name is looked
        up in `params` (the whole params dict)."""
        if isinstance(ref, tuple):
            key, name = ref
            return f"{self.get(key)}/{name}"
        if "." in ref:
            node: Any = params or {}
            for part in ref.split("."):
                if not isinstance(node, Mapping) or part not in node:
                    raise ConfigError(f"{ref}: missing (a path named by a parameter)")
                node = node[part]
            return str(node)
        return self.get(ref)


def report_refs(stage: str) -> tuple[tuple[str, str], ...]:
    """The report files `write_report` writes for `stage` (metrics and the timing plot), as refs."""
    return ("reports", f"{stage}.json"), ("reports", f"{stage}.timing.json")
