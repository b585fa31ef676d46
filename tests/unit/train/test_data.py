"""The token stream: a deterministic permutation, disjoint ranks, resumable, masks honoured."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dscoder.train import write_token_dir
from dscoder.train.data import IGNORE_INDEX, BatchStream, TokenBlocks, block_indices, eval_batches, permute


@given(n=st.integers(1, 5000), key=st.integers(0, 2**32))
@settings(max_examples=60, deadline=None)
def test_permute_is_a_permutation(n, key):
    out = permute(np.arange(n), n, key)
    assert sorted(out.tolist()) == list(range(n))


def test_permute_depends_on_the_key_and_shuffles():
    a, b = permute(np.arange(1000), 1000, 1), permute(np.arange(1000), 1000, 2)
    assert not np.array_equal(a, b)
    assert np.abs(np.diff(a)).mean() > 100  # neighbours end up far apart


def test_each_epoch_visits_every_block_once_in_a_new_order():
    idx = block_indices(np.arange(300), 100, seed=3, shuffle=True)
    for e in range(3):
        assert sorted(idx[e * 100 : (e + 1) * 100]) == list(range(100))
    assert not np.array_equal(idx[:100], idx[100:200])
    assert np.array_equal(block_indices(np.arange(250), 100, seed=3, shuffle=False), np.arange(250) % 100)


def test_blocks_are_contiguous_slices(tokens_dir):
    blocks = TokenBlocks(tokens_dir, "train", 16)
    assert len(blocks) == 100  # the 5-token tail is never read
    b = blocks.get(np.array([3, 0]))
    assert b["input_ids"].dtype == torch.int64 and b["input_ids"].shape == (2, 16)
    assert b["input_ids"][0].tolist() == list(range(48, 64))
    assert torch.equal(b["labels"], b["input_ids"])
    assert len(TokenBlocks(tokens_dir, "train", 32)) == 50  # any seq_len over the flat stream


def streams(tokens_dir, world, **kw):
    blocks = TokenBlocks(tokens_dir, "train", 16)
    return [BatchStream(blocks, 8, 2, r, world, seed=5, **kw) for r in range(world)]


def rows(batches):
    return [tuple(r) for b in batches for r in b["input_ids"].tolist()]


def test_ranks_are_disjoint_and_cover_the_global_batch(tokens_dir):
    (single,) = streams(tokens_dir, 1)
    pair = streams(tokens_dir, 2)
    assert [s.grad_accum for s in pair] == [2, 2]
    seen = []
    for step in range(30):  # 30 steps x 8 = 2.4 epochs of 100 blocks
        whole = rows(single.next_step())
        parts = [rows(s.next_step()) for s in pair]
        assert sorted(parts[0] + parts[1]) == sorted(whole)  # the same global batch, split
        seen += parts[0] + parts[1]
    assert len(set(seen[:100])) == 100  # the first epoch: no block twice, on any rank
    assert len(set(seen[100:200])) == 100


def test_resume_from_state_dict_gives_the_same_stream(tokens_dir):
    (a,) = streams(tokens_dir, 1)
    for _ in range(7):
        a.next_step()
    state = a.state_dict()
    expected = [rows(a.next_step()) for _ in range(5)]
    (b,) = streams(tokens_dir, 1)
    b.load_state_dict(state)
    assert [rows(b.next_step()) for _ in range(5)] == expected


def test_state_from_another_seed_is_refused(tokens_dir):
    (a,) = streams(tokens_dir, 1)
    blocks = TokenBlocks(tokens_dir, "train", 16)
    other = BatchStream(blocks, 8, 2, 0, 1, seed=6)
    try:
        other.load_state_dict(a.state_dict())
    except ValueError as err:
        assert "seed" in str(err)
    else:
        raise AssertionError("a stream with another seed accepted the state")


def test_loss_mask_turns_labels_off(tmp_path):
    tokens = np.arange(64) % 50
    mask = (np.arange(64) % 4 == 0).astype(np.uint8)
    d = write_token_dir(tmp_path / "t", train=tokens, val=tokens, vocab_size=50, seq_len=16, train_mask=mask, val_mask=mask)
    b = TokenBlocks(d, "train", 16, loss_mask=True).get(np.array([1]))
    assert (b["labels"][0] != IGNORE_INDEX).tolist() == [i % 4 == 0 for i in range(16)]
    assert b["input_ids"][0].tolist() == list(range(16, 32))


def test_eval_batches_split_over_ranks(tokens_dir):
    blocks = TokenBlocks(tokens_dir, "val", 16)
    per_rank = [rows(eval_batches(blocks, 9, 2, r, 2)) for r in range(2)]
    assert len(per_rank[0]) == len(per_rank[1]) == 4  # 9 rounded down to 8 = 2 ranks x 2 micro x 2
    assert not set(per_rank[0]) & set(per_rank[1])


def test_write_token_dir_checks_ids(tmp_path):
    try:
        write_token_dir(tmp_path / "bad", train=np.array([1, 300]), val=np.array([1]), vocab_size=300, seq_len=2)
    except ValueError as err:
        assert "token ids" in str(err)
    else:
        raise AssertionError("an out-of-vocabulary id was written")
    big = write_token_dir(tmp_path / "big", train=np.array([70000]), val=np.array([1]), vocab_size=100000, seq_len=2)
    assert (big / "meta.json").read_text().count("uint32") == 1
