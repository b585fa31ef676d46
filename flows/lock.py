"""Check dvc.lock, and restore the last good one after a kill left it empty or cut short.

DVC rewrites dvc.lock after every stage; a SIGKILL landing during that write can leave it
0 bytes long or half-written, and then every dvc command fails with a schema error. Each
stage keeps a copy of the lock as it was when the stage started (`stages.common.keep_lock_copy`,
in .dvc/tmp/); this command puts back the newest whole one — that copy, else the committed
dvc.lock — and recomputes nothing: rerun `dvc repro`, and every stage whose outputs DVC has in
its cache is restored from the run cache ("Stage ... is cached - skipping run").

    python -m flows.lock            # exit 1 if dvc.lock is broken
    python -m flows.lock --recover  # restore the last good dvc.lock
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from stages.common import LOCK_COPY, lock_is_valid


def _from_git(lock: Path) -> Path | None:
    out = subprocess.run(["git", "show", f"HEAD:{lock.name}"], capture_output=True, cwd=lock.parent or ".")
    if out.returncode != 0:
        return None
    tmp = Path(tempfile.mkstemp(prefix=".dvc.lock.git-", dir=lock.parent)[1])
    tmp.write_bytes(out.stdout)
    return tmp


def recover(lock: Path = Path("dvc.lock"), copy: Path = LOCK_COPY) -> str:
    """Restore dvc.lock if it is broken; returns what was done."""
    if lock_is_valid(lock):
        return f"{lock} is whole: nothing to do"
    if lock_is_valid(copy):
        from dscoder.io import atomic_path

        with atomic_path(lock) as tmp:
            shutil.copyfile(copy, tmp)
        return f"restored {lock} from {copy} (the lock as the last stage found it when it started)"
    tmp = _from_git(lock)
    try:
        if tmp is not None and lock_is_valid(tmp):
            tmp.replace(lock)
            return f"restored {lock} from the last commit (git show HEAD:{lock.name})"
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    if lock.exists():
        lock.unlink()
    return f"no whole copy of {lock} was found: removed it; `dvc repro` will rebuild the record from the run cache"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recover", action="store_true", help="restore the last good dvc.lock if it is broken")
    ap.add_argument("--lock", default="dvc.lock", type=Path, help="the lock file (default: dvc.lock)")
    args = ap.parse_args(argv)
    if args.recover:
        print(recover(args.lock))
        return 0
    ok = lock_is_valid(args.lock) or not args.lock.exists()
    print(f"{args.lock}: {'ok' if ok else 'broken (run: python -m flows.lock --recover)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
