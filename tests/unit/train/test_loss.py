"""The loss counts exactly the unmasked next-token targets (instruction tuning)."""

import numpy as np
import torch
import torch.nn.functional as F

from dscoder.model import build_config, build_model
from dscoder.train import write_token_dir
from dscoder.train.data import TokenBlocks
from dscoder.train.loop import n_targets, token_loss_sum


def test_masked_loss_is_the_sum_over_answer_tokens(tmp_path):
    tokens = np.arange(32) % 50
    mask = np.zeros(32, dtype=np.uint8)
    mask[5:9] = 1  # an "answer" inside block 0
    d = write_token_dir(tmp_path / "t", train=tokens, val=tokens, vocab_size=50, seq_len=16, train_mask=mask)
    batch = TokenBlocks(d, "train", 16, loss_mask=True).get(np.array([0, 1]))
    assert n_targets([batch]) == 4  # block 1 has no answer tokens; position 0 is never a target

    torch.manual_seed(0)
    model = build_model(build_config("tiny", vocab_size=50, num_hidden_layers=1, hidden_size=32,
                                     intermediate_size=64, num_attention_heads=2, num_key_value_heads=2))
    got = token_loss_sum(model, batch, torch.device("cpu"))
    logits = model(input_ids=batch["input_ids"]).logits
    # position t predicts token t+1: targets 5..8 are predicted from positions 4..7
    want = F.cross_entropy(logits[0, 4:8], batch["input_ids"][0, 5:9], reduction="sum")
    assert torch.allclose(got, want, atol=1e-5)
