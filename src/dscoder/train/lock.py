"""One owner per checkpoint folder, and trainers that die with whoever started them.

`FolderLock` is an exclusive `flock` on a file inside the folder, holding the owner's pid, host
and start time for the message a second owner gets. The kernel drops the lock when its owner
dies, however it dies, so a lock file left by a killed run is recognised as stale and taken
over (no pid guessing, no clock). `flock` needs a file system that supports it: local disks do,
and NFSv4 does (Linux maps it to a byte-range lock); on one that does not, acquiring fails
with the OS error rather than passing silently.

`die_with_parent` asks the kernel (Linux `prctl(PR_SET_PDEATHSIG)`) to SIGKILL this process
when its parent exits. torchrun starts its workers in a new session, so killing the process
group of `dvc repro` reaches the torchrun agent but not the ranks: with this they follow it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from dscoder.pool import die_with_parent  # noqa: F401  (re-exported: trainers and ranks use it)

#: Lock files in a checkpoint folder: the training stage's (held while it prepares and waits)
#: and the trainer's (rank 0, while it trains).
STAGE_LOCK = ".stage.lock"
TRAINER_LOCK = ".trainer.lock"


class FolderInUse(RuntimeError):
    """Another live process owns the folder."""


class FolderLock:
    """Exclusive ownership of `folder` through `folder/<name>`; a context manager."""

    def __init__(self, folder: str | Path, name: str = ".lock", *, owner: str = ""):
        self.path = Path(folder) / name
        self.owner = owner or Path(sys.argv[0]).name
        self._fd: int | None = None
        self.stale: dict[str, Any] | None = None  # what a dead previous owner left, if anything

    def acquire(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                raise FolderInUse(self.busy_message(read_holder(self.path))) from None
            # The previous owner may have unlinked the file between our open and our lock.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.stale = _read_fd(fd) or None
        if self.stale:  # a file the kernel no longer locks: its owner died without releasing it
            print(f"[lock] {self.path}: stale lock of pid {self.stale.get('pid')} on {self.stale.get('host')} "
                  f"({self.stale.get('owner')}) taken over", file=sys.stderr, flush=True)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "owner": self.owner,
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def busy_message(self, holder: dict[str, Any] | None) -> str:
        who = (f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('owner')}, since {holder.get('since')})"
               if holder else "another process")
        return (f"{self.path.parent} is in use by {who}: two runs must not share a checkpoint folder; "
                f"wait for it to finish or stop it")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # unlink while still holding the lock, then drop it
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_fd(fd: int) -> dict[str, Any]:
    raw = os.pread(fd, 4096, 0)
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}


def read_holder(path: str | Path) -> dict[str, Any] | None:
    """The owner recorded in a lock file, or None."""
    try:
        data = json.loads(Path(path).read_text() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_locked(path: str | Path) -> bool:
    """Whether a live process holds the lock file at `path` (probing, never keeping it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)
