"""Terminal progress bars (tqdm) that stay off where nobody is watching.

A bar is drawn only when its stream (stderr by default) is a terminal, the environment
variable `CI` is unset (or 0/false), and `DSCODER_PROGRESS` is not 0/false/off. Logs, DVC's
captured output and CI runs therefore see the same lines as before, never carriage returns.
Library code may draw bars; it never talks to Prefect (the stage layer's `stages.common.progress`
adds the Prefect progress artifact on top of this).
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

OFF = frozenset({"0", "false", "no", "off"})


def bars_enabled(stream: IO[str] | None = None) -> bool:
    """Whether a bar may be drawn on `stream` (default: the current sys.stderr)."""
    if os.environ.get("DSCODER_PROGRESS", "").strip().lower() in OFF:
        return False
    ci = os.environ.get("CI")
    if ci is not None and ci.strip().lower() not in OFF:
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def make_bar(total: float | None, *, unit: str = "it", desc: str | None = None, initial: float = 0,
             stream: IO[str] | None = None, **kwargs: Any):
    """A tqdm bar on `stream` when `bars_enabled(stream)`, else None (callers test for it)."""
    stream = sys.stderr if stream is None else stream
    if not bars_enabled(stream):
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, initial=initial, file=stream, dynamic_ncols=True,
                smoothing=0.1, **kwargs)
