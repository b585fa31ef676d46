"""`sweep(..., plot=...)` on real DVC experiments (the tiny corpus, up to `filter`): the SVG holds
the swept values and the metrics the experiments reported; `run=False` redraws the same bytes
from the experiments already there."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.integration.dvc_repo import commit, sh
from tests.integration.test_pipeline_flow import api, tiny_repo  # noqa: F401  (api: a fixture)

pytestmark = pytest.mark.integration

NS = {"s": "http://www.w3.org/2000/svg"}


def test_a_real_sweep_draws_its_plot(tmp_path, api):  # noqa: F811
    from flows.sweep import sweep

    repo = tiny_repo(tmp_path)
    sh(repo, "dvc", "repro", "filter", env={"PREFECT_API_URL": api})
    commit(repo, "baseline")
    out = tmp_path / "plots" / "alpha.svg"
    rows = sweep({"filter.min_alpha_fraction": [0.0, 0.25]}, targets=["filter"], repo=str(repo),
                 plot=str(out), metrics=["filter.files_kept", "filter.dropped_by_rule.*"])
    kept = {r["filter.min_alpha_fraction"]: r["filter.files_kept"] for r in rows if r["status"] == "success"}
    panels = ET.fromstring(out.read_text()).findall(".//s:g[@class='panel']", NS)
    assert panels[0].get("data-metric") == "filter.files_kept"
    assert {p.get("data-metric") for p in panels[1:]} >= {"filter.dropped_by_rule.alpha_fraction"}
    points = {(c.get("data-x"), c.get("data-y")) for c in panels[0].iter("{http://www.w3.org/2000/svg}circle")
              if c.get("data-x")}
    assert points == {("0", str(kept[0.0])), ("0.25", str(kept[0.25]))}

    again = tmp_path / "again.svg"
    sweep({"filter.min_alpha_fraction": [0.0, 0.25]}, repo=str(repo), plot=str(again),
          metrics=["filter.files_kept", "filter.dropped_by_rule.*"], run=False)
    assert again.read_bytes() == out.read_bytes()
