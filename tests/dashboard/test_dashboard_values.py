"""The dashboard with a row holding times no API call could store: every list and page
still renders (the times read as the bounds Onward stores)."""

from __future__ import annotations

from dashboard_helpers import TestClient
from dashboard_jobs import Quick

import onward
import rawsql


def test_every_page_survives_a_row_with_times_out_of_range(store: onward.Store, client: TestClient) -> None:
    job_id = Quick.perform_later().id
    rawsql.poison_times(store, job_id)
    pages = ("/", "/jobs", "/jobs?state=enqueued", f"/jobs/{job_id}", "/api/jobs", f"/api/jobs/{job_id}", "/schedules")
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    assert "9999-12-30" in client.get(f"/jobs/{job_id}").text
