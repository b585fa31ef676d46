"""Throughput, MFU, and the metrics log: dvclive's layout, written with each checkpoint.

The log keeps every step's values in memory and rewrites its files (each atomically) only when
a checkpoint is saved and at the end, so the curve on disk always ends at a checkpoint: a run
killed at any moment leaves rows 1..k of its last checkpoint k, and its resumption (which
restores the rows from that checkpoint) continues at k+1, never repeating a step.
Layout, as dvclive writes it (so `dvc plots` and `dvc metrics` read it unchanged):
`metrics.json` (the newest values, nested at "/", and "step") and `plots/metrics/<name>.tsv`
(`step<TAB><leaf name>`, one row per step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dscoder.io import atomic_path, write_json

# Dense bf16 peak FLOP/s per device from vendor data sheets (no sparsity).
PEAK_FLOPS: dict[str, float] = {
    "H100": 989e12,  # SXM; the PCIe card is 756e12
    "H200": 989e12,
    "A100": 312e12,
    "H800": 989e12,
    "A800": 312e12,
}


def gpu_peak(name: str, memory_bytes: int) -> tuple[str, float]:
    """(what the GPU is taken for, its dense bf16 peak FLOP/s) from its name and memory; 0 for
    an unknown GPU. H100 and H200 share the same SXM compute die (989 TFLOPS dense bf16); the
    name tells the PCIe (756) and NVL (835) cards apart, memory the H200 (141 GB) from an H100
    (80 GB, 94 GB NVL) where the name is ambiguous."""
    gib = memory_bytes / 2**30
    if "H200" in name or "GH200" in name or ("H100" in name and gib > 100):
        return "H200 (dense bf16)", 989e12
    if "H100" in name:
        if "PCIe" in name:
            return "H100 PCIe (dense bf16)", 756e12
        if "NVL" in name:
            return "H100 NVL (dense bf16)", 835e12
        return "H100 SXM (dense bf16)", 989e12
    return next(((f"{k} (dense bf16)", v) for k, v in PEAK_FLOPS.items() if k in name), (name, 0.0))


def detect_peak_flops(device: torch.device) -> float:
    """Peak FLOP/s of a known GPU, else 0 (MFU then goes unreported)."""
    if device.type != "cuda":
        return 0.0
    props = torch.cuda.get_device_properties(device)
    return gpu_peak(props.name, props.total_memory)[1]


def mfu(flops_per_token: float, tokens_per_second_per_device: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s over the device's peak (PaLM, App. B)."""
    return flops_per_token * tokens_per_second_per_device / peak_flops if peak_flops > 0 else 0.0


class MetricsLog:
    """The run's metrics, step by step (rank 0 keeps and writes them; other ranks keep
    nothing). `rows` is what a checkpoint saves and a resume restores."""

    def __init__(self, metrics_dir: str, *, enabled: bool, rows: list[dict[str, Any]] | None = None):
        self.dir = Path(metrics_dir) if (enabled and metrics_dir) else None
        self.rows: list[dict[str, Any]] = list(rows or []) if self.dir else []

    def log(self, step: int, values: dict[str, float]) -> None:
        if self.dir is not None:
            self.rows.append({"step": step, **values})

    def write(self) -> None:
        """Rewrite the curve files and metrics.json from `rows`, each file atomically."""
        if self.dir is None or not self.rows:
            return
        names = list(dict.fromkeys(k for row in self.rows for k in row if k != "step"))
        for name in names:
            lines = [f"step\t{name.rsplit('/', 1)[-1]}"]
            lines += [f"{row['step']}\t{row[name]!r}" for row in self.rows if name in row]
            with atomic_path(self.dir / "plots" / "metrics" / f"{name}.tsv") as tmp:
                tmp.write_text("\n".join(lines) + "\n")
        latest: dict[str, Any] = {}
        for row in self.rows:
            for name, value in row.items():
                latest[name] = value
        summary: dict[str, Any] = {}
        for name, value in latest.items():
            *parents, leaf = name.split("/")
            node = summary
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        write_json(self.dir / "metrics.json", summary)
