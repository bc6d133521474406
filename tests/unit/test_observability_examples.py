"""The Grafana dashboard and the alert rules shipped in examples/ and docs/ only use metrics
Onward serves, and the dashboard file is one Grafana can import."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from onward.admin_values import ReadyQueue
from onward.contrib.prometheus import Metrics, queue_metrics

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bonward_[a-z_]+")


def served() -> set[str]:
    registry = CollectorRegistry()
    Metrics(registry)
    names = {s.name for family in registry.collect() for s in family.samples} | {
        family.name for family in registry.collect()
    }
    body, _ = queue_metrics([ReadyQueue("q", 1, 1.0)])
    names |= set(NAME.findall(body.decode()))
    return (
        {n for n in names if n.startswith("onward_")} | {f"{n}_total" for n in names} | {f"{n}_bucket" for n in names}
    )


def test_the_grafana_dashboard_uses_served_metrics() -> None:
    dashboard = json.loads((ROOT / "examples" / "grafana-onward.json").read_text())
    assert dashboard["panels"]
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in expressions for name in NAME.findall(e)}
    assert used
    assert used <= served(), used - served()


def test_the_alert_rules_use_served_metrics() -> None:
    text = (ROOT / "docs" / "observability.md").read_text()
    rules = text.split("# onward-alerts.yml", 1)[1].split("```", 1)[0]
    used = set(NAME.findall(rules))
    assert {"onward_jobs_finished_total", "onward_queue_oldest_ready_age_seconds"} <= used
    assert used <= served(), used - served()
