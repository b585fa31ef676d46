"""Tracing every token of a tiny packed corpus lands on the exact source bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dscoder.tokens import tokenizer as tk
from dscoder.tokens.fim import PackFimSettings
from dscoder.lineage.index import Lineage
from dscoder.paths import Paths
from dscoder.lineage.data_order import DataOrder
from dscoder.lineage.trace import Tracer
from dscoder.tokens.pack import PackSettings, pack_documents
from dscoder.tokens.split import val_repo_ids
from dscoder.schemas import REPOS

SOURCES = {
    "alpha": {"pkg/core.py": "from .util import helper\n\n\ndef run(x):\n    return helper(x) + 1\n",
              "pkg/util.py": "def helper(x):\n    \"\"\"Double x — ünïcödé, 日本語.\"\"\"\n    return 2 * x\n",
              "README.md": "# alpha\n\nEmoji 👩‍💻🚀 and e\u0301 accents.\n"},
    "beta": {"src/main.c": '#include "util.h"\n\nint main(void) { return util(); }\n',
             "src/util.c": "int util(void) {\n    /* Ελληνικά */\n    return 0;\n}\n"},
    "gamma": {f"m{i}.py": "".join(f"def f{j}(a, b):\n    return a * {j} + b  # ça\n" for j in range(i + 3))
              for i in range(4)},
    "delta": {"x.js": "const s = 'π ≈ 3.14159';\nmodule.exports = s;\n", "y.yaml": "key: välue\nlist: [1, 2]\n"},
}
LANG = {"py": "python", "md": "markdown", "c": "c", "js": "javascript", "yaml": "yaml"}
ROOT = Path(__file__).resolve().parents[3]
# the project's paths, every one moved under moved/: lineage and trace must follow params.yaml
MOVED = {k: f"moved/{v}" for k, v in yaml.safe_load((ROOT / "params.yaml").read_text())["paths"].items()}
P = Paths.from_params({"paths": MOVED})


def _bytes_to_unicode() -> dict[str, int]:
    """GPT-2's byte ↔ printable-character table (the byte-level BPE's alphabet), inverted."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("proj")
    rows = []
    for repo, files in SOURCES.items():
        text, spans = "", []
        for path, content in files.items():
            (root / "corpus" / repo / path).parent.mkdir(parents=True, exist_ok=True)
            (root / "corpus" / repo / path).write_bytes(content.encode("utf-8"))
            header = f"# {path}\n"
            start = len(text)
            text += header + content + ("\n" if path.endswith(".md") else "")  # a separator after a block
            spans.append({"path": path, "language": LANG[path.rsplit(".", 1)[1]], "start": start,
                          "end": start + len(header) + len(content), "header_chars": len(header)})
        rows.append({"repo_id": f"id-{repo}", "repo_name": repo, "source": "test", "text": text, "files": spans,
                     "languages": sorted({s["language"] for s in spans}), "n_files": len(spans),
                     "edges_found": 0, "edges_resolved": 0, "cycles_broken": 0})
    (root / "params.yaml").write_text(yaml.safe_dump({"paths": MOVED}))
    (root / P.clean_repos).parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=REPOS), root / P.clean_repos)
    tok_dir = root / P.tokenizer
    params = tk.TokenizerSettings(vocab_size=400, model_max_length=2048, sample_bytes=100_000)
    tok, info = tk.train_tokenizer((r["text"] for r in rows), params)
    tk.save_tokenizer(tok, tok_dir, params, info)
    pack = PackSettings(seq_len=16, val_fraction=0.3, fim=PackFimSettings(rate=0.6, mode="psm", spm_share=0.5, seed=3))
    val = val_repo_ids([r["repo_id"] for r in rows], pack.val_fraction, pack.split_seed)
    pack_documents(rows, root / P.tokens, tokenizer_dir=tok_dir, params=pack, val_repos=val)
    return root


def test_every_token_lands_on_its_source_bytes(project):
    tracer = Tracer(project)
    tok = tk.load_tokenizer(project / P.tokenizer)
    inv = _bytes_to_unicode()
    special = set(tk.special_token_ids(tok).values())
    covered: dict[tuple[str, str], set[int]] = {}
    checked = 0
    seen_roles = set()
    for split in ("train", "val"):
        idx = tracer.index(split)
        for off in range(idx.tokens.size):
            t = tracer.token(split, off)
            tid = int(idx.tokens[off])
            if t["special"]:
                assert tid in special
                continue
            piece = bytes(inv[c] for c in tok.id_to_token(tid))
            if t["path"] is None:
                continue  # separator text outside every file block
            src = (project / "corpus" / t["repo_name"] / t["path"]).read_bytes()
            doc = tracer.doc(t["repo_id"])
            span = next(f for f in doc["files"] if f["path"] == t["path"])
            block = doc["text"][span["start"]: span["end"]].encode("utf-8")
            assert block[t["block_byte_start"]: t["block_byte_end"]] == piece
            if not t["in_header"]:
                assert src[t["byte_start"]: t["byte_end"]] == piece, (split, off, t)
            covered.setdefault((t["repo_name"], t["path"]), set()).update(range(t["byte_start"], t["byte_end"]))
            seen_roles.add(t["role"])
            checked += 1
    assert checked > 500 and {"whole", "prefix", "middle", "suffix"} <= seen_roles
    # Round trip on every document: the tokens cover every byte of every file (except files
    # reaching into a split's dropped tail).
    tails = {s: tracer.index(s).tokens.size for s in ("train", "val")}
    complete = 0
    for split in ("train", "val"):
        seg = tracer.index(split).segments
        cut = {(seg["doc"][i], seg["path"][i]) for i in range(len(seg["doc"])) if seg["token_end"][i] > tails[split]}
        docs = tracer.index(split).docs
        for i in range(len(seg["doc"])):
            d, path = seg["doc"][i], seg["path"][i]
            if path is None or (d, path) in cut:
                continue
            repo = docs["repo_name"][d]
            size = len((project / "corpus" / repo / path).read_bytes())
            assert covered[(repo, path)] == set(range(size)), (repo, path)
            complete += 1
    assert complete >= 8


def test_step_row_block_runs_are_contiguous_and_name_their_repo(project):
    tracer = Tracer(project)
    n = tracer.index("train").tokens.size
    order = DataOrder(global_batch_size=4, micro_batch_size=2, seed=5, seq_len=16, world_size=2)
    for step, row in ((1, 0), (2, 3), (5, 1)):
        res = tracer.step(step, row, order)
        assert res["token_end"] <= n and res["token_end"] - res["token_start"] == 16
        assert res["special_tokens"] + sum(r["token_end"] - r["token_start"] for r in res["runs"]) == 16
        for a, b in zip(res["runs"], res["runs"][1:]):
            assert a["token_end"] <= b["token_start"]
        for r in res["runs"]:
            assert r["repo_name"] in SOURCES and r["path"] in SOURCES[r["repo_name"]]


def test_lineage_finds_token_spans_of_a_file(project):
    lin = Lineage.at(project)
    spans = lin.token_spans("id-gamma", "m0.py")
    assert spans and all(s["path"] == "m0.py" for s in spans)
    meta = json.loads((project / P.tokens / "meta.json").read_text())
    assert {s["split"] for s in spans} <= {"train", "val"} and meta["seq_len"] == 16
    assert np.all(np.diff([s["token_start"] for s in spans]) > 0)
