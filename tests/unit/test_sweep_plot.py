"""`dscoder sweep --plot`: each swept parameter against each chosen metric, as an SVG (one panel
per metric and parameter, one series per value of the other parameters), from the rows the
sweep reads out of `dvc exp show --json`; and the command line that asks for it."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

from flows.plot import axis_labels, nice_ticks, sweep_svg, write_sweep_plot
from flows.sweep import comparison_table, in_grid, parse_args, pick_metrics, plot_sweep, report_name

NS = {"s": "http://www.w3.org/2000/svg"}
GRID = {"pack.fim.rate": [0.0, 0.5, 0.9], "dedup.threshold": [0.7, 0.8]}


def _metrics(rate: float, threshold: float) -> dict:
    """Reports as DVC shows them (path → data), with numbers that move with the params."""
    removed = 10 if threshold == 0.7 else 6
    return {
        "reports/dedup.json": {"data": {"repos_removed": removed, "repos_out": 116 - removed, "backend": "rensa",
                                        "by_language": {"python": {"repos_removed": removed - 1}}}},
        "reports/pack.json": {"data": {"train_tokens": 5_000_000 + 100_000 * (10 - removed), "seq_len": 256}},
        "reports/eval/base.json": {"data": {"parameters": 5261568, "summary": {
            "humaneval_fim": {"exact_match": round(0.1 + 0.2 * rate, 3)},
            "humaneval": {"pass@1": round(0.05 * rate, 3), "clean_pass@1": round(0.04 * rate, 3)}}}},
        "reports/instruct.json": {"data": {"parameters": 7}},
    }


def _params(rate: float, threshold: float) -> dict:
    return {"params.yaml": {"data": {"pack": {"fim": {"rate": rate}}, "dedup": {"threshold": threshold}}}}


def exp_show() -> list[dict]:
    """The shape of `dvc exp show --json`: the workspace, then the baseline with its experiments
    (one failed)."""
    exps = []
    for i, (rate, thr) in enumerate(itertools.product(*GRID.values())):
        exps.append({"executor": None, "revs": [{"rev": f"{i:040x}", "name": f"exp-{i}",
                                                  "data": {"params": _params(rate, thr), "metrics": _metrics(rate, thr)}}]})
    exps.append({"executor": {"state": "failed"}, "revs": [{"rev": "f" * 40, "name": "exp-bad", "error": {"msg": "x"},
                                                             "data": {"params": _params(0.5, 0.7)}}]})
    base = {"rev": "a" * 40, "name": "main", "data": {"params": _params(0.5, 0.7), "metrics": _metrics(0.5, 0.7)},
            "experiments": exps}
    return [{"rev": "workspace", "data": {}}, base]


def panels(svg: str) -> list[ET.Element]:
    return ET.fromstring(svg).findall(".//s:g[@class='panel']", NS)


def test_report_names_keep_eval_reports_apart():
    assert report_name("reports/filter.json") == "filter"
    assert report_name("reports/eval/instruct.json") == "eval/instruct"
    rows = comparison_table(exp_show(), list(GRID))
    assert rows[1]["eval/base.parameters"] == 5261568 and rows[1]["instruct.parameters"] == 7
    assert "eval/base.summary.humaneval.pass@1" not in rows[1]  # the table: top-level scalars only
    full = comparison_table(exp_show(), list(GRID), nested=True)
    assert full[1]["eval/base.summary.humaneval.pass@1"] == 0.0 and full[1]["dedup.by_language.python.repos_removed"] == 9


def test_plot_has_a_panel_per_metric_and_parameter_and_a_series_per_other_value(tmp_path):
    metrics = ["eval/base.summary.humaneval_fim.exact_match", "eval/base.summary.humaneval.pass@1",
               "dedup.repos_removed"]
    path, chosen = plot_sweep(exp_show(), GRID, None, tmp_path / "sweep.svg", metrics)
    assert chosen == metrics
    svg = path.read_text()
    got = panels(svg)
    assert [(p.get("data-metric"), p.get("data-param")) for p in got] == [
        (m, p) for p in GRID for m in metrics]  # one column per parameter, one row per metric
    fim_vs_rate = got[0]
    series = fim_vs_rate.findall("s:g[@class='series']", NS)
    assert [s.get("data-label") for s in series] == ["dedup.threshold=0.7", "dedup.threshold=0.8"]
    for s in series:
        points = [(float(c.get("data-x")), float(c.get("data-y"))) for c in s.findall("s:circle[@class='point']", NS)]
        assert points == [(0.0, 0.1), (0.5, 0.2), (0.9, 0.28)]  # sorted by x; the failed run is not drawn
    removed_vs_threshold = got[5]
    assert len(removed_vs_threshold.findall("s:g[@class='series']", NS)) == 3  # one per FIM rate
    ys = {c.get("data-y") for c in removed_vs_threshold.iter("{http://www.w3.org/2000/svg}circle") if c.get("data-y")}
    assert ys == {"10", "6"}
    again = plot_sweep(exp_show(), GRID, None, tmp_path / "again.svg", metrics)[0]
    assert again.read_bytes() == path.read_bytes()  # byte-stable: no timestamps


def test_default_metrics_are_the_table_scalars_that_moved():
    rows = [r for r in comparison_table(exp_show(), list(GRID), nested=True) if r["status"] == "success"]
    table = comparison_table(exp_show(), list(GRID))
    assert pick_metrics(rows, None, table, list(GRID)) == ["dedup.repos_out", "dedup.repos_removed", "pack.train_tokens"]
    assert pick_metrics(rows, ["eval/*.summary.humaneval.*pass@1"], table, list(GRID)) == [
        "eval/base.summary.humaneval.clean_pass@1", "eval/base.summary.humaneval.pass@1"]
    with pytest.raises(ValueError, match="no numeric metric"):
        pick_metrics(rows, ["dedup.nothing"], table, list(GRID))
    assert len(in_grid(comparison_table(exp_show(), list(GRID)), {"dedup.threshold": [0.8], "pack.fim.rate": [0.0, 0.5, 0.9]})) == 3


def test_categorical_and_constant_values_still_draw(tmp_path):
    rows = [{"experiment": f"e{i}", "status": "success", "repo_docs.mode": mode, "filter.files_kept": 12}
            for i, mode in enumerate(["regex", "tree-sitter"])]
    svg = write_sweep_plot(rows, ["repo_docs.mode"], ["filter.files_kept"], tmp_path / "c.svg").read_text()
    (panel,) = panels(svg)
    labels = [t.text for t in panel.findall("s:text", NS)]
    assert "regex" in labels and "tree-sitter" in labels
    assert len(panel.findall(".//s:circle[@class='point']", NS)) == 2
    empty = sweep_svg(rows, ["repo_docs.mode"], ["filter.nothing"])
    assert "no numeric values" in empty
    with pytest.raises(ValueError, match="SVG"):
        write_sweep_plot(rows, ["repo_docs.mode"], ["filter.files_kept"], tmp_path / "c.png")


def test_ticks_are_round_and_labelled_short():
    ticks, step = nice_ticks(5_642_240, 5_900_000)
    assert axis_labels(ticks, step) == ["5.6M", "5.7M", "5.8M", "5.9M"]
    ticks, step = nice_ticks(0.7, 0.9)
    assert axis_labels(ticks, step) == ["0.70", "0.75", "0.80", "0.85", "0.90"]
    ticks, step = nice_ticks(3, 3)  # one value: a range around it
    assert ticks[0] < 3 < ticks[-1]


def test_the_command_line_asks_for_the_plot(tmp_path, monkeypatch):
    args, grid = parse_args(["--set", "pack.fim.rate=0,0.5", "--plot", "out/s.svg", "--metric", "pack.train_tokens",
                             "--metric", "eval/*.summary.humaneval.pass@1", "pack"])
    assert grid == {"pack.fim.rate": [0, 0.5]} and args.plot == "out/s.svg" and args.targets == ["pack"]
    assert args.metrics == ["pack.train_tokens", "eval/*.summary.humaneval.pass@1"] and args.run is True
    assert parse_args(["--set", "a=1", "--plot", "p.svg", "--no-run"])[0].run is False
    for bad in (["--set", "a=1", "--plot", "p.png"], ["--set", "a=1", "--metric", "x"]):
        with pytest.raises(SystemExit) as e:
            parse_args(bad)
        assert e.value.code == 2

    # `dscoder sweep ...` hands everything after `sweep` to flows.sweep, which passes the plot on
    import contextlib

    import flows.pipeline
    import flows.sweep
    from flows import cli

    calls = []
    monkeypatch.setattr(flows.sweep, "sweep", lambda *a, **kw: calls.append((a, kw)) or [])
    monkeypatch.setattr(flows.pipeline, "with_server", lambda repo: contextlib.nullcontext())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    assert cli.main(["sweep", "--set", "dedup.threshold=0.7,0.8", "--plot", "s.svg", "--metric", "dedup.repos_removed"]) == 0
    (a, kw), = calls
    assert a[0] == {"dedup.threshold": [0.7, 0.8]}
    assert kw == {"plot": "s.svg", "metrics": ["dedup.repos_removed"], "run": True}
