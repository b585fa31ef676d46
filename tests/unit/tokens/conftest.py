"""Shared fixtures: REPOS-style documents (real code plus Unicode-heavy text) and a small
byte-level BPE trained on them once per session."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from dscoder.tokens import tokenizer as tk

UNICODE_FILES = {
    "docs/unicode.md": "# Ünïcödé\n\n日本語のテキスト、中文文本。 Ελληνικά; русский; עברית; العربية\n"
                       "emoji 👩‍💻🚀 e\u0301 \ufeffBOM \x00nul\ttab\r\nCRLF   trailing  \n",
    "src/lit.py": 's = "<|EOT|> <｜fim▁begin｜> not special here"\nπ = 3.14159\n',
}


def repo_row(repo_id: str, files: dict[str, str], language_of=lambda p: "python") -> dict:
    """A REPOS row from {path: content}: a path-comment header line per file, in order."""
    text, spans = "", []
    for path, content in files.items():
        header = f"# {path}\n"
        start = len(text)
        text += header + content
        spans.append({"path": path, "language": language_of(path), "start": start, "end": len(text),
                      "header_chars": len(header)})
    return {"repo_id": repo_id, "repo_name": repo_id.split(":")[-1], "source": "test", "text": text,
            "files": spans, "languages": sorted({s["language"] for s in spans}), "n_files": len(spans),
            "edges_found": 0, "edges_resolved": 0, "cycles_broken": 0}


def _lang(path: str) -> str:
    return {"md": "markdown", "py": "python", "c": "c"}.get(path.rsplit(".", 1)[-1], "text")


def package_docs(names: list[str], max_files: int = 12) -> list[dict]:
    docs = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        base = Path(spec.origin).parent
        files = {}
        for f in sorted(base.rglob("*.py"))[:max_files]:
            files[str(f.relative_to(base.parent))] = f.read_text(encoding="utf-8", errors="replace")
        docs.append(repo_row(f"pkg:{name}", files, _lang))
    return docs


@pytest.fixture(scope="session")
def corpus() -> list[dict]:
    docs = package_docs(["requests", "click", "yaml", "idna", "certifi", "markupsafe", "jinja2", "attr"])
    docs.append(repo_row("test:unicode", UNICODE_FILES, _lang))
    assert len(docs) >= 5
    return docs


def leading_blocks(docs: list[dict], max_chars: int) -> list[str]:
    """File blocks in corpus order up to `max_chars` characters: a fixed training text, so the
    session tokenizer (and the reference packs made with it) never changes with the sampler."""
    out, total = [], 0
    for doc in docs:
        for f in doc["files"]:
            if total >= max_chars:
                return out
            block = doc["text"][f["start"]: f["end"]][: max_chars - total]
            total += len(block)
            out.append(block)
    return out


@pytest.fixture(scope="session")
def tok_dir(corpus, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tok") / "tokenizer"
    params = tk.TokenizerSettings(vocab_size=800, model_max_length=2048)
    tok, info = tk.train_tokenizer(leading_blocks(corpus, 400_000), params)
    tk.save_tokenizer(tok, d, params, info)
    return d


@pytest.fixture(scope="session")
def make_repo_row():
    """`repo_row` for test modules (conftest is not importable: tests/ has no packages)."""
    return repo_row


@pytest.fixture(scope="session")
def fixed_blocks():
    """`leading_blocks` for test modules."""
    return leading_blocks
