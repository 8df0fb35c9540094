"""The Grafana dashboard: valid against Grafana's dashboard schema (the models of Grafana's
own grafana-foundation-sdk, generated from it), every panel with units, legends, a stable
id, and queries over families that exist. Whether each query returns data on a live
workload is test_live_prometheus.py's job."""

from __future__ import annotations

import json
import re
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as gdash
from grafana_foundation_sdk.models import timeseries

from tests.monitoring.tools import DASHBOARD, ROOT


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in load()["panels"] if p["type"] != "row"]


def missing(original: Any, parsed: Any, path: str = "") -> list[str]:
    """Keys and values of ``original`` that did not survive parsing: unknown to the schema."""
    if isinstance(original, dict):
        if not isinstance(parsed, dict):
            return [path]
        out = []
        for key, value in original.items():
            if key not in parsed:
                out.append(f"{path}.{key}")
            else:
                out += missing(value, parsed[key], f"{path}.{key}")
        return out
    if isinstance(original, list):
        if not isinstance(parsed, list) or len(parsed) != len(original):
            return [path]
        return [
            m
            for i, (a, b) in enumerate(zip(original, parsed, strict=True))
            for m in missing(a, b, f"{path}[{i}]")
        ]
    return [] if original == parsed else [f"{path}: {original!r} != {parsed!r}"]


def test_the_dashboard_parses_as_grafanas_schema_without_losing_anything() -> None:
    data = load()
    parsed = gdash.Dashboard.from_json(data).to_json()
    assert missing(data, json.loads(json.dumps(parsed, cls=JSONEncoder))) == []


def test_timeseries_options_are_grafanas() -> None:
    for panel in panels():
        assert panel["type"] == "timeseries"
        options = timeseries.Options.from_json(panel["options"]).to_json()
        assert missing(panel["options"], json.loads(json.dumps(options, cls=JSONEncoder))) == [], (
            panel["title"]
        )


def test_panels_have_stable_ids_units_legends_and_descriptions() -> None:
    data = load()
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    assert data["uid"] == "ferryman-overview"
    for panel in panels():
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["description"], panel["title"]
        assert panel["options"]["legend"]["showLegend"], panel["title"]
        for target in panel["targets"]:
            assert target["legendFormat"], (panel["title"], target["expr"])


def test_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in load()["panels"]:
        g = panel["gridPos"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & taken, panel["title"]
        assert g["x"] + g["w"] <= 24
        taken |= cells


def test_the_function_picker_uses_a_series_every_function_has() -> None:
    [function] = [v for v in load()["templating"]["list"] if v["name"] == "function"]
    # ferryman_runs_by_state lists every registered function, at 0 while idle
    assert function["query"]["query"] == "label_values(ferryman_runs_by_state, function)"


def test_queries_use_only_documented_families() -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text()
    documented = set(re.findall(r"^\| `(ferryman_[a-z_]+)`", doc, re.M))
    for panel in panels():
        for target in panel["targets"]:
            for name in re.findall(r"\b(ferryman_[a-z_]+)", target["expr"]):
                family = re.sub(r"_(bucket|sum|count)$", "", name)
                assert family in documented, (panel["title"], name)
