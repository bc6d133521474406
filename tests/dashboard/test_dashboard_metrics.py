"""The dashboard's /metrics: Prometheus gauges of ready jobs per queue, against a known backlog."""

from __future__ import annotations

from dashboard_helpers import TestClient
from prometheus_client.parser import text_string_to_metric_families

import rawsql
from jobs_core import Echo
from onward import Store


def test_the_dashboard_serves_queue_gauges_for_a_known_backlog(store: Store, client: TestClient) -> None:
    Echo.set(queue="a").perform_all_later([(i,) for i in range(3)])
    Echo.set(queue="b").perform_all_later([(i,) for i in range(2)])
    Echo.set(queue="b", wait=3600).perform_later("not ready yet")
    oldest = Echo.set(queue="a").perform_later("oldest")
    if store.url.startswith("sqlite:"):
        rawsql.execute(store, "UPDATE onward_jobs SET scheduled_at = ? WHERE id = ?", (store.now() - 100, oldest.id))
    else:
        rawsql.execute(
            store, "UPDATE onward_jobs SET scheduled_at = now() - interval '100 seconds' WHERE id = ?", (oldest.id,)
        )
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, s.labels.get("queue")): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("onward_queue_ready_jobs", "a")] == 4
    assert samples[("onward_queue_ready_jobs", "b")] == 2
    assert 100 <= samples[("onward_queue_oldest_ready_age_seconds", "a")] < 160
    assert samples[("onward_queue_oldest_ready_age_seconds", "b")] < 60
