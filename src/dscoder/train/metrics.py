"""Throughput, MFU and the dvclive log (rank 0 only)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
import torch

# Dense bf16 peak FLOP/s per device from vendor data sheets (no sparsity).
PEAK_FLOPS: dict[str, float] = {
    "H100": 989e12,  # SXM; the PCIe card is 756e12
    "H200": 989e12,
    "A100": 312e12,
    "H800": 989e12,
    "A800": 312e12,
}


def detect_peak_flops(device: torch.device) -> float:
    """Peak FLOP/s of a known GPU, else 0 (MFU then goes unreported)."""
    if device.type != "cuda":
        return 0.0
    name = torch.cuda.get_device_name(device)
    if "H100" in name and "PCIe" in name:
        return 756e12
    return next((v for k, v in PEAK_FLOPS.items() if k in name), 0.0)


def mfu(flops_per_token: float, tokens_per_second_per_device: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s over the device's peak (PaLM, App. B)."""
    return flops_per_token * tokens_per_second_per_device / peak_flops if peak_flops > 0 else 0.0


def truncate_history(metrics_dir: str | Path, last_step: int) -> None:
    """Drop dvclive plot rows after `last_step`, so a resumed run's curve carries no steps
    that the killed run logged after its last checkpoint."""
    plots = Path(metrics_dir) / "plots" / "metrics"
    for tsv in sorted(plots.rglob("*.tsv")) if plots.is_dir() else []:
        rows = list(csv.reader(io.StringIO(tsv.read_text()), delimiter="\t"))
        if not rows:
            continue
        col = rows[0].index("step")
        kept = [rows[0]] + [r for r in rows[1:] if int(r[col]) <= last_step]
        buf = io.StringIO()
        csv.writer(buf, delimiter="\t", lineterminator="\n").writerows(kept)
        tsv.write_text(buf.getvalue())


class MetricsLog:
    """dvclive `Live` (no dvc.yaml, no DVC experiment) with explicit step numbers; a no-op
    when `metrics_dir` is empty or on ranks other than 0."""

    def __init__(self, metrics_dir: str, *, enabled: bool, resume_from_step: int):
        self.live = None
        if not (enabled and metrics_dir):
            return
        from dvclive import Live  # dvclive is heavy to import; only rank 0 needs it

        if resume_from_step > 0:
            truncate_history(metrics_dir, resume_from_step)
        self.live = Live(
            metrics_dir, resume=resume_from_step > 0, dvcyaml=None, save_dvc_exp=False, report=None
        )

    def log(self, step: int, values: dict[str, float]) -> None:
        if self.live is None:
            return
        self.live.step = step
        for name, value in values.items():
            self.live.log_metric(name, value)
        self.live.make_summary()

    def close(self) -> None:
        if self.live is not None:
            self.live.end()
