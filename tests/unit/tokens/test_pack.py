"""Packing (dscoder.tokens.pack): no repository in both splits, determinism across processes,
an exact index (read back with dscoder.tokens.index), FIM round trip from the packed tokens,
the trainer's file contract."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from dscoder.tokens import fim, pack
from dscoder.config import ConfigError
from dscoder.tokens.fim import PackFimSettings, Sentinel
from dscoder.io import write_parquet
from dscoder.tokens.index import TokenIndex, token_source
from dscoder.tokens.pack import PackSettings
from dscoder.tokens.split import val_repo_ids
from dscoder.schemas import AUDIT, REPOS
from dscoder.tokens.tokenizer import SPECIAL_IDS, load_tokenizer

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


PARAMS = PackSettings(seq_len=64, val_fraction=0.2, fim=PackFimSettings(rate=0.5, spm_share=0.5, unit="document"))
MSP = PackSettings(seq_len=1, val_fraction=0.2, fim=PackFimSettings(rate=0.7, mode="msp", msp_spans=4, seed=3, unit="document"))
FILE = PackSettings(seq_len=64, val_fraction=0.2, fim=PackFimSettings(rate=0.5, spm_share=0.5, unit="file"))
WINDOW = PackSettings(seq_len=64, val_fraction=0.2, fim=PackFimSettings(rate=0.5, spm_share=0.5, unit="window"))
WINDOW_MSP = PackSettings(seq_len=48, val_fraction=0.2, add_bos=False,
                        fim=PackFimSettings(rate=0.6, mode="msp", msp_spans=2, unit="window"))
RUNS = {"w1": PARAMS, "msp": MSP, "file": FILE, "window": WINDOW, "window_msp": WINDOW_MSP}


def _pack(docs, out, tok_dir, params, **kw):
    val = val_repo_ids([d["repo_id"] for d in docs], params.val_fraction, params.split_seed)
    return pack.pack_documents(docs, out, tokenizer_dir=tok_dir, params=params, val_repos=val, **kw)


@pytest.fixture(scope="module")
def packed(docs, tok_dir, tmp_path_factory):
    """Each run packed with one worker and large batches, and (`<run>.w2`) with two worker
    processes and small batches."""
    root = tmp_path_factory.mktemp("packed")
    for name, params in RUNS.items():
        _pack(docs, root / name, tok_dir, params, workers=1)
        _pack(docs, root / f"{name}.w2", tok_dir, params, workers=2, batch_bytes=3_000 if name != "w1" else 20_000)
    return root


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.mark.parametrize("run", list(RUNS))
def test_identical_outputs_for_any_workers_and_batch_size(packed, run):
    one, two = _files(packed / run), _files(packed / f"{run}.w2")
    assert set(one) == {"train.bin", "val.bin", "meta.json", "manifest.json", "train.docs.parquet",
                        "val.docs.parquet", "train.segments.parquet", "val.segments.parquet"}
    assert one == two


def test_document_unit_reproduces_the_previous_packer(packed):
    """The reference hashes were computed with the packer as it was before FIM units existed
    (document-level FIM only) on this corpus and tokenizer: `unit: document` must give the
    same token files and the same index rows."""
    ref = json.loads((Path(__file__).parent / "assets" / "document_unit_reference.json").read_text())
    old_doc_columns = ["doc", "repo_id", "repo_name", "fim_mode", "n_chars", "token_start", "token_end"]
    for run, key in (("w1", "psm_spm"), ("msp", "msp")):
        for split in ("train", "val"):
            got = hashlib.sha256((packed / run / f"{split}.bin").read_bytes()).hexdigest()
            assert got == ref[key][f"{split}.bin"], (run, split)
            for idx, cols in (("docs", old_doc_columns), ("segments", None)):
                rows = pq.read_table(packed / run / f"{split}.{idx}.parquet", columns=cols).to_pydict()
                assert hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest() == ref[key][f"{split}.{idx}"]


def test_no_repository_in_both_splits(packed, docs):
    for run in RUNS:
        repos = {s: set(pq.read_table(packed / run / f"{s}.docs.parquet")["repo_id"].to_pylist()) for s in ("train", "val")}
        assert repos["train"] and repos["val"] and not repos["train"] & repos["val"]
        assert repos["train"] | repos["val"] == {d["repo_id"] for d in docs} - {"bad:empty"}


def _load(run_dir, split):
    meta = json.loads((run_dir / "meta.json").read_text())
    tokens = np.fromfile(run_dir / f"{split}.bin", dtype=np.dtype(meta["dtype"]).newbyteorder("<"))
    docs = pq.read_table(run_dir / f"{split}.docs.parquet").to_pylist()
    segs = pq.read_table(run_dir / f"{split}.segments.parquet").to_pylist()
    return meta, tokens, docs, segs


def _rendered(ids, tok):
    """The layout as text runs and `Sentinel`s (special ids only come from the packer)."""
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
    return rendered


def _undo_stream(ids, tok, add_bos=True):
    """Document texts of a token stream: every example <fim_begin> .. <eos> undone in place,
    then documents cut at BOS (or at EOS without BOS), remaining EOS dropped."""
    out, group, docs, cur = [], None, [], []
    for x in _rendered(ids, tok):
        if group is not None:
            if x == "eos" and isinstance(x, Sentinel):
                out.append(fim.undo(group))
                group = None
            else:
                group.append(x)
        elif isinstance(x, Sentinel) and x == "fim_begin":
            group = [x]
        else:
            out.append(x)
    for x in out:
        if isinstance(x, Sentinel) and x == ("bos" if add_bos else "eos"):
            docs.append("".join(cur))
            cur = []
        elif not isinstance(x, Sentinel):
            cur.append(x)
    return [*docs[1:], "".join(cur)] if add_bos else docs


@pytest.mark.parametrize("run", list(RUNS))
def test_documents_round_trip_from_packed_tokens(packed, docs, tok_dir, run):
    tok = load_tokenizer(tok_dir)
    by_id = {d["repo_id"]: d for d in docs}
    seen_modes = set()
    add_bos = RUNS[run].add_bos
    for split in ("train", "val"):
        meta, tokens, rows, _ = _load(packed / run, split)
        whole = [r for r in rows if r["token_end"] <= tokens.size]
        texts = _undo_stream(tokens, tok, add_bos)
        assert len(texts) >= len(whole) > 0
        for row, text in zip(whole, texts):
            ids = tokens[row["token_start"]: row["token_end"]]
            assert ids[-1] == SPECIAL_IDS["eos"] and (ids[0] == SPECIAL_IDS["bos"]) == add_bos
            assert text == by_id[row["repo_id"]]["text"]
            seen_modes.add(row["fim_mode"])
    expect = {"w1": {"none", "psm", "spm"}, "msp": {"none", "msp"}, "window_msp": {"none", "msp"}}.get(
        run, {"none", "psm", "spm", "psm+spm"})
    assert seen_modes == expect


@pytest.mark.parametrize("run", list(RUNS))
def test_segments_are_exact(packed, docs, tok_dir, run):
    tok = load_tokenizer(tok_dir)
    by_id = {d["repo_id"]: d for d in docs}
    checked = outside = 0
    for split in ("train", "val"):
        meta, tokens, rows, segs = _load(packed / run, split)
        n_stream = rows[-1]["token_end"]
        covered = np.zeros(n_stream, np.int64)
        starts = [s["token_start"] for s in segs]
        assert starts == sorted(starts)  # the index is in stream order (locate bisects it)
        for s in segs:
            row = rows[s["doc"]]
            doc = by_id[row["repo_id"]]
            assert row["token_start"] <= s["token_start"] < s["token_end"] <= row["token_end"]
            covered[s["token_start"]: s["token_end"]] += 1
            if s["file"] >= 0:
                f = doc["files"][s["file"]]
                assert (s["path"], s["language"]) == (f["path"], f["language"])
                assert f["start"] <= s["char_start"] < s["char_end"] <= f["end"]
            else:
                outside += 1
            if s["token_end"] <= tokens.size:
                assert tok.decode(tokens[s["token_start"]: s["token_end"]].tolist()) == doc["text"][s["char_start"]: s["char_end"]]
                checked += 1
        # every token is one segment's or an inserted special, never both, never neither
        assert covered.max() == 1
        kept = covered[: tokens.size]
        assert np.isin(tokens[kept == 0], list(SPECIAL_IDS.values())).all()
        assert not np.isin(tokens[kept == 1], list(SPECIAL_IDS.values())).any()
        assert [r["token_start"] for r in rows[1:]] == [r["token_end"] for r in rows[:-1]]
    assert checked > 50 and outside >= 1  # gap:1 has text outside its file blocks


@pytest.mark.parametrize("run", ["w1", "file", "window"])
def test_locate_traces_tokens_to_repo_file_and_role(packed, docs, tok_dir, run):
    tok = load_tokenizer(tok_dir)
    by_id = {d["repo_id"]: d for d in docs}
    roles, partial = set(), 0
    for split in ("train", "val"):
        index = TokenIndex(packed / run, split)
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
            src = token_source(index, loc, doc, tok_dir)
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
    from dscoder.tokens.tokenizer import tokenizer_hash
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
        assert rows.num_rows == s["n_docs"] == meta["fim"]["stats"][split]["units"]
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
    assert pack.token_dtype(65536) == np.uint16 and pack.token_dtype(65537) == np.uint32


def _complete_windows(tokens, seq_len):
    """Windows holding <fim_begin>, a hole sentinel, <fim_end> and then EOS, in that order and
    with no BOS/EOS/<fim_begin> between: a plain scan, separate from `fim.complete_examples`."""
    sid = SPECIAL_IDS
    holes = {sid["fim_hole"], *(sid[f"msp_{k}"] for k in range(16))}
    n = 0
    for w in range(tokens.size // seq_len):
        state = 0  # 0: look for begin, 1: saw begin, 2: saw a hole, 3: saw end
        for t in tokens[w * seq_len:(w + 1) * seq_len].tolist():
            if t == sid["fim_begin"]:
                state = 1
            elif state in (1, 2) and t in holes:
                state = 2
            elif state == 2 and t == sid["fim_end"]:
                state = 3
            elif state == 3 and t == sid["eos"]:
                n += 1
                break
            elif t in (sid["bos"], sid["eos"]) or (t == sid["fim_end"] and state != 3):
                state = 0
    return n


@pytest.mark.parametrize("run", list(RUNS))
def test_fim_figures_are_measured_on_the_written_tokens(packed, run):
    meta = json.loads((packed / run / "meta.json").read_text())
    for split in ("train", "val"):
        stats = meta["fim"]["stats"][split]
        tokens = np.fromfile(packed / run / f"{split}.bin", dtype=np.uint16)
        n = _complete_windows(tokens, meta["seq_len"])
        assert stats["windows_with_complete_example"] == n
        assert stats["windows"] == meta["splits"][split]["n_blocks"]
        assert stats["units"] == sum(stats[m] for m in ("none", "psm", "spm", "msp"))
    train = meta["fim"]["stats"]["train"]
    if RUNS[run].fim.unit == "window":
        # every transformed window holds its example whole; about `rate` of all windows
        assert train["examples_fit_share"] == 1.0 and train["units"] == train["windows"]
        assert train["windows_with_complete_example"] == train["units"] - train["none"]
        assert abs(train["complete_window_share"] - RUNS[run].fim.rate) < 0.1
    else:
        assert train["complete_window_share"] < 0.1  # whole files or documents rarely fit 64 tokens
        assert 0.3 < train["units_transformed_share"] < 0.8
    if run == "file":
        rows = pq.read_table(packed / run / "train.docs.parquet").to_pylist()
        assert train["units"] > len(rows)  # files, not documents, are the units
        assert sum(r["fim_units"] for r in rows) == train["units"] - train["none"]


def test_pack_repos_from_parquet_matches(packed, docs, tok_dir, tmp_path):
    import pyarrow as pa

    path = tmp_path / "repos.parquet"
    write_parquet(path, pa.Table.from_pylist(docs, schema=REPOS), schema=REPOS)
    seen = []
    report = pack.pack_repos(path, tmp_path / "out", tokenizer_dir=tok_dir, params=PARAMS, batch_bytes=2_000,
                                on_progress=lambda done, total: seen.append((done, total)))
    assert _files(tmp_path / "out") == _files(packed / "w1")
    # progress: once per written batch, increasing, ending at every document (skipped ones too)
    assert len(seen) > 1 and [d for d, _ in seen] == sorted({d for d, _ in seen})
    assert seen[-1] == (len(docs), len(docs))
    # What was skipped or lost comes back as AUDIT rows, never silently.
    audit = pa.Table.from_pylist(report["audit"], schema=AUDIT).to_pylist()
    assert sorted((r["repo_id"], r["reason"]) for r in audit) == [("bad:empty", "empty_text"),
                                                                 ("bad:spans", "files_unattributed")]
    assert report["timing"]["tokens_per_s"] > 0


def test_params_from_dict_and_validation():
    p = PackSettings.from_dict({"seq_len": 128, "fim": {"rate": 0.25, "mode": "spm"}}, "pack")
    assert p.seq_len == 128 and p.fim.rate == 0.25 and p.fim.mode == "spm"
    with pytest.raises(ConfigError, match="pack.val_fraction"):
        PackSettings(val_fraction=2.0).validate()
    with pytest.raises(ConfigError, match="fim.rate"):
        PackSettings.from_dict({"fim": {"rate": -1}}, "pack")


def test_repository_in_parts_stays_in_one_split_and_traces_to_its_part(docs, tok_dir, tmp_path, make_repo_row):
    """A repository split into several documents (consecutive rows with one repo_id) is one
    repository for the split; each part gets its own FIM draws and traces to its own row."""
    tok = load_tokenizer(tok_dir)
    import pyarrow as pa

    big = [make_repo_row("giant:1", {f"part{k}/m{j}.py": f"x_{k}_{j} = {j}\n" * 40 for j in range(6)})
           for k in range(3)]
    for k, row in enumerate(big):
        row["part"] = k  # as repo_docs numbers a split repository's documents
    rows = [*docs[:6], *big, *docs[6:12]]
    path = tmp_path / "repos.parquet"
    write_parquet(path, pa.Table.from_pylist(rows, schema=REPOS), schema=REPOS)
    params = PackSettings(seq_len=32, val_fraction=0.3, fim=PackFimSettings(rate=0.5, unit="file"))
    pack.pack_repos(path, tmp_path / "small", tokenizer_dir=tok_dir, params=params, batch_bytes=1_500)
    pack.pack_repos(path, tmp_path / "large", tokenizer_dir=tok_dir, params=params, workers=2)
    assert _files(tmp_path / "small") == _files(tmp_path / "large")
    found = []
    for split in ("train", "val"):
        index = TokenIndex(tmp_path / "small", split)
        for d, (repo_id, part) in enumerate(zip(index.docs["repo_id"], index.docs["part"])):
            if repo_id != "giant:1":
                continue
            found.append((split, part))
            off = next(o for o in range(index.docs["token_start"][d], index.docs["token_end"][d])
                       if index.locate(o).segment is not None and o < index.tokens.size)
            loc = index.locate(off)
            assert loc.part == part
            src = token_source(index, loc, big[part], tok_dir)
            seg_ids = index.tokens[off - loc.token_in_segment: index.segments["token_end"][loc.segment]].tolist()
            seg_text = tok.decode(seg_ids)
            assert seg_text == big[part]["text"][loc.char_start: loc.char_end]
            assert seg_text != big[(part + 1) % 3]["text"][loc.char_start: loc.char_end]  # this part's bytes
            assert tok.decode([int(index.tokens[off])]) == big[part]["text"][src["char_start"]: src["char_end"]]
    assert sorted(p for _, p in found) == [0, 1, 2] and len({s for s, _ in found}) == 1
    # parts draw their own FIM choices (keys differ), though their texts have the same shape
    assert len({pack.doc_key("giant:1", k) for k in range(3)}) == 3


@pytest.mark.parametrize("workers,batch_bytes", [(1, 700), (2, 5_000)])
def test_pack_repos_table_batches_match_for_any_batch_size(packed, docs, tok_dir, tmp_path, workers, batch_bytes):
    """The stage's path (Arrow batches serialized to the workers, rows made there) writes what
    the dict path writes, window unit included, whatever the batches."""
    import pyarrow as pa

    path = tmp_path / "repos.parquet"
    write_parquet(path, pa.Table.from_pylist(docs, schema=REPOS), schema=REPOS)
    pack.pack_repos(path, tmp_path / "out", tokenizer_dir=tok_dir, params=WINDOW, workers=workers,
                    batch_bytes=batch_bytes)
    assert _files(tmp_path / "out") == _files(packed / "window")


@pytest.mark.parametrize("batch_bytes", [1, 700, 5_000, 10**9])
def test_table_batches_follow_the_dict_rule(docs, tmp_path, batch_bytes):
    """`_table_batches` cuts the rows where `_batches` does, with the same splits and parts."""
    import pyarrow as pa

    path = tmp_path / "repos.parquet"
    write_parquet(path, pa.Table.from_pylist(docs, schema=REPOS), schema=REPOS)
    val = val_repo_ids([d["repo_id"] for d in docs], 0.2, 0)
    from dscoder.data.stream import read_repos

    want = [([(d["repo_id"], d["part"]) for d in b], s) for b, s in pack._batches(read_repos(path), val, batch_bytes)]
    got = []
    for ipc, splits, parts in pack._table_batches(path, val, batch_bytes, read_bytes=3_000):
        rows = pa.ipc.open_stream(ipc).read_all().column("repo_id").to_pylist()
        got.append((list(zip(rows, parts)), splits))
    assert got == want and len(want) > (1 if batch_bytes < 10**9 else 0)


class _Text(str):
    """A str that can be watched with a weak reference."""


def test_batches_keep_no_reference_to_a_yielded_batch(make_repo_row):
    """Once the consumer drops a batch (after submitting it), its documents are freed: the
    generator holds only the document that opens the next batch."""
    import gc
    import weakref

    rows = [make_repo_row(f"r:{i}", {"a.py": "x = 1\n" * 50}) for i in range(6)]
    for r in rows:
        r["text"] = _Text(r["text"])
    refs = [weakref.ref(r["text"]) for r in rows]
    n = len(rows[0]["text"])

    def stream():
        while rows:
            yield rows.pop(0)

    it = pack._batches(stream(), frozenset(), 2 * n)
    batch, splits = next(it)
    assert len(batch) == 2
    del batch, splits
    gc.collect()
    assert [r() is None for r in refs] == [True, True, False, False, False, False]


def test_window_fim_holds_less_than_a_window_between_chunks(tok_dir):
    """`WindowFim.feed` frees the chunk it was given and keeps only the pending tokens (less
    than one window), not the arrays of the whole last chunk."""
    import gc
    import weakref

    from dscoder.tokens.fim_windows import WindowFim
    from dscoder.tokens.tokenizer import cached_tokenizer

    rng = random.Random(1)
    sid = cached_tokenizer(str(tok_dir))[1]
    fw = WindowFim("train", WINDOW.seq_len, WINDOW.fim, sid, pack.SplitChunk)
    for i in range(3):
        text = "".join(_code(rng) for _ in range(30))
        doc = {"repo_id": f"w:{i}", "repo_name": None, "text": text,
               "files": [{"path": "a.py", "language": "python", "start": 0, "end": len(text), "header_chars": 0}]}
        r = pack.encode_shard([doc], ["train"], tok_dir, WINDOW)
        ids = weakref.ref(r.chunks["train"].ids)
        assert r.chunks["train"].ids.size > 4 * WINDOW.seq_len
        out = list(fw.feed(r.chunks.pop("train")))
        gc.collect()
        assert ids() is None, "the fed chunk is still referenced"
        assert fw.ids.size - fw.off < WINDOW.seq_len and fw.ids.size == fw.chars.size == fw.seg.size < WINDOW.seq_len
        assert sum(c.ids.size for c in out) % WINDOW.seq_len == 0
