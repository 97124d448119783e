"""The Grafana dashboards and Prometheus config only ask for what gridsense really writes.

Metric names and labels come from ``gridsense.metrics``; the InfluxDB schema (measurement,
tags, fields) from a point ``ingest.influx_sink`` builds. A query naming anything else
would draw an empty panel in production, silently.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridsense.metrics import METRICS, SPECS, series_names
from gridsense.model.envelopes import Kind
from gridsense.model.reading import Reading
from gridsense.ops.config import OpsConfig
from ingest.influx_sink import InfluxSinkConfig, to_point

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PROMETHEUS = ROOT / "deploy" / "prometheus"
FLUX_META = {"_time", "_value", "_field", "_measurement", "_start", "_stop"}
PROM_BUILTIN = {"up"}  # Prometheus' own series, for alerts


def influx_schema() -> tuple[str, set[str], set[str]]:
    """(measurement, tags, fields) of what the sink writes, read off a real point."""
    reading = Reading(
        device_id="rg-1",
        kind=Kind.RAIN,
        grid_code="110102012001001",
        ts=datetime(2026, 7, 21, tzinfo=UTC),
        value=1.0,
        unit="mm",
        counter=10.0,
        battery=90.0,
    )
    measurement = InfluxSinkConfig.model_fields["measurement"].default
    line = to_point(reading, measurement).to_line_protocol()
    head, fields, _ts = line.split(" ")
    name, *tags = head.split(",")
    return name, {t.split("=")[0] for t in tags}, {f.split("=")[0] for f in fields.split(",")}


MEASUREMENT, TAGS, FIELDS = influx_schema()


def datasource_uids() -> dict[str, str]:
    doc = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "gridsense.yaml").read_text())
    return {ds["uid"]: ds["type"] for ds in doc["datasources"]}


def targets(board: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = [(p["title"], t) for p in board["panels"] for t in p.get("targets", [])]
    out += [
        (f"variable {v['name']}", {"datasource": v["datasource"], "query": v["query"]})
        for v in board["templating"]["list"]
    ]
    return out


def check_promql(expr: str) -> None:
    names = set(re.findall(r"\b(gridsense_[a-z0-9_]+)\b", expr))
    assert names or PROM_BUILTIN & set(re.findall(r"\b([a-z_]+)\b", expr)), f"no gridsense metric in {expr!r}"
    unknown = names - series_names()
    assert not unknown, f"{expr!r} names metrics gridsense does not expose: {unknown}"
    allowed = {"job", "instance"} if not names else set()
    for n in names:
        base = re.sub(r"_(total|bucket|sum|count)$", "", n)
        spec = SPECS.get(base) or SPECS[n]
        allowed |= set(spec.labels) | ({"le"} if n.endswith("_bucket") else set())
    used = set()
    for selector in re.findall(r"\{([^}]*)\}", expr):
        if selector.startswith("{"):  # a legend template, not a selector
            continue
        used |= {m for m in re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", selector)}
    for grouping in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        used |= {g.strip() for g in grouping.split(",") if g.strip()}
    assert used <= allowed, f"{expr!r} uses labels {used - allowed} that its metrics do not carry"


def check_flux(query: str) -> None:
    for m in re.findall(r'r\._measurement\s*==\s*"([^"]+)"', query):
        assert m == MEASUREMENT, f"measurement {m!r} is not {MEASUREMENT!r}"
    for f in re.findall(r'r\._field\s*==\s*"([^"]+)"', query):
        assert f in FIELDS, f"field {f!r} is not one of {FIELDS}"
    for k in re.findall(r'r\.kind\s*==\s*"([^"]+)"', query):
        assert k in {x.value for x in Kind}, f"kind {k!r} is not a gridsense kind"
    for col in re.findall(r"\br\.([a-z_][a-z0-9_]*)", query):
        if not col.startswith("_"):
            assert col in TAGS | FIELDS, f"column r.{col} is neither a tag {TAGS} nor a field {FIELDS}"
    for cols in re.findall(r"columns:\s*\[([^\]]*)\]", query):
        for col in re.findall(r'"([^"]+)"', cols):
            assert col in TAGS | FIELDS | FLUX_META, f"column {col!r} is not written by the sink"
    for renamed in re.findall(r"rename\(columns:\s*\{([^}]*)\}", query):
        for col in re.findall(r"(\w+)\s*:", renamed):
            assert col in TAGS | FIELDS | FLUX_META, f"renames {col!r}, which the sink does not write"
    for tag in re.findall(r'tag:\s*"([^"]+)"', query):
        assert tag in TAGS, f"tag {tag!r} is not one of {TAGS}"
    if "from(bucket" in query:
        assert "r._measurement" in query, "a query over the bucket must pick the measurement"


@pytest.mark.parametrize(
    ("query", "check"),
    [
        ("rate(gridsense_messages_recieved_total[5m])", check_promql),  # misspelt metric
        ("sum by (grid) (gridsense_incidents_open)", check_promql),  # label it does not carry
        ('gridsense_dead_letters_total{device="x"}', check_promql),
        ('from(bucket: "b") |> filter(fn: (r) => r._measurement == "readings")', check_flux),
        (
            'from(bucket: "b") |> filter(fn: (r) => r._measurement == "reading" and r._field == "level")',
            check_flux,
        ),
        (
            'from(bucket: "b") |> filter(fn: (r) => r._measurement == "reading" and r.street == "x")',
            check_flux,
        ),
        (
            'from(bucket: "b") |> filter(fn: (r) => r._measurement == "reading" and r.kind == "snowfall")',
            check_flux,
        ),
        (
            'from(bucket: "b") |> filter(fn: (r) => r._measurement == "reading") |> group(columns: ["grid"])',
            check_flux,
        ),
    ],
)
def test_the_checks_catch_a_wrong_name(query: str, check: Any) -> None:
    with pytest.raises(AssertionError):
        check(query)


def test_the_influx_schema_is_what_the_sink_docstring_says() -> None:
    assert MEASUREMENT == "reading"
    assert {"device_id", "kind", "grid_code", "district"} == TAGS
    assert {"value", "counter", "battery", "suspect"} == FIELDS


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_valid_and_queries_only_real_series(path: Path) -> None:
    board = json.loads(path.read_text(encoding="utf-8"))
    for key in ("uid", "title", "panels", "schemaVersion", "templating", "time"):
        assert key in board, f"{path.name}: no {key}"
    assert board["uid"].startswith("gridsense-") and len(board["uid"]) <= 40
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for p in board["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"panel {p['title']!r} overlaps another"
        cells |= mine
    uids = datasource_uids()
    found = targets(board)
    assert found, "a dashboard without queries"
    for title, t in found:
        ds = t["datasource"]
        assert ds["uid"] in uids and uids[ds["uid"]] == ds["type"], f"{title}: unknown datasource {ds}"
        if ds["type"] == "prometheus":
            check_promql(t["expr"])
        else:
            check_flux(t["query"])


def test_the_three_dashboards_cover_what_the_duty_officer_needs() -> None:
    by_name = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in DASHBOARDS}
    assert set(by_name) == {"flood-season.json", "cameras.json", "pipeline-health.json"}
    flood = json.dumps(by_name["flood-season.json"])
    assert '\\"water\\"' in flood and "gridsense_cases_open" in flood and "24 h mm" in flood
    assert "component:0704" in json.dumps(by_name["cameras.json"])
    health = json.dumps(by_name["pipeline-health.json"])
    for metric in (
        "gridsense_dead_letters_total",
        "gridsense_outbox_depth",
        "gridsense_ack_latency_seconds_bucket",
    ):
        assert metric in health


def test_every_metric_is_charted_somewhere() -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in DASHBOARDS)
    unused = {m.name for m in METRICS if not any(s in text for s in m.series())}
    assert not unused, f"metrics no dashboard shows: {unused}"


def test_provisioning_points_at_the_dashboards_and_prometheus_at_the_ops_port() -> None:
    prov = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "gridsense.yaml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/etc/grafana/dashboards"
    assert set(datasource_uids().values()) == {"influxdb", "prometheus"}
    prom = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = prom["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"pipeline:{OpsConfig().port}"]
    for rule_file in prom["rule_files"]:
        assert (PROMETHEUS / Path(rule_file).name).is_file()


def test_alert_rules_use_real_metrics() -> None:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert rules
    for r in rules:
        assert r["alert"].startswith("Gridsense") and r["labels"]["severity"] in {"warning", "critical"}
        check_promql(r["expr"])
