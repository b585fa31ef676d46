"""A sweep's results as a picture: each swept parameter against each chosen metric, one panel
per (metric, parameter), one series per combination of the other swept parameters' values.

Written as SVG by hand: no plotting library is in the pinned environment, and adding one would
change requirements.lock, a dep of every DVC stage. The file is text, renders in a browser and
on GitHub, and is byte-stable (the same rows give the same bytes: no timestamps, fixed number
formatting). Each panel is a `<g class="panel" data-param=... data-metric=...>`, each series a
`<g class="series" data-label=...>` of `<circle class="point" data-x=... data-y=...>`, so a test
(or a script) can read the numbers back.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence
from xml.sax.saxutils import escape, quoteattr

PANEL_W, PANEL_H = 360, 240
LEFT, RIGHT, TOP, BOTTOM = 70, 18, 40, 46
HEADER = 46
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: Any) -> str:
    if is_number(v):
        return f"{v:.6g}"
    return str(v)


def _c(v: float) -> str:
    """A coordinate: two decimals, no `-0.00`."""
    s = f"{v:.2f}"
    return "0.00" if s == "-0.00" else s


def nice_ticks(lo: float, hi: float, n: int = 5) -> tuple[list[float], float]:
    """Round tick values covering [lo, hi] (about `n` of them) and their step."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9 or len(ticks) < 2:
        ticks.append(round(t / step) * step)
        t += step
    if ticks[-1] < hi - step * 1e-9:
        ticks.append(ticks[-1] + step)
    return ticks, step


def axis_labels(ticks: Sequence[float], step: float) -> list[str]:
    """Tick values as short text: one unit for the axis (k, M, G from its largest tick) and as
    many decimals as the step needs."""
    big = max(abs(t) for t in ticks)
    scale, suffix = next(((d, s) for at, d, s in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")) if big >= at),
                         (1.0, ""))
    st = step / scale
    decimals = 0
    while decimals < 9 and abs(st * 10 ** decimals - round(st * 10 ** decimals)) > 1e-6:
        decimals += 1
    out = []
    for t in ticks:
        s = f"{t / scale:.{decimals}f}"
        out.append((s[1:] if s.startswith("-") and float(s) == 0 else s) + suffix)
    return out


def series_of(rows: Sequence[dict], param: str, metric: str, others: Sequence[str]) -> list[tuple[str, list[tuple[Any, float]]]]:
    """`[(label, [(x, y), ...]), ...]`: the rows' (param, metric) points grouped by the values of
    the other swept parameters, groups in the order they first appear, points in row order."""
    groups: dict[tuple, list[tuple[Any, float]]] = {}
    for r in rows:
        x, y = r.get(param), r.get(metric)
        if x is None or not is_number(y):
            continue
        key = tuple(_fmt(r.get(o)) for o in others)
        groups.setdefault(key, []).append((x, float(y)))
    return [(", ".join(f"{o}={v}" for o, v in zip(others, key)) or "all", pts) for key, pts in groups.items()]


LEGEND_ROW = 14


def legend_rows(labels: Sequence[str]) -> list[list[tuple[int, str]]]:
    """The legend's entries `(series index, label)` in rows that fit under a plot (none for one series)."""
    if len(labels) < 2:
        return []
    width = PANEL_W - LEFT - RIGHT
    rows: list[list[tuple[int, str]]] = [[]]
    used = 0
    for i, label in enumerate(labels):
        w = 18 + 6 * len(label) + 12
        if rows[-1] and used + w > width:
            rows.append([])
            used = 0
        rows[-1].append((i, label))
        used += w
    return rows


def _panel(param: str, metric: str, series: list[tuple[str, list[tuple[Any, float]]]], x0: float, y0: float,
           x_order: list[Any], height: int = PANEL_H) -> list[str]:
    legend = legend_rows([label for label, _ in series])
    pw, ph = PANEL_W - LEFT - RIGHT, height - TOP - BOTTOM - LEGEND_ROW * len(legend)
    ax, ay = x0 + LEFT, y0 + TOP
    out = [f'<g class="panel" data-param={quoteattr(param)} data-metric={quoteattr(metric)}>',
           f'<rect x="{_c(ax)}" y="{_c(ay)}" width="{pw}" height="{ph}" fill="#ffffff" stroke="#bbbbbb"/>',
           f'<text x="{_c(x0 + PANEL_W / 2)}" y="{_c(y0 + 22)}" text-anchor="middle" font-size="12" '
           f'font-weight="bold">{escape(metric)}</text>',
           f'<text x="{_c(ax + pw / 2)}" y="{_c(ay + ph + 36)}" text-anchor="middle" font-size="11">{escape(param)}</text>']
    ys = [y for _, pts in series for _, y in pts]
    if not ys:
        out += [f'<text x="{_c(ax + pw / 2)}" y="{_c(ay + ph / 2)}" text-anchor="middle" font-size="11" '
                f'fill="#888888">no numeric values</text>', "</g>"]
        return out
    numeric_x = all(is_number(x) for _, pts in series for x, _ in pts)
    if numeric_x:
        xs = [float(x) for _, pts in series for x, _ in pts]
        xticks, xstep = nice_ticks(min(xs), max(xs))
        pad = (xticks[-1] - xticks[0]) * 0.04  # points clear of the frame
        xlo, xhi = xticks[0] - pad, xticks[-1] + pad

        def px(x: Any) -> float:
            return ax + (float(x) - xlo) / (xhi - xlo) * pw
        xlabels = list(zip([px(t) for t in xticks], axis_labels(xticks, xstep)))
    else:
        cats = [_fmt(x) for x in x_order]

        def px(x: Any) -> float:
            i = cats.index(_fmt(x))
            return ax + (i + 0.5) / len(cats) * pw
        xlabels = [(px(x), _fmt(x)) for x in x_order]
    yticks, ystep = nice_ticks(min(ys), max(ys))
    ylo, yhi = yticks[0], yticks[-1]

    def py(y: float) -> float:
        return ay + ph - (y - ylo) / (yhi - ylo) * ph
    for t, label in zip(yticks, axis_labels(yticks, ystep)):
        out.append(f'<line x1="{_c(ax)}" y1="{_c(py(t))}" x2="{_c(ax + pw)}" y2="{_c(py(t))}" stroke="#eeeeee"/>')
        out.append(f'<text x="{_c(ax - 6)}" y="{_c(py(t) + 4)}" text-anchor="end" font-size="10">'
                   f'{escape(label)}</text>')
    for x, label in xlabels:
        out.append(f'<line x1="{_c(x)}" y1="{_c(ay + ph)}" x2="{_c(x)}" y2="{_c(ay + ph + 4)}" stroke="#555555"/>')
        out.append(f'<text x="{_c(x)}" y="{_c(ay + ph + 16)}" text-anchor="middle" font-size="10">{escape(label)}</text>')
    for i, (label, pts) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        ordered = sorted(pts, key=lambda p: float(p[0]) if numeric_x else [_fmt(v) for v in x_order].index(_fmt(p[0])))
        out.append(f'<g class="series" data-label={quoteattr(label)}>')
        if len(ordered) > 1:
            path = " ".join(f"{_c(px(x))},{_c(py(y))}" for x, y in ordered)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in ordered:
            out.append(f'<circle class="point" cx="{_c(px(x))}" cy="{_c(py(y))}" r="4" fill="{color}" '
                       f'data-x={quoteattr(_fmt(x))} data-y={quoteattr(_fmt(y))}>'
                       f'<title>{escape(f"{param}={_fmt(x)}: {metric}={_fmt(y)}")}</title></circle>')
        out.append("</g>")
    for k, entries in enumerate(legend):  # under the parameter's name
        ly, lx = ay + ph + 36 + LEGEND_ROW * (k + 1), ax
        for i, label in entries:
            out.append(f'<circle cx="{_c(lx + 4)}" cy="{_c(ly - 3)}" r="4" fill="{COLORS[i % len(COLORS)]}"/>')
            out.append(f'<text x="{_c(lx + 12)}" y="{_c(ly + 1)}" font-size="10">{escape(label)}</text>')
            lx += 18 + 6 * len(label) + 12
    out.append("</g>")
    return out


def layout(params: Sequence[str], metrics: Sequence[str]) -> list[tuple[str, str, int, int]]:
    """(param, metric, column, row) of each panel: one column per swept parameter and one row
    per metric; a single parameter's panels fill rows of two."""
    if len(params) == 1:
        return [(params[0], m, i % 2, i // 2) for i, m in enumerate(metrics)]
    return [(p, m, j, i) for j, p in enumerate(params) for i, m in enumerate(metrics)]


def sweep_svg(rows: Sequence[dict], params: Sequence[str], metrics: Sequence[str], title: str = "") -> str:
    """The SVG text: a panel per (metric, swept parameter), laid out by `layout`."""
    params, metrics = list(params), list(metrics)
    cells = layout(params, metrics)
    width = max(PANEL_W * (max((c for _, _, c, _ in cells), default=0) + 1), 2 * PANEL_W)
    series = {(p, m): series_of(rows, p, m, [o for o in params if o != p]) for p, m, _, _ in cells}
    panel_h = PANEL_H + LEGEND_ROW * max((len(legend_rows([lb for lb, _ in s])) for s in series.values()), default=0)
    height = HEADER + panel_h * (max((r for _, _, _, r in cells), default=0) + 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa"/>',
           f'<text x="12" y="20" font-size="14" font-weight="bold">{escape(title or "dscoder sweep")}</text>',
           f'<text x="12" y="37" font-size="11" fill="#555555">{len(rows)} experiments; each panel: one swept '
           f'parameter (x) against one metric (y)</text>']
    for param, metric, col, row in cells:
        others = [p for p in params if p != param]
        x_order = list(dict.fromkeys(_fmt(r.get(param)) for r in rows if r.get(param) is not None))
        x_values = {_fmt(r.get(param)): r.get(param) for r in rows if r.get(param) is not None}
        out += _panel(param, metric, series[(param, metric)], PANEL_W * col, HEADER + panel_h * row,
                      [x_values[k] for k in x_order], panel_h)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_sweep_plot(rows: Sequence[dict], params: Sequence[str], metrics: Sequence[str], path: str | Path,
                     title: str = "") -> Path:
    """Write `sweep_svg` to `path` (an .svg file); return the path."""
    path = Path(path)
    if path.suffix.lower() != ".svg":
        raise ValueError(f"--plot {str(path)!r}: the plot is SVG; name the file *.svg")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(sweep_svg(rows, params, metrics, title), encoding="utf-8")
    tmp.replace(path)
    return path
