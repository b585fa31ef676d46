"""Which token block the trainer read at a given (step, row): the inverse of the data order.

The trainer (dscoder.train.loop + dscoder.train.data.BatchStream) takes, at optimizer step s
(0-based inside the loop, logged as s+1), the global sequence positions [s*G, (s+1)*G) of the
global batch size G; rank r reads the r-th slice of G/world, split into micro batches. Global
position p reads block `block_indices(p)`: a seeded Feistel permutation per epoch
(p // n_blocks). Block b is tokens [b*seq_len, (b+1)*seq_len) of train.bin.

Steps here are counted as the trainer logs them (1 = the first optimizer update), rows are
indices into the global batch (0..G-1), so `--step 37 --row 5` names the sequence that fed
the loss logged at step 37.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Mapping

from dscoder.train.config import DEFAULT_WORLD_SIZE, TrainSettings

TRAINER = TrainSettings()
"""The trainer's defaults: a setting absent from a train_config.json had this value."""


@dataclass(frozen=True)
class DataOrder:
    """The settings that fix the trainer's data order (from its train_config.json); the
    defaults are the trainer's own (`TrainSettings`), so the two cannot drift apart."""

    FROM_TRAINER: ClassVar[tuple[str, ...]] = ("global_batch_size", "micro_batch_size", "seed", "seq_len", "shuffle")

    global_batch_size: int
    """Sequences per optimizer step over all ranks."""
    micro_batch_size: int
    """Sequences per forward pass per rank."""
    seed: int
    """The trainer's seed (keys the block permutation)."""
    seq_len: int
    """Tokens per block (train_config seq_len, or meta.json's when that is 0)."""
    shuffle: bool = TRAINER.shuffle
    """Whether blocks are visited in a seeded order or in file order."""
    world_size: int = DEFAULT_WORLD_SIZE
    """Ranks of the run; only decides which rank / micro batch held the row."""

    def validate(self) -> None:
        for name in ("global_batch_size", "micro_batch_size", "seq_len", "world_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.global_batch_size % self.world_size or (self.global_batch_size // self.world_size) % self.micro_batch_size:
            raise ValueError(f"global_batch_size: {self.global_batch_size} is not divisible by micro_batch_size "
                             f"{self.micro_batch_size} x world_size {self.world_size}")

    @classmethod
    def from_train_config(cls, cfg: Mapping[str, Any], meta: Mapping[str, Any],
                          world_size: int = DEFAULT_WORLD_SIZE) -> "DataOrder":
        """From a checkpoint's train_config.json (read as the trainer reads it: absent keys take
        the trainer's defaults) and the token directory's meta.json."""
        train = TrainSettings.from_dict({k: cfg[k] for k in cls.FROM_TRAINER if k in cfg}, "train_config",
                                        validate=False)
        order = cls(**{k: getattr(train, k) for k in cls.FROM_TRAINER if k != "seq_len"},
                    seq_len=int(train.seq_len or meta["seq_len"]), world_size=int(world_size))
        order.validate()
        return order


def position_of(step: int, row: int, order: DataOrder) -> int:
    """Global sequence position of `row` (0..G-1) at logged step `step` (>= 1)."""
    if step < 1:
        raise ValueError(f"step: steps count from 1 (as logged), got {step}")
    if not 0 <= row < order.global_batch_size:
        raise ValueError(f"row: must be in [0, {order.global_batch_size}), got {row}")
    return (step - 1) * order.global_batch_size + row


def block_at(step: int, row: int, order: DataOrder, n_blocks: int) -> dict[str, int]:
    """The training block read at (step, row), and where it sat: epoch, rank, micro batch and
    row inside it. Pure: the same settings give the same block as the trainer's BatchStream."""
    order.validate()
    if n_blocks < 1:
        raise ValueError(f"n_blocks: the train split has no whole block ({n_blocks})")
    from dscoder.train.data import block_indices  # lazy: pulls in torch

    pos = position_of(step, row, order)
    block = int(block_indices([pos], n_blocks, seed=order.seed, shuffle=order.shuffle)[0])
    per_rank = order.global_batch_size // order.world_size
    r, within = divmod(row, per_rank)
    micro, micro_row = divmod(within, order.micro_batch_size)
    return {"step": step, "row": row, "position": pos, "epoch": pos // n_blocks, "block": block,
            "token_start": block * order.seq_len, "token_end": (block + 1) * order.seq_len,
            "rank": r, "micro_batch": micro, "micro_row": micro_row}


def describe(order: DataOrder) -> dict[str, Any]:
    return asdict(order)
