"""Memory-mapped token blocks and a deterministic, resumable, rank-disjoint batch stream.

A token directory holds flat token streams `train.bin` / `val.bin` (uint16 when the vocabulary
fits, else uint32), `meta.json` ({dtype, vocab_size, seq_len, ...}) and, for instruction
tuning, optional `train.mask.bin` / `val.mask.bin`: one uint8 per token, 1 where the token is
a training target. Block i of a split is tokens[i*seq_len:(i+1)*seq_len] (the paper packs
documents; Sec. 3.1), the tail that does not fill a block is never read.

The stream is a pure function of (seed, global sequence position): optimizer step s takes
positions [s*G, (s+1)*G) of the global batch size G, rank r the r-th slice of those, so ranks
never overlap and resuming needs only the number of sequences consumed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dscoder.io import atomic_path, write_json
from dscoder.train.resume import file_manifest

IGNORE_INDEX = -100  # torch cross_entropy's default ignore_index: no loss at this target


def read_meta(tokens_dir: str | os.PathLike) -> dict[str, Any]:
    """meta.json of a token directory, checked for the fields the trainer needs."""
    meta = json.loads((Path(tokens_dir) / "meta.json").read_text())
    for key in ("dtype", "vocab_size"):
        if key not in meta:
            raise ValueError(f"{tokens_dir}/meta.json lacks {key!r}")
    if meta["dtype"] not in ("uint16", "uint32"):
        raise ValueError(f"{tokens_dir}/meta.json dtype {meta['dtype']!r} is not uint16 or uint32")
    return meta


def write_token_dir(
    path: str | os.PathLike,
    *,
    train: np.ndarray,
    val: np.ndarray,
    vocab_size: int,
    seq_len: int,
    train_mask: np.ndarray | None = None,
    val_mask: np.ndarray | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> Path:
    """Write a token directory in the layout above (for tests, benches and small stages),
    then `manifest.json` (the sha256 of every file) last."""
    dtype = np.uint16 if vocab_size <= 1 << 16 else np.uint32
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arrays = {"train.bin": (train, dtype), "val.bin": (val, dtype)}
    if train_mask is not None:
        arrays["train.mask.bin"] = (train_mask, np.uint8)
    if val_mask is not None:
        arrays["val.mask.bin"] = (val_mask, np.uint8)
    for name, (arr, dt) in arrays.items():
        arr = np.asarray(arr)
        if dt is not np.uint8 and arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
            raise ValueError(f"{name}: token ids outside [0, {vocab_size})")
        with atomic_path(path / name) as tmp:
            arr.astype(dt).tofile(tmp)
    meta = {
        "dtype": np.dtype(dtype).name,
        "vocab_size": int(vocab_size),
        "seq_len": int(seq_len),
        "train_tokens": int(np.asarray(train).size),
        "val_tokens": int(np.asarray(val).size),
        **(extra_meta or {}),
    }
    write_json(path / "meta.json", meta)
    write_json(path / "manifest.json", file_manifest(path))  # last: the content's identity
    return path


class TokenBlocks:
    """Read-only memory map of one split, cut into blocks of `seq_len` tokens."""

    def __init__(self, tokens_dir: str | os.PathLike, split: str, seq_len: int, *, loss_mask: bool = False):
        tokens_dir = Path(tokens_dir)
        meta = read_meta(tokens_dir)
        self.seq_len = seq_len
        self.vocab_size = int(meta["vocab_size"])
        self.tokens = np.memmap(tokens_dir / f"{split}.bin", dtype=np.dtype(meta["dtype"]), mode="r")
        self.mask = None
        if loss_mask:
            mask_path = tokens_dir / f"{split}.mask.bin"
            if not mask_path.is_file():
                raise ValueError(f"loss_mask is set but {mask_path} is missing")
            self.mask = np.memmap(mask_path, dtype=np.uint8, mode="r")
            if self.mask.size != self.tokens.size:
                raise ValueError(f"{mask_path} has {self.mask.size} bytes for {self.tokens.size} tokens")
        self.num_blocks = self.tokens.size // seq_len

    def __len__(self) -> int:
        return self.num_blocks

    def get(self, blocks: np.ndarray) -> dict[str, torch.Tensor]:
        """`input_ids` and `labels` (the same tokens, IGNORE_INDEX where the mask is 0), shape
        [len(blocks), seq_len]. The model shifts: position t predicts labels[t+1]."""
        starts = np.asarray(blocks, dtype=np.int64) * self.seq_len
        rows = starts[:, None] + np.arange(self.seq_len, dtype=np.int64)[None, :]
        ids = torch.from_numpy(self.tokens[rows].astype(np.int64))
        labels = ids.clone()
        if self.mask is not None:
            labels[torch.from_numpy(self.mask[rows] == 0)] = IGNORE_INDEX
        return {"input_ids": ids, "labels": labels}


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a cheap, well-mixed hash of uint64 values."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def permute(index: np.ndarray, n: int, key: int, rounds: int = 4) -> np.ndarray:
    """A seeded pseudo-random permutation of range(n), evaluated pointwise in O(1) memory.

    A balanced Feistel network over the smallest even-bit power of two >= n, with cycle
    walking back into [0, n). Unlike np.random.permutation it needs no n-sized table, so it
    scales to the 440M blocks of 1.8T tokens at a 4K window.
    """
    bits = max(2, int(n - 1).bit_length())
    bits += bits % 2
    half, lo = np.uint64(bits // 2), np.uint64((1 << (bits // 2)) - 1)
    keys = [int(k) for k in np.random.SeedSequence([key, n]).generate_state(rounds, dtype=np.uint64)]

    def once(x: np.ndarray) -> np.ndarray:
        left, right = x >> half, x & lo
        for k in keys:
            left, right = right, left ^ (_mix64(right ^ np.uint64(k)) & lo)
        return (left << half) | right

    x = once(np.asarray(index, dtype=np.uint64))
    out_of_range = x >= n
    while out_of_range.any():  # domain < 4n, so a few walks at most on average
        x[out_of_range] = once(x[out_of_range])
        out_of_range = x >= n
    return x.astype(np.int64)


def block_indices(positions: np.ndarray, n_blocks: int, *, seed: int, shuffle: bool) -> np.ndarray:
    """Block read at each global sequence position: epoch e = p // n_blocks visits every
    block once, in a fresh seeded order per epoch when `shuffle`."""
    positions = np.asarray(positions, dtype=np.int64)
    if not shuffle:
        return positions % n_blocks
    out = np.empty_like(positions)
    epochs = positions // n_blocks
    for epoch in np.unique(epochs):
        sel = epochs == epoch
        out[sel] = permute(positions[sel] % n_blocks, n_blocks, key=seed * 1_000_003 + int(epoch))
    return out


@dataclass
class BatchStream:
    """The training stream for one rank: `next_step()` gives its micro batches for the next
    optimizer step. Its whole state is the number of sequences consumed globally."""

    blocks: TokenBlocks
    global_batch_size: int
    micro_batch_size: int
    rank: int
    world_size: int
    seed: int
    shuffle: bool = True
    sequences_consumed: int = 0

    def __post_init__(self) -> None:
        per_rank, rem = divmod(self.global_batch_size, self.world_size)
        if rem or per_rank % self.micro_batch_size:
            raise ValueError(
                f"global_batch_size {self.global_batch_size} is not divisible by "
                f"micro_batch_size {self.micro_batch_size} x world size {self.world_size}"
            )
        if len(self.blocks) == 0:
            raise ValueError(f"train split has fewer tokens than one sequence of {self.blocks.seq_len}")
        self.grad_accum = per_rank // self.micro_batch_size

    def positions(self, step_start: int) -> np.ndarray:
        """Global positions this rank reads in the step starting at `step_start`, [accum, micro]."""
        per_rank = self.global_batch_size // self.world_size
        start = step_start + self.rank * per_rank
        return np.arange(start, start + per_rank, dtype=np.int64).reshape(self.grad_accum, self.micro_batch_size)

    def next_step(self) -> list[dict[str, torch.Tensor]]:
        pos = self.positions(self.sequences_consumed)
        self.sequences_consumed += self.global_batch_size
        idx = block_indices(pos.ravel(), len(self.blocks), seed=self.seed, shuffle=self.shuffle)
        return [self.blocks.get(row) for row in idx.reshape(pos.shape)]

    def state_dict(self) -> dict[str, Any]:
        return {
            "sequences_consumed": self.sequences_consumed,
            "seq_len": self.blocks.seq_len,
            "global_batch_size": self.global_batch_size,
            "seed": self.seed,
            "shuffle": self.shuffle,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("seq_len", "seed", "shuffle"):
            mine = self.blocks.seq_len if key == "seq_len" else getattr(self, key)
            if state[key] != mine:
                raise ValueError(f"checkpoint data stream has {key}={state[key]!r}, config has {mine!r}")
        self.sequences_consumed = int(state["sequences_consumed"])


def eval_batches(blocks: TokenBlocks, n_sequences: int, micro_batch_size: int, rank: int, world_size: int) -> list[dict[str, torch.Tensor]]:
    """The first `n_sequences` validation blocks (rounded down to a multiple of
    micro x world, so every rank runs the same number of forward passes), split over ranks."""
    per_round = micro_batch_size * world_size
    n = min(n_sequences, len(blocks)) // per_round * per_round
    mine = np.arange(n, dtype=np.int64).reshape(-1, world_size, micro_batch_size)[:, rank, :]
    return [blocks.get(row) for row in mine]
