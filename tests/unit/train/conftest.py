import numpy as np
import pytest

from dscoder.train import write_token_dir
from tests.unit.instruct.conftest import general_tok  # noqa: F401  (the mixture tests' other-model tokenizer)


@pytest.fixture
def tokens_dir(tmp_path):
    """100 blocks of 16 distinct tokens (plus a 5-token tail), 10 validation blocks."""
    train = np.arange(100 * 16 + 5)
    val = 1700 + np.arange(10 * 16)
    return write_token_dir(tmp_path / "tokens", train=train, val=val, vocab_size=2000, seq_len=16)
