"""The trainer shared by every training stage: FSDP2 under torchrun, resumable, dvclive metrics.

Public API (the stage layer calls these):
    TrainSettings, load_config          settings (dataclass; JSON/YAML + key=value overrides)
    torchrun_command, torchrun_env    the subprocess that runs `python -m dscoder.train`
    train                             the loop itself, called inside each rank
    lr_at, final_lr                   the learning-rate schedule
    long_context_overrides            Sec. 3.6 settings from an exported base model
    write_token_dir                   a token directory in the trainer's layout
    resume.resume_key                 what a checkpoint must have been made with to be resumed
    lock.FolderLock, die_with_parent  one owner per checkpoint folder; no rank outlives torchrun

Importing this package does not import torch or transformers (`train` and `write_token_dir`
load on first use), so `python -m dscoder.train` rejects bad settings in a fraction of a second.
"""

from dscoder.train.config import TrainSettings, load_config
from dscoder.train.launch import torchrun_command, torchrun_env
from dscoder.train.long_context import long_context_overrides
from dscoder.train.schedule import final_lr, lr_at


def __getattr__(name: str):
    if name == "train":
        from dscoder.train.loop import train

        return train
    if name == "write_token_dir":
        from dscoder.train.data import write_token_dir

        return write_token_dir
    raise AttributeError(f"module 'dscoder.train' has no attribute {name!r}")


__all__ = ["TrainSettings", "load_config", "torchrun_command", "torchrun_env", "train", "lr_at", "final_lr", "write_token_dir", "long_context_overrides"]
