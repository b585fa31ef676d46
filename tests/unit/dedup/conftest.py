"""A small real corpus for dedup/decontam tests: installed packages as repository documents.

Each package directory's .py files (sorted by path) become one REPOS row with a path-comment
header per file, the layout the repo_docs stage produces. pip vendors its own copies of
requests, idna and urllib3, which are real near-duplicates of the installed packages.
"""

from __future__ import annotations

import importlib.util
import random
import re
from pathlib import Path

import pyarrow as pa
import pytest

from dscoder.schemas import REPOS


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        pytest.skip(f"package {name} is not installed")
    return Path(spec.origin).parent


def repo_row(repo_id: str, files: dict[str, str], name: str | None = None) -> dict:
    """A REPOS row from {path: content}, blocks in the given order."""
    parts, spans, pos = [], [], 0
    for path, content in files.items():
        header = f"# {path}\n"
        block = header + content
        spans.append({"path": path, "language": "python", "start": pos, "end": pos + len(block),
                      "header_chars": len(header)})
        parts.append(block)
        pos += len(block)
    return {"repo_id": repo_id, "repo_name": name or repo_id, "source": f"test:{repo_id}",
            "text": "".join(parts), "files": spans, "languages": ["python"] if files else [],
            "n_files": len(files), "edges_found": 0, "edges_resolved": 0, "cycles_broken": 0}


def package_files(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): p.read_text(encoding="utf-8", errors="replace")
            for p in sorted(directory.rglob("*.py"))}


def mutate(files: dict[str, str], names: list[str], seed: int, frac: float = 0.05) -> dict[str, str]:
    """Rename identifiers `names` and delete a `frac` of the lines (seeded)."""
    rng = random.Random(seed)
    out = {}
    for path, text in files.items():
        for i, n in enumerate(names):
            text = re.sub(rf"\b{n}\b", f"renamed_{seed}_{i}", text)
        out[path] = "".join(line for line in text.splitlines(keepends=True) if rng.random() >= frac)
    return out


# Identifiers of requests renamed in the mutated copies (mid-frequency: 70 to 90 uses each).
RENAMES = [["cookies", "method"], ["CookieJar", "proxies"], ["verify", "content"]]


@pytest.fixture(scope="session")
def corpus_rows() -> list[dict]:
    vendor = package_dir("pip") / "_vendor"
    requests_files = package_files(package_dir("requests"))
    rows = [
        repo_row("requests", requests_files),
        repo_row("pip-vendor-requests", package_files(vendor / "requests")),
        repo_row("rich", package_files(package_dir("rich"))),
        repo_row("idna", package_files(package_dir("idna"))),
        repo_row("pip-vendor-idna", package_files(vendor / "idna")),
        repo_row("urllib3", package_files(package_dir("urllib3"))),
        repo_row("pip-vendor-urllib3", package_files(vendor / "urllib3")),
        repo_row("yaml", package_files(package_dir("yaml"))),
    ]
    for seed, names in enumerate(RENAMES):
        rows.append(repo_row(f"requests-mutant-{seed}", mutate(requests_files, names, seed)))
    rows.append(repo_row("empty", {}))  # no words at all
    return rows


@pytest.fixture(scope="session")
def corpus(corpus_rows) -> pa.Table:
    return pa.Table.from_pylist(corpus_rows, schema=REPOS)


@pytest.fixture(scope="session")
def make_repo_row():
    """`repo_row` as a fixture (test modules must not import conftest by name)."""
    return repo_row
