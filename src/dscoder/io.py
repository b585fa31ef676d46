"""Atomic file output: a stage killed at any moment leaves the old output or the new one.

Everything is written beside its destination (same file system) and renamed into place.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success rename it onto `dest`.

    Works for files and (with `is_dir=True`) whole directories. On error the temporary
    path is removed and `dest` is left as it was.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temps(dest)
    prefix = f".{dest.name}.tmp-{os.getpid()}-"
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=dest.parent))
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; outputs are ordinary shared folders
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=dest.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if is_dir:
            old = None
            if dest.exists():
                old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
                os.replace(dest, old)
            os.replace(tmp, dest)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_temps(dest: str | os.PathLike) -> list[Path]:
    """Remove the temporaries `.<name>.tmp-<pid>-*` beside `dest` left by killed processes
    (a SIGKILL skips the cleanup of `atomic_path`). Returns what was removed."""
    dest = Path(dest)
    removed = []
    for p in dest.parent.glob(f".{dest.name}.tmp-*"):
        pid = p.name[len(dest.name) + 6:].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def write_json(dest: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as sorted, indented JSON, atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet(dest: str | os.PathLike, table: pa.Table, *, schema: pa.Schema | None = None) -> None:
    """Write a table as zstd Parquet, atomically and deterministically (no timestamps)."""
    if schema is not None:
        table = table.select(schema.names).cast(schema)
    with atomic_path(dest) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=4096, write_statistics=True)

