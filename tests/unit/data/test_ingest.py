"""Ingest keeps every usable file and accounts for every other one with a reason."""

from __future__ import annotations

import hashlib

import pytest

from dscoder.config import ConfigError
from dscoder.data.ingest import IngestSettings, ingest_sources


@pytest.fixture
def messy_repo(tmp_path):
    r = tmp_path / "messy"
    (r / "src").mkdir(parents=True)
    (r / "src" / "ok.py").write_text("def f():\n    return 'héllo'\n", encoding="utf-8")
    (r / "src" / "empty.py").write_text("")
    (r / "blob.c").write_bytes(b"int x;\0\0\0binary")
    (r / "latin1.py").write_bytes("s = 'caf\xe9'\n".encode("latin-1"))
    (r / "huge.js").write_text("x" * 5000)
    (r / "image.png").write_bytes(b"\x89PNG")
    (r / "notes.md").write_text("# Notes\n")
    return r


def test_every_entry_is_kept_or_audited(messy_repo, tmp_path):
    s = IngestSettings(sources=[{"type": "dir", "path": str(messy_repo)}], max_file_bytes=4096,
                       cache_dir=str(tmp_path / "c"))
    res = ingest_sources(s.sources, s)
    kept = {f["path"]: f for f in res.files}
    assert sorted(kept) == ["notes.md", "src/empty.py", "src/ok.py"]
    reasons = {a["path"]: a["reason"] for a in res.audit}
    assert reasons == {"blob.c": "binary", "latin1.py": "not_utf8", "huge.js": "too_large", "image.png": "unknown_language"}
    assert len(kept) + len(reasons) == 7  # nothing lost
    ok = kept["src/ok.py"]
    raw = ok["content"].encode()
    assert ok["language"] == "python" and ok["size"] == len(raw) and ok["sha256"] == hashlib.sha256(raw).hexdigest()
    assert res.counts[("dropped", "binary")] == 1 and res.counts[("repos",)] == 1


def test_empty_repo_and_missing_source_are_counted_not_fatal(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    good = tmp_path / "good"
    good.mkdir()
    (good / "a.go").write_text("package a\n")
    specs = [{"type": "dir", "path": str(empty)}, {"type": "dir", "path": str(tmp_path / "gone")},
             {"type": "dir", "path": str(good)}]
    s = IngestSettings(sources=specs, cache_dir=str(tmp_path / "c"))
    res = ingest_sources(specs, s)
    assert [f["path"] for f in res.files] == ["a.go"]
    assert res.counts[("dropped", "empty_repo")] == 1
    assert res.counts[("dropped", "missing_source")] == 1
    assert any(a["reason"] == "missing_source" and "gone" in a["detail"] for a in res.audit)


def test_ingest_is_deterministic(messy_repo, tmp_path):
    s = IngestSettings(sources=[{"type": "dir", "path": str(messy_repo)}], cache_dir=str(tmp_path / "c"))
    assert ingest_sources(s.sources, s).files == ingest_sources(s.sources, s).files


@pytest.mark.parametrize("section, name", [
    ({"sources": []}, "ingest.sources"),
    ({"sources": [{"type": "dir", "path": "x"}], "max_file_bytes": 0}, "ingest.max_file_bytes"),
    ({"sources": [{"type": "dir", "path": "x"}], "max_file_bytes": "big"}, "ingest.max_file_bytes"),
    ({"sources": [{"type": "dir", "path": "x"}], "max_bytes": 1}, "ingest.max_bytes"),
    ({"sources": [{"type": "tarball", "path": "x"}]}, "ingest.sources[0].type"),
])
def test_bad_params_fail_fast_naming_the_parameter(section, name):
    with pytest.raises(ConfigError if "type" not in name else ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
        IngestSettings.from_dict(section, "ingest")
