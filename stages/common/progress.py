"""How far a running stage is: a tqdm bar in the terminal and a progress artifact in Prefect.

    with Progress("dedup", total=len(shards), unit="shard", desc="dedup: shards") as p:
        for result in results_as_they_finish:
            p.advance(1, bytes=result.bytes)       # postfix fields: shown on the bar and the artifact

`Progress(stage, total, unit, desc)` is meant for every long loop a stage runs in its own
process: the shard executor (`stages.common.run_step`: one `advance` per finished shard,
`bytes=` what it read), files ingested, documents filtered or ordered, signatures, tokens
packed, evaluation items, training steps (`update_to(step)`: an absolute position).

- The bar (`dscoder.progress.make_bar`) is drawn on stderr only when stderr is a terminal,
  `CI` is unset and `DSCODER_PROGRESS` is not 0: logs and CI output stay as they were.
- Inside a flow (or task) run, one Prefect progress artifact, key `<stage>-progress`
  (lowercase, dashes), is created at 0% on entry and updated as work advances: at most once
  every `min_interval` seconds, and always at the end (100% when `total` was reached). It is
  attached to the run, so the UI shows it on the stage's flow run page. Publishing is best
  effort: an API error is printed once and the stage goes on without the artifact.
- Outside a run (a library test, a plain script) only the bar remains; `bar=False` keeps only
  the artifact (where another process draws the bar, e.g. a trainer under torchrun).
Thread-safe: shard callbacks may advance it from worker threads.
"""

from __future__ import annotations

import re
import threading
import time
from typing import IO, Any, Iterable, Iterator, TypeVar
from uuid import UUID

from dscoder.progress import make_bar

T = TypeVar("T")


def artifact_key(stage: str, suffix: str = "progress") -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) for a stage: `long_context` →
    `long-context-progress`."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", f"{stage}-{suffix}".lower())).strip("-")


def run_ids() -> tuple[UUID | None, UUID | None]:
    """(task run id, flow run id) of the current Prefect run; (None, None) outside one."""
    try:
        from prefect.utilities.context import get_task_and_flow_run_ids

        return get_task_and_flow_run_ids()
    except Exception:
        return None, None


class Progress:
    """A stage's progress over `total` units (see the module docstring)."""

    def __init__(self, stage: str, total: float | None, unit: str = "it", desc: str | None = None, *,
                 key: str | None = None, min_interval: float = 1.0, stream: IO[str] | None = None,
                 initial: float = 0, bar: bool = True):
        self.stage, self.unit = stage, unit
        self.total = total
        self.desc = desc or stage
        self.key = key or artifact_key(stage)
        self.min_interval = min_interval
        self.done = initial
        self.postfix: dict[str, Any] = {}
        self.artifact_id: UUID | None = None
        self._stream, self._bar, self._want_bar = stream, None, bar
        self._lock = threading.Lock()
        self._published_at = float("-inf")
        self._failed = False
        self._closed = False

    # ---- the loop's side ----
    def __enter__(self) -> "Progress":
        if self._want_bar:
            self._bar = make_bar(self.total, unit=self.unit, desc=self.desc, initial=self.done, stream=self._stream)
        self._create()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def advance(self, n: float = 1, **postfix: Any) -> None:
        """`n` more units done; `postfix` (e.g. loss=2.31, bytes=...) is shown beside the count."""
        with self._lock:
            self.done += n
            self._after_change(n, postfix)

    def update_to(self, done: float, **postfix: Any) -> None:
        """Set the absolute position (e.g. the step a trainer reached)."""
        with self._lock:
            n, self.done = done - self.done, done
            self._after_change(n, postfix)

    def set_total(self, total: float) -> None:
        """The total, once known (a stream whose length appears as it is read)."""
        with self._lock:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
                self._bar.refresh()

    def wrap(self, items: Iterable[T], **postfix: Any) -> Iterator[T]:
        """Yield `items`, advancing one unit after each."""
        for item in items:
            yield item
            self.advance(1, **postfix)

    def close(self) -> None:
        """Publish the final position (100% when `total` was reached) and close the bar."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._publish(force=True)
            if self._bar is not None:
                self._bar.close()

    # ---- what it shows ----
    @property
    def percent(self) -> float:
        """0..100; 100 for an empty total (nothing to do is done)."""
        if not self.total:
            return 100.0 if self.total == 0 else 0.0
        return max(0.0, min(100.0, 100.0 * self.done / self.total))

    def description(self) -> str:
        """What the artifact says beside its bar: `dedup: shards: 3/8 shard (bytes=...)`."""
        count = f"{_num(self.done)}/{_num(self.total)}" if self.total is not None else _num(self.done)
        extra = ", ".join(f"{k}={_num(v)}" for k, v in self.postfix.items())
        return f"{self.desc}: {count} {self.unit}" + (f" ({extra})" if extra else "")

    # ---- internals ----
    def _after_change(self, n: float, postfix: dict[str, Any]) -> None:
        if postfix:
            self.postfix.update(postfix)
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix({k: _num(v) for k, v in self.postfix.items()}, refresh=False)
            self._bar.update(n)
        # the step that reaches the total goes out at once; past it (a total that was an
        # estimate) the interval holds again: forcing every step there cost one new API
        # client, TLS context included, per step (the tokenizer at 14x: 37 s instead of ~11)
        self._publish(force=self.total is not None and self.done - n < self.total <= self.done)

    def _create(self) -> None:
        task_run_id, flow_run_id = run_ids()
        if flow_run_id is None:
            return
        try:
            from prefect.artifacts import ProgressArtifact

            art = ProgressArtifact(key=self.key, progress=self.percent, description=self.description(),
                                   flow_run_id=flow_run_id, task_run_id=task_run_id)
            self.artifact_id = art.create(_sync=True).id
            self._published_at = time.monotonic()
        except Exception as e:
            self._give_up(e)

    def _publish(self, *, force: bool) -> None:
        if self.artifact_id is None or self._failed:
            return
        now = time.monotonic()
        if not force and now - self._published_at < self.min_interval:
            return
        try:
            from prefect.artifacts import update_progress_artifact

            update_progress_artifact(self.artifact_id, self.percent, description=self.description(), _sync=True)
            self._published_at = now
        except Exception as e:
            self._give_up(e)

    def _give_up(self, e: Exception) -> None:
        self._failed = True
        print(f"[{self.stage}] progress artifact {self.key}: not published ({type(e).__name__}: {e}); going on")


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if not v.is_integer() else str(int(v))
    if isinstance(v, int) and abs(v) >= 10_000:
        return f"{v:,}"
    return str(v)
