from __future__ import annotations

import numpy as np
import pytest

from dscoder.instruct.instruct_pack import InstructPackSettings, pack_instructions
from dscoder.instruct.records import Example
from dscoder.instruct.template import EOT
from dscoder.train.data import IGNORE_INDEX, TokenBlocks


def _ex(i: int, answer_len: int = 1) -> Example:
    return Example(id=f"e{i}", source="t", messages=(
        {"role": "user", "content": f"Question {i}?"},
        {"role": "assistant", "content": f"answer_{i} " * answer_len}))


@pytest.mark.parametrize("mode", ["pack", "concat"])
def test_packed_tokens_and_masks_feed_the_trainer(tmp_path, dscoder_tok, mode):
    train = [_ex(i) for i in range(12)] + [_ex(99, answer_len=400)]  # the last one cannot fit
    meta = pack_instructions(train, [_ex(100 + i) for i in range(4)], dscoder_tok, tmp_path / "tok",
                             InstructPackSettings(seq_len=512, mode=mode))
    assert meta["splits"]["train"]["too_long"] == 1 and [a["reason"] for a in meta["audit"]] == ["too_long"]
    blocks = TokenBlocks(tmp_path / "tok", "train", 512, loss_mask=True)
    assert len(blocks) == meta["splits"]["train"]["blocks"] >= 1
    batch = blocks.get(np.arange(len(blocks)))
    ids, labels = batch["input_ids"].numpy(), batch["labels"].numpy()
    eot_id = dscoder_tok.convert_tokens_to_ids(EOT)
    trained = labels != IGNORE_INDEX
    assert (ids[trained] == labels[trained]).all()
    assert int(trained.sum()) == meta["splits"]["train"]["loss_tokens"]
    text = dscoder_tok.decode(ids[trained].tolist())
    if mode == "pack":
        assert (ids[:, 0] == dscoder_tok.bos_token_id).all()  # every block begins with an example
        assert text == "".join(f"answer_{i} \n{EOT}" for i in range(12))
        assert (ids[~trained] != eot_id).all()
    else:
        assert text in "".join(f"answer_{i} \n{EOT}" for i in range(12))


def test_pack_is_deterministic(tmp_path, dscoder_tok):
    train = [_ex(i) for i in range(8)]
    for d in ("a", "b"):
        pack_instructions(train, train[:2], dscoder_tok, tmp_path / d, InstructPackSettings(seq_len=512))
    for name in ("train.bin", "train.mask.bin", "val.bin", "val.mask.bin", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
