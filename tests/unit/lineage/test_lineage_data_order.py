"""`block_at` names exactly the block the trainer's BatchStream reads at (step, row)."""

from __future__ import annotations

import numpy as np
import pytest

from dscoder.lineage.data_order import DataOrder, block_at
from dscoder.train.data import BatchStream, TokenBlocks, write_token_dir


@pytest.mark.parametrize("world,micro,shuffle", [(1, 2, True), (2, 1, True), (2, 2, False)])
def test_block_at_matches_the_batch_stream(tmp_path, world, micro, shuffle):
    seq_len, n_blocks, gbs = 4, 13, 4
    tokens = np.repeat(np.arange(n_blocks), seq_len)  # block b holds the id b
    d = write_token_dir(tmp_path / "tok", train=tokens, val=tokens[:seq_len], vocab_size=64, seq_len=seq_len)
    order = DataOrder(global_batch_size=gbs, micro_batch_size=micro, seed=7, seq_len=seq_len, shuffle=shuffle,
                      world_size=world)
    streams = [BatchStream(TokenBlocks(d, "train", seq_len), gbs, micro, r, world, 7, shuffle) for r in range(world)]
    for step in range(1, 9):  # crosses epoch boundaries (13 blocks, 4 per step)
        read = []
        for s in streams:
            for mb in s.next_step():
                read.extend(int(x) for x in mb["input_ids"][:, 0])
        for row in range(gbs):
            got = block_at(step, row, order, n_blocks)
            assert got["block"] == read[row], (step, row)
            assert got["rank"] == row // (gbs // world)


def test_bad_arguments_name_the_parameter():
    order = DataOrder(global_batch_size=4, micro_batch_size=2, seed=0, seq_len=8)
    with pytest.raises(ValueError, match="step"):
        block_at(0, 0, order, 10)
    with pytest.raises(ValueError, match="row"):
        block_at(1, 4, order, 10)
    with pytest.raises(ValueError, match="global_batch_size"):
        DataOrder(global_batch_size=5, micro_batch_size=2, seed=0, seq_len=8).validate()


def test_absent_settings_are_the_trainers_defaults(tmp_path):
    """A train_config.json that leaves out the seed and shuffle was trained with the trainer's
    own defaults: the order read from it names the blocks a BatchStream with those reads."""
    from dscoder.train.config import TrainSettings

    trainer = TrainSettings()
    seq_len, n_blocks, gbs = 4, 11, 4
    tokens = np.repeat(np.arange(n_blocks), seq_len)
    d = write_token_dir(tmp_path / "tok", train=tokens, val=tokens[:seq_len], vocab_size=64, seq_len=seq_len)
    order = DataOrder.from_train_config({"global_batch_size": gbs, "micro_batch_size": 2}, {"seq_len": seq_len})
    assert (order.seed, order.shuffle, order.world_size) == (trainer.seed, trainer.shuffle, 1)
    stream = BatchStream(TokenBlocks(d, "train", seq_len), gbs, 2, 0, 1, trainer.seed, trainer.shuffle)
    for step in range(1, 5):
        read = [int(x) for mb in stream.next_step() for x in mb["input_ids"][:, 0]]
        assert [block_at(step, row, order, n_blocks)["block"] for row in range(gbs)] == read


def test_a_mistyped_train_config_is_named():
    from dscoder.config import ConfigError

    with pytest.raises(ConfigError, match=r"^train_config\.shuffle: expected bool, got 'yes'"):
        DataOrder.from_train_config({"global_batch_size": 4, "shuffle": "yes"}, {"seq_len": 8})
