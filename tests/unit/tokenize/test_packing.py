"""Packing: split by repository, determinism across processes, exact index, FIM round trip
from the packed tokens, the trainer's file contract."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pyarrow.parquet as pq
import pytest

from dscoder import fim, packing
from dscoder.config import ConfigError
from dscoder.fim import FimParams, Sentinel
from dscoder.io import write_parquet
from dscoder.packing import PackParams
from dscoder.schemas import AUDIT, REPOS
from dscoder.tokenizer import SPECIAL_IDS, load_tokenizer

WORDS = ["def", "return", "self", "x", "值", "ñandú", "    ", "\n", "(", ")", ":", "🙂", "<|EOT|>", "==", "0x1F"]


def _code(rng: random.Random) -> str:
    return "".join(rng.choice(WORDS) + rng.choice([" ", "", "\n"]) for _ in range(rng.randint(0, 120))) + "\n"


@pytest.fixture(scope="module")
def docs(corpus, make_repo_row):
    repo_row = make_repo_row
    rng = random.Random(0)
    out = list(corpus)
    out += [repo_row(f"syn:{i}", {f"m{j}.py": _code(rng) for j in range(rng.randint(1, 4))}) for i in range(40)]
    bad = repo_row("bad:spans", {"a.py": "x = 1\n"})
    bad["files"] = [{"path": "a.py", "language": "python", "start": 5, "end": 2, "header_chars": 0}]
    gap = repo_row("gap:1", {"a.py": "a = 1\n", "b.py": "b = 2\n"})
    gap["text"] = "PRELUDE\n" + gap["text"] + "EPILOGUE"  # characters outside every file block
    gap["files"] = [{**f, "start": f["start"] + 8, "end": f["end"] + 8} for f in gap["files"]]
    out += [bad, gap, repo_row("bad:empty", {})]
    return out


PARAMS = PackParams(seq_len=64, val_fraction=0.2, fim=FimParams(rate=0.5, spm_share=0.5))
MSP = PackParams(seq_len=1, val_fraction=0.2, fim=FimParams(rate=0.7, mode="msp", msp_spans=4, seed=3))


def _pack(docs, out, tok_dir, params, **kw):
    val = packing.val_repo_ids([d["repo_id"] for d in docs], params.val_fraction, params.split_seed)
    return packing.pack_documents(docs, out, tokenizer_dir=tok_dir, params=params, val_repos=val, **kw)


@pytest.fixture(scope="module")
def packed(docs, tok_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("packed")
    _pack(docs, root / "w1", tok_dir, PARAMS, workers=1)
    _pack(docs, root / "w2", tok_dir, PARAMS, workers=2, shard_chars=20_000)
    _pack(docs, root / "msp", tok_dir, MSP, workers=1, shard_chars=5_000)
    return root


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_identical_outputs_for_1_and_2_workers(packed):
    one, two = _files(packed / "w1"), _files(packed / "w2")
    assert set(one) == {"train.bin", "val.bin", "meta.json", "manifest.json", "train.docs.parquet",
                        "val.docs.parquet", "train.segments.parquet", "val.segments.parquet"}
    assert one == two


def test_no_repository_in_both_splits(packed, docs):
    for run in ("w1", "msp"):
        repos = {s: set(pq.read_table(packed / run / f"{s}.docs.parquet")["repo_id"].to_pylist()) for s in ("train", "val")}
        assert repos["train"] and repos["val"] and not repos["train"] & repos["val"]
        assert repos["train"] | repos["val"] == {d["repo_id"] for d in docs} - {"bad:empty"}
    # Forced non-empty on both sides, whatever the fraction gives.
    assert len(packing.val_repo_ids(["a", "b"], 1e-9, 0)) == 1
    assert len(packing.val_repo_ids(["a", "b"], 1 - 1e-9, 0)) == 1
    ids = [f"r{i}" for i in range(2000)]
    val = packing.val_repo_ids(ids, 0.1, 7)
    assert abs(len(val) - 200) < 60 and val == packing.val_repo_ids(reversed(ids), 0.1, 7)


def _load(run_dir, split):
    meta = json.loads((run_dir / "meta.json").read_text())
    tokens = np.fromfile(run_dir / f"{split}.bin", dtype=np.dtype(meta["dtype"]).newbyteorder("<"))
    docs = pq.read_table(run_dir / f"{split}.docs.parquet").to_pylist()
    segs = pq.read_table(run_dir / f"{split}.segments.parquet").to_pylist()
    return meta, tokens, docs, segs


def _undo_from_tokens(ids, tok):
    """Rebuild the rendered layout from token ids (sentinels only come from the packer)."""
    names = {v: k for k, v in SPECIAL_IDS.items()}
    rendered, run = [], []
    for i in ids:
        if int(i) in names:
            if run:
                rendered.append(tok.decode(run))
            rendered.append(Sentinel(names[int(i)]))
            run = []
        else:
            run.append(int(i))
    if run:
        rendered.append(tok.decode(run))
    return fim.undo(rendered)


@pytest.mark.parametrize("run", ["w1", "msp"])
def test_documents_round_trip_from_packed_tokens(packed, docs, tok_dir, run):
    tok = load_tokenizer(tok_dir)
    by_id = {d["repo_id"]: d for d in docs}
    seen_modes = set()
    for split in ("train", "val"):
        meta, tokens, rows, _ = _load(packed / run, split)
        for row in rows:
            if row["token_end"] > tokens.size:  # in the dropped tail
                continue
            ids = tokens[row["token_start"]: row["token_end"]]
            assert ids[0] == SPECIAL_IDS["bos"] and ids[-1] == SPECIAL_IDS["eos"]
            assert _undo_from_tokens(ids[1:-1], tok) == by_id[row["repo_id"]]["text"]
            seen_modes.add(row["fim_mode"])
    assert seen_modes == ({"none", "psm", "spm"} if run == "w1" else {"none", "msp"})


@pytest.mark.parametrize("run", ["w1", "msp"])
def test_segments_are_exact(packed, docs, tok_dir, run):
    tok = load_tokenizer(tok_dir)
    by_id = {d["repo_id"]: d for d in docs}
    checked = outside = 0
    for split in ("train", "val"):
        meta, tokens, rows, segs = _load(packed / run, split)
        covered = {}
        for s in segs:
            doc = by_id[rows[s["doc"]]["repo_id"]]
            covered[s["doc"]] = covered.get(s["doc"], 0) + s["token_end"] - s["token_start"]
            if s["file"] >= 0:
                f = doc["files"][s["file"]]
                assert (s["path"], s["language"]) == (f["path"], f["language"])
                assert f["start"] <= s["char_start"] < s["char_end"] <= f["end"]
            else:
                outside += 1
            if s["token_end"] <= tokens.size:
                assert tok.decode(tokens[s["token_start"]: s["token_end"]].tolist()) == doc["text"][s["char_start"]: s["char_end"]]
                checked += 1
        for d, row in enumerate(rows):  # every token is a segment's or an inserted special
            n_special = {"none": 2, "psm": 5, "spm": 5, "msp": 4 + 2 * MSP.fim.msp_spans}[row["fim_mode"]]
            assert covered.get(d, 0) + n_special == row["token_end"] - row["token_start"]
    assert checked > 50 and outside >= 1  # gap:1 has text outside its file blocks


def test_locate_traces_tokens_to_repo_file_and_role(packed, docs, tok_dir):
    tok = load_tokenizer(tok_dir)
    by_id = {d["repo_id"]: d for d in docs}
    roles, partial = set(), 0
    for split in ("train", "val"):
        index = packing.TokenIndex(packed / "w1", split)
        offsets = np.random.default_rng(0).integers(0, index.tokens.size, 150).tolist()
        for d, repo_id in enumerate(index.docs["repo_id"]):  # every token of the Unicode-heavy doc
            if repo_id == "test:unicode":
                offsets += range(index.docs["token_start"][d], min(index.docs["token_end"][d], index.tokens.size))
        for off in offsets:
            loc = index.locate(off)
            doc = by_id[loc.repo_id]
            assert index.docs["token_start"][loc.doc] <= off < index.docs["token_end"][loc.doc]
            if loc.segment is None:
                assert int(index.tokens[off]) == SPECIAL_IDS[loc.special]
                continue
            roles.add(loc.role)
            src = packing.token_source(index, loc, doc, tok_dir)
            piece = doc["text"][src["char_start"]: src["char_end"]]
            assert loc.char_start <= src["char_start"] < src["char_end"] <= loc.char_end
            decoded = tok.decode([int(index.tokens[off])])
            whole_chars = "\ufffd" not in decoded  # part of a multi-byte character decodes to U+FFFD
            partial += not whole_chars
            if whole_chars:
                assert decoded == piece
            if loc.file >= 0:
                f = doc["files"][loc.file]
                assert loc.path == f["path"] and f["start"] <= src["char_start"] < f["end"]
                token_bytes = doc["text"][f["start"]: f["end"]].encode("utf-8")[src["byte_start"]: src["byte_end"]]
                assert token_bytes == piece.encode("utf-8") if whole_chars else token_bytes in piece.encode("utf-8")
        with pytest.raises(IndexError):
            index.locate(10**12)
    assert {"whole", "prefix", "middle", "suffix"} <= roles
    assert partial > 0  # tokens that split a character were traced too


def test_meta_files_and_trainer_contract(packed, docs, tok_dir):
    from dscoder.tokenizer import tokenizer_hash
    from dscoder.train.data import TokenBlocks

    d = packed / "w1"
    meta = json.loads((d / "meta.json").read_text())
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == 800 and meta["seq_len"] == 64
    assert meta["tokenizer_hash"] == tokenizer_hash(tok_dir)
    assert meta["skipped"] == {"empty_text": 1}
    assert meta["warnings"] == {"files_unattributed:file_span_out_of_order_or_range": 1}
    for split in ("train", "val"):
        s = meta["splits"][split]
        assert (d / f"{split}.bin").stat().st_size == 2 * s["n_tokens"] == 2 * s["n_blocks"] * 64
        assert 0 <= s["tail_tokens_dropped"] < 64
        rows = pq.read_table(d / f"{split}.docs.parquet")
        assert rows.num_rows == s["n_docs"] == meta["fim"]["stats"][split]["docs"]
        assert rows["token_end"].to_pylist()[-1] == s["n_tokens"] + s["tail_tokens_dropped"]
        blocks = TokenBlocks(d, split, 64)
        assert len(blocks) == s["n_blocks"]
        if len(blocks):
            ids = blocks.get(np.array([0]))["input_ids"]
            assert ids[0, 0].item() == SPECIAL_IDS["bos"]
    assert meta["train_tokens"] == meta["splits"]["train"]["n_tokens"]
    manifest = json.loads((d / "manifest.json").read_text())["files"]
    assert set(manifest) == {p.name for p in d.iterdir()} - {"manifest.json"}
    assert manifest["train.bin"] == hashlib.sha256((d / "train.bin").read_bytes()).hexdigest()
    assert packing.token_dtype(65536) == np.uint16 and packing.token_dtype(65537) == np.uint32


def test_pack_repos_from_parquet_matches(packed, docs, tok_dir, tmp_path):
    import pyarrow as pa

    path = tmp_path / "repos.parquet"
    write_parquet(path, pa.Table.from_pylist(docs, schema=REPOS), schema=REPOS)
    report = packing.pack_repos(path, tmp_path / "out", tokenizer_dir=tok_dir, params=PARAMS)
    assert _files(tmp_path / "out") == _files(packed / "w1")
    # What was skipped or lost comes back as AUDIT rows, never silently.
    audit = pa.Table.from_pylist(report["audit"], schema=AUDIT).to_pylist()
    assert sorted((r["repo_id"], r["reason"]) for r in audit) == [("bad:empty", "empty_text"),
                                                                 ("bad:spans", "files_unattributed")]
    assert report["timing"]["tokens_per_s"] > 0


def test_params_from_dict_and_validation():
    p = PackParams.from_dict({"seq_len": 128, "fim": {"rate": 0.25, "mode": "spm"}}, "pack")
    assert p.seq_len == 128 and p.fim.rate == 0.25 and p.fim.mode == "spm"
    with pytest.raises(ConfigError, match="pack.val_fraction"):
        PackParams(val_fraction=2.0).validate()
    with pytest.raises(ConfigError, match="fim.rate"):
        PackParams.from_dict({"fim": {"rate": -1}}, "pack")
